"""What is outdated or vulnerable, seen from the build machine.

Takes manifests with their locks, or repositories; gives the locked packages
that have newer versions (and the advisories that ship them), and the
container packages that bundle a vulnerable version of a package. The host's
own view (`freight outdated --host`) is freight.host.outdated.
"""

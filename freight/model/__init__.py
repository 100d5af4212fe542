"""What the build machine and the host agree on, and nothing that runs either:
where a container's files live on a host and in its RPM, how run settings of a
derivative merge over its base's, how a release is named, and the records a
container carries about its files (owners by name, capabilities). The build
writes these; the installer hook reads them. No dnf, rpmbuild or schema here.
"""

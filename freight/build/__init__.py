"""The second stage: `freight build`, manifest -> container RPM.

Takes a checked manifest and its lock; installs the packages with dnf into a
staging root (or, for a derivative, lays files or a layer over a base), writes
the metadata the container carries, and gives the RPM made by rpmbuild from
that tree, whole or not at all. Signing on request comes from freight.trust.
"""

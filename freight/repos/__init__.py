"""Reading rpm repositories through dnf, isolated from the machine's own dnf setup.

Takes a set of repositories (a manifest's, a container's embedded one, or the
host's configuration); gives a dnf Base over them and the questions freight
asks of their metadata: newer versions, the advisories that ship a package,
and which containers bundle what. Used by the build, the update reports and
the host alike, so it knows nothing of manifests or hosts.
"""

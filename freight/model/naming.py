"""How a container's package and its releases are named, on both sides.

The build names the RPM; the host and `freight verify` recompute the same
name from the manifest and lock a package carries, so they must agree.
"""

from __future__ import annotations


def package_name(container: str) -> str:
    """The RPM of the container NAME: `container-NAME`."""
    return f"container-{container}"


def release(manifest_release: str, serial: int) -> str:
    """The RPM release for a manifest's release and a lock's serial (`1`, then `1.1`, `1.2` …)."""
    return manifest_release if serial == 0 else f"{manifest_release}.{serial}"


def evr(epoch: int | str | None, version: str, release: str) -> str:
    """EPOCH:VERSION-RELEASE as rpm and dnf print it: no epoch when it is 0."""
    return f"{epoch}:{version}-{release}" if epoch and str(epoch) != "0" else f"{version}-{release}"

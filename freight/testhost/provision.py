"""Installing freight itself in a test host, the way an administrator would: with dnf.

The repository holds freight, freight-common, freight-host and
debian-host-provides(-build) (`freight.dist.rpms.host_repo`); the host sees it
through a bind mount. The provides packages go in first and on their own: the
host's rpm database knows none of Debian's packages until they do, and they
check with dpkg that those are really there. A host may get freight-host
alone, as a production host would, or the build side too.
"""

from __future__ import annotations

import logging

from freight.common.run import CommandError
from freight.testhost.machine import TestHost

log = logging.getLogger("freight.testhost.provision")

REPO_ID = "freight-local"


BOTH_SIDES = ("freight", "freight-host")


def install_freight(host: TestHost, repo: str, packages: tuple[str, ...] = BOTH_SIDES) -> None:
    """Install PACKAGES (freight's) in HOST from the repository at REPO (a path inside the host), once."""
    try:
        host.run(["rpm", "-q", *packages])
        return  # there already
    except CommandError:
        pass
    # Unsigned, built from the working tree: gpgcheck is for the published repositories.
    host.write_text(
        f"/etc/yum.repos.d/{REPO_ID}.repo",
        f"[{REPO_ID}]\nname=freight built from the source tree\nbaseurl=file://{repo}\ngpgcheck=0\nmetadata_expire=0\n",
    )
    provides = ["debian-host-provides"] + (["debian-host-provides-build"] if "freight" in packages else [])
    host.run(["dnf", "install", "-y", "--repo", REPO_ID, *provides])
    host.run(["dnf", "install", "-y", "--repo", REPO_ID, *packages])
    log.info("  installed %s", host.run(["rpm", "-q", *packages]).split())

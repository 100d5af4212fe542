"""Installing freight itself in a test host, the way an administrator would: with dnf.

The repository holds freight, freight-host and debian-host-provides
(`freight.dist.host_repo`); the host sees it through a bind mount. The
provides package goes in first and on its own: the host's rpm database knows
none of Debian's packages until it does, and it checks with dpkg that they
are really there.
"""

from __future__ import annotations

import logging

from freight.run import CommandError
from freight.testhost.machine import TestHost

log = logging.getLogger("freight.testhost.provision")

REPO_ID = "freight-local"


def install_freight(host: TestHost, repo: str) -> None:
    """Install freight and freight-host in HOST from the repository at REPO (a path inside the host), once."""
    try:
        host.run(["rpm", "-q", "freight", "freight-host"])
        return  # there already
    except CommandError:
        pass
    # Unsigned, built from the working tree: gpgcheck is for the published repositories.
    host.write_text(
        f"/etc/yum.repos.d/{REPO_ID}.repo",
        f"[{REPO_ID}]\nname=freight built from the source tree\nbaseurl=file://{repo}\ngpgcheck=0\nmetadata_expire=0\n",
    )
    host.run(["dnf", "install", "-y", "--repo", REPO_ID, "debian-host-provides"])
    host.run(["dnf", "install", "-y", "--repo", REPO_ID, "freight", "freight-host"])
    log.info("  installed %s", host.run(["rpm", "-q", "freight", "freight-host"]).split())

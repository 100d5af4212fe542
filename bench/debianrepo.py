"""Debian 12's minbase as the bench's second repository: what users build, not what the generator makes.

The synthetic repository is shaped by a few numbers; this one is 101 of
Debian's own packages (converted by corpus.debian, cached beside the test
host's image), with their real file names, owners, hard links and conffiles.
Figure 8 builds a container of all of them against the same floor as figure 1.
"""

from __future__ import annotations

import shutil

import rpm

from bench.repogen import Params, Repo


def available() -> str | None:
    """Why the corpus cannot be made on this machine, or None when it can."""
    missing = [tool for tool in ("apt-get", "dpkg-deb") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} missing: the corpus is made from Debian's own packages" if missing else None


def ensure() -> Repo:
    """The corpus repository (made on first use, then reused) described as the bench describes its own."""
    from corpus import debian

    path = debian.repository()
    files = size = 0
    ts = rpm.TransactionSet()
    ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES)
    for package in path.glob("*.rpm"):
        with open(package, "rb") as f:
            header = ts.hdrFromFdno(f.fileno())
        files += len(header[rpm.RPMTAG_FILENAMES])
        size += header[rpm.RPMTAG_SIZE]
    rpms = list(path.glob("*.rpm"))
    return Repo(
        path=path, params=Params(packages=len(rpms), files=files, megabytes=size // 1_000_000), packages=list(debian.MINBASE),
        files=files, bytes=size, rpm_bytes=sum(p.stat().st_size for p in rpms), reused=True,
    )

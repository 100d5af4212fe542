"""Where the bench builds and installs: a tmpfs when there is room for it.

On the machine this bench was written on, the root filesystem is ext4
WITHOUT a journal. There, ext4 refuses to reuse an inode freed in the last
minutes (`recently_deleted()` in the inode allocator) and creating files
right after deleting thousands of them became ten times slower: dnf's install
of the bench set took 12-16 s instead of 3-4 s, depending only on what the
previous step had deleted. freight's build deletes its staging root, the
floors delete theirs, so both sides of every ratio got that noise. On a tmpfs
neither side pays for the disk, which also makes the ratios conservative:
the compute freight adds (rpmbuild) weighs more against a cheaper floor.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMPFS = Path("/dev/shm")
# Trees alive at once: freight's staging root, its RPM, the floor's root and tarball, an installed copy.
ROOM_FACTOR = 4


@contextmanager
def scratch(requested: Path | None, tree_bytes: int, fallback: Path) -> Iterator[Path]:
    """A fresh, empty work folder, removed afterwards: REQUESTED, else a tmpfs with room, else FALLBACK."""
    if requested is not None:
        parent = requested
    elif filesystem(TMPFS) == "tmpfs" and shutil.disk_usage(TMPFS).free > ROOM_FACTOR * tree_bytes + (1 << 30):
        parent = TMPFS
    else:
        parent = fallback
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="freight-bench-", dir=parent))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def filesystem(path: Path) -> str:
    """The type of the filesystem PATH is on (the longest mount point that contains it)."""
    best, kind = "", "unknown"
    real = os.path.realpath(path)
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            point = fields[1].replace("\\040", " ")
            inside = real == point or real.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, kind = point, fields[2]
    return kind

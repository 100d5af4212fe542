"""`freight tail`: a file inside a running machine, streamed out (a log the application writes).

The file is read through the machine's root as its processes see it
(/proc/LEADER/root: its mounts, its state paths, its /tmp), the path
resolved inside the machine. `-f` follows what is appended; `-F` also
follows the name across rotation (a new file, or a truncated one), as
`tail -F` does.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from typing import BinaryIO

from freight.common.errors import FreightError
from freight.runtime import rootfs
from freight.runtime.machines import Target

POLL = 0.1  # seconds between looks at a followed file
LAST_LINES = 10


def _open(target: Target, path: str) -> BinaryIO:
    where = rootfs.host_path(target.root, path)
    try:
        return open(where, "rb")
    except FileNotFoundError:
        raise FreightError(f"{target.name}:{path}: no such file in the machine") from None
    except IsADirectoryError:
        raise FreightError(f"{target.name}:{path}: a folder, not a file") from None


def tail(target: Target, path: str, follow: bool = False, by_name: bool = False, last: int = LAST_LINES) -> None:
    out = sys.stdout.buffer
    f = _open(target, path)
    try:
        for line in deque(f, maxlen=last):
            out.write(line)
        out.flush()
        while follow or by_name:
            chunk = f.read()
            if chunk:
                out.write(chunk)
                out.flush()
                continue
            if by_name and _rotated(target, path, f):
                f.close()
                f = _open(target, path)
                continue
            if not target.host.systemd.machine(target.name):
                return  # the machine stopped: nothing more will come
            time.sleep(POLL)
    finally:
        f.close()


def _rotated(target: Target, path: str, f: BinaryIO) -> bool:
    """A new file at PATH, or ours truncated below where we read."""
    try:
        st = os.stat(rootfs.host_path(target.root, path))
    except (FileNotFoundError, FreightError):
        return False  # between the move and the new file: keep waiting
    mine = os.fstat(f.fileno())
    if (st.st_dev, st.st_ino) != (mine.st_dev, mine.st_ino):
        return True
    if st.st_size < f.tell():
        f.seek(0)
    return False

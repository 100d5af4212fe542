"""A file's digest from an offset to its end, computed on another core.

`freight publish` reads each new package twice: createrepo_c hashes the whole
file for the metadata, and the payload check hashes the payload against the
signed header. createrepo_c holds Python's GIL while it reads, so a thread
hashing beside it waits: measured on a 54 MB container, createrepo_c alone
0.086 s, the check alone 0.098 s, both in two threads 0.174 s. A child
process has no GIL to share; it reads the file the parent has open (through
/proc/PID/fd/N, so a file renamed over meanwhile does not fool it) from the
page cache, while createrepo_c reads it in the parent. Even starting the
child needs the GIL, so the caller waits for `started` before it calls
createrepo_c. For a small payload the child's start (about 20 ms) would cost
more than it saves: that is hashed in place.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import threading

from freight.common.run import CommandError, spawn

# Below this many bytes, starting a child costs more than hashing beside createrepo_c.
CHILD_FROM = 16 << 20

_CHILD = """\
import hashlib, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.lseek(fd, int(sys.argv[2]), os.SEEK_SET)
h = hashlib.new(sys.argv[3])
while chunk := os.read(fd, 1 << 20):
    h.update(chunk)
print(h.hexdigest())
"""


def in_place(fd: int, offset: int, algo: str) -> str:
    """The digest of FD from OFFSET to its end, in this process (threads may run it side by side)."""
    h = hashlib.new(algo)
    os.lseek(fd, offset, os.SEEK_SET)
    while chunk := os.read(fd, 1 << 20):
        h.update(chunk)
    return h.hexdigest()


class OnAnotherCore:
    """A payload digest for one check that runs in a child process; `started` is set once the
    child runs (or once no child will: a small payload, or a check that ended before hashing)."""

    def __init__(self) -> None:
        self.started = threading.Event()

    def __call__(self, fd: int, offset: int, algo: str) -> str:
        if os.fstat(fd).st_size - offset < CHILD_FROM:
            self.started.set()
            return in_place(fd, offset, algo)
        argv = [sys.executable, "-I", "-S", "-c", _CHILD, f"/proc/{os.getpid()}/fd/{fd}", str(offset), algo]
        with tempfile.TemporaryFile() as out:
            try:
                child = spawn(argv, output=out)
            finally:
                self.started.set()
            code = child.wait()
            out.seek(0)
            text = out.read().decode(errors="replace")
        if code != 0:
            raise CommandError(argv, code, text)
        return text.strip()

"""`freight exec -t`: a pty for the process, its size the terminal's, forwarded both ways.

The pty is opened on the host and handed to systemd as the unit's TTYPath:
systemd makes it the process's controlling terminal (isatty() holds; its
name is the host's, which the machine's /dev/pts does not list: machined's
OpenMachinePTY would open one there, but pystemd 0.10 closes the descriptor
its reply carries before it can be used), so when freight exec ends the pty's master is closed and the
kernel hangs the process up, as for a closed ssh session.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import termios
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

CHUNK = 65536


@dataclass
class Pty:
    master: int
    path: str
    follower: int
    open_fds: list[int] = field(default_factory=list)  # what select watches: master, and stdin with -i

    @classmethod
    def open(cls) -> Pty:
        master, follower = os.openpty()
        pty = cls(master, os.ttyname(follower), follower)
        copy_size(pty.master)
        return pty

    def close(self) -> None:
        for fd in (self.master, self.follower):
            try:
                os.close(fd)
            except OSError:
                pass

    @contextmanager
    def forwarding(self, interactive: bool) -> Iterator[None]:
        """While the process runs: our terminal in raw mode (with -i), its size followed."""
        os.close(self.follower)  # systemd opened its own: ours would keep the pty from hanging up
        self.follower = -1
        self.open_fds = [self.master] + ([sys.stdin.fileno()] if interactive else [])
        saved = None
        if interactive and os.isatty(sys.stdin.fileno()):
            saved = termios.tcgetattr(sys.stdin.fileno())
            tty.setraw(sys.stdin.fileno())
        old = signal.signal(signal.SIGWINCH, lambda *_: copy_size(self.master))
        try:
            yield
        finally:
            signal.signal(signal.SIGWINCH, old)
            if saved is not None:
                termios.tcsetattr(sys.stdin.fileno(), termios.TCSAFLUSH, saved)

    def readable(self) -> list[int]:
        return list(self.open_fds)

    def pump(self, ready: list[int]) -> None:
        """Copy what is ready: the process's output to stdout, our input to the process."""
        if self.master in ready:
            try:
                data = os.read(self.master, CHUNK)
            except OSError:  # EIO: every follower closed, the process has ended
                data = b""
            if data:
                _write_all(sys.stdout.fileno(), data)
            else:
                self.open_fds = [fd for fd in self.open_fds if fd != self.master]
        stdin = sys.stdin.fileno()
        if stdin in ready and stdin in self.open_fds:
            data = os.read(stdin, CHUNK)
            if data:
                _write_all(self.master, data)
            else:  # our input ended: the process sees end of file
                _write_all(self.master, b"\x04")
                self.open_fds = [fd for fd in self.open_fds if fd != stdin]

    def drain(self) -> None:
        """What the process wrote just before it ended."""
        while self.master in self.open_fds:
            self.pump([self.master])


def copy_size(master: int) -> None:
    """Our terminal's size onto the pty (none when we have no terminal)."""
    for fd in (sys.stdout.fileno(), sys.stdin.fileno()):
        if os.isatty(fd):
            size: Any = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(master, termios.TIOCSWINSZ, size)
            return


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]

"""`freight exec -t`: a pty for the process, its size the terminal's, forwarded both ways.

The pty is one of the machine's own: machined's OpenMachinePTY opens it in
the machine's /dev/pts (so `tty` and whatever looks up its terminal's name
work inside), and it is handed to the host's systemd as the unit's TTYPath
through the machine's root. systemd makes it the process's controlling
terminal, so when freight exec ends the pty's master is closed and the
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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from freight.runtime.bus import Bus

CHUNK = 65536


@dataclass
class Pty:
    master: int
    path: str  # the follower, as the host's systemd opens it
    open_fds: list[int] = field(default_factory=list)  # what select watches: master, and stdin with -i

    @classmethod
    def open(cls, bus: Bus, machine: str, leader: int) -> Pty:
        """A new pty of MACHINE, whose PID 1 on the host is LEADER."""
        master, inside = bus.open_pty(machine)
        pty = cls(master, f"/proc/{leader}/root{inside}")
        copy_size(pty.master)
        return pty

    def close(self) -> None:
        try:
            os.close(self.master)
        except OSError:
            pass

    @contextmanager
    def forwarding(self, interactive: bool) -> Iterator[None]:
        """While the process runs: our terminal in raw mode (with -i), its size followed."""
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

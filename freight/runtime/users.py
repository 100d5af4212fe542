"""A machine's users, from its own /etc/passwd: who `exec -u` runs as, and `shell`'s shell.

The host's account database knows nothing of the machine's users; the
machine's own passwd file is the only truth, read through the machine's root
(symlinks resolved inside it). A numeric user the file does not name runs
with its own number as group, as `nsenter -S` would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from freight.common.errors import UsageError
from freight.runtime import rootfs

DEFAULT_SHELL = "/bin/sh"


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: str
    shell: str


def lookup(root: Path, who: str | None) -> User:
    """WHO (a name or a number; None for root) as the machine's passwd says; UsageError if unknown."""
    who = who or "root"
    entries = _entries(root)
    for entry in entries:
        if entry.name == who or (who.isdigit() and entry.uid == int(who)):
            return entry
    if who.isdigit():
        return User(who, int(who), int(who), "/", DEFAULT_SHELL)
    if who == "root":
        return User("root", 0, 0, "/root", DEFAULT_SHELL)
    raise UsageError(f"{who}: no such user in the machine's /etc/passwd")


def _entries(root: Path) -> list[User]:
    try:
        text = rootfs.host_path(root, "/etc/passwd").read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return []
    out = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[2].isdigit() and fields[3].isdigit():
            out.append(User(fields[0], int(fields[2]), int(fields[3]), fields[5] or "/", fields[6] or DEFAULT_SHELL))
    return out

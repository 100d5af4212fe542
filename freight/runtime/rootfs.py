"""Paths inside a machine, resolved the way the machine itself would resolve them.

A path a user names (`freight cp NAME:/etc/x`, `freight tail NAME /var/log/app`,
`freight exec -w DIR`) may cross symlinks that point anywhere: they are
followed inside the machine's root, so `/etc/x -> /../../etc/shadow` stays
in the machine and never reaches the host's files.
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path

from freight.common.errors import UsageError

MAX_LINKS = 40  # as the kernel's ELOOP


def resolve(root: Path, path: str, follow_last: bool = True) -> str:
    """PATH (absolute, inside the machine) with every symlink followed inside ROOT; the result
    is absolute, relative to ROOT, and may name something that does not exist (its last part)."""
    if not path.startswith("/"):
        raise UsageError(f"{path}: expected an absolute path inside the machine")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = root / "/".join([*done, part])
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:  # nothing below it exists either: the rest is only words
            return posixpath.normpath("/" + "/".join([*done, part, *parts]))
        except NotADirectoryError:
            raise UsageError(f"{path}: /{'/'.join(done)} is not a folder in the machine") from None
        if stat.S_ISLNK(st.st_mode) and (parts or follow_last):
            links += 1
            if links > MAX_LINKS:
                raise UsageError(f"{path}: too many levels of symbolic links in the machine")
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        done.append(part)
    return "/" + "/".join(done)


def host_path(root: Path, path: str, follow_last: bool = True) -> Path:
    """Where PATH inside the machine is on the host, through ROOT."""
    return root / resolve(root, path, follow_last).lstrip("/")


def which(root: Path, command: str, search: str) -> str | None:
    """The path inside the machine of COMMAND (a name looked up in SEARCH, a PATH, or a path),
    or None; an existing file that is not executable is returned too (the caller says 126)."""
    if "/" in command:
        candidates = [command if command.startswith("/") else posixpath.join("/", command)]
    else:
        candidates = [posixpath.join(d, command) for d in search.split(":") if d.startswith("/")]
    for candidate in candidates:
        found = host_path(root, candidate)
        if found.is_file():
            return candidate
    return None


def is_executable(root: Path, path: str) -> bool:
    st = os.stat(host_path(root, path))
    return bool(st.st_mode & 0o111)

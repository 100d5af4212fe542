"""The users and groups a container's own /etc/passwd and /etc/group name.

A container's files belong to its users, which the host (and the build
machine) may not have, or may have under other numbers: every question of
ownership is answered with the container's own account files.
"""

from __future__ import annotations

from pathlib import Path


def _entries(path: Path) -> list[tuple[str, int]]:
    """(NAME, ID) of each line of a passwd or group file; none if it is missing."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2].isdigit():
            out.append((fields[0], int(fields[2])))
    return out


def ids_by_name(path: Path) -> dict[str, int]:
    """NAME -> id; the first line naming it wins, as for getpwnam."""
    ids: dict[str, int] = {"root": 0}
    for name, number in _entries(path):
        ids.setdefault(name, number)
    return ids


def names_by_id(path: Path) -> dict[int, str]:
    """id -> NAME; the first line with it wins, as for getpwuid."""
    names: dict[int, str] = {0: "root"}
    for name, number in _entries(path):
        names.setdefault(number, name)
    return names

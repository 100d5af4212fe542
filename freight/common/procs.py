"""What /proc/PID/stat says about a process, for the few places that must tell processes apart.

A PID is reused; the kernel's start time (field 22) is not, so a PID and its
start time name one process for good.
"""

from __future__ import annotations

from pathlib import Path


def _fields(pid: int) -> list[str] | None:
    """The fields after the command name (which may hold spaces and parentheses), or None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid: int | None) -> int | None:
    """The kernel's start time of PID, or None if it is gone (or a zombie)."""
    fields = _fields(pid) if pid else None
    return None if fields is None or fields[0] == "Z" else int(fields[19])


def parent(pid: int) -> int | None:
    """PID's parent, or None if it is gone."""
    fields = _fields(pid)
    return None if fields is None else int(fields[1])

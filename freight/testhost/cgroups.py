"""A cgroup of its own for each test host, in every hierarchy systemd-nspawn uses.

Run with `--keep-unit` and no systemd on the machine, systemd-nspawn splits
the cgroup it was started in into `payload` (the container) and
`supervisor` (itself). Two hosts started from the same cgroup would share
one `payload`, and two systemd instances would manage one tree. So each boot
starts nspawn in a fresh child cgroup, which also gives a sure way to kill
everything a host left behind (`cgroup.kill`) and a tree to remove after it.

On this machine the hierarchies are cgroup v2 (`unified`) and systemd's
named v1 hierarchy (`name=systemd`); a pure v2 machine has just the first.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

log = logging.getLogger("freight.testhost.cgroups")


def own_folders() -> list[Path]:
    """This process's cgroup folder in the v2 hierarchy and in systemd's named v1 one, where mounted."""
    mounts: dict[str, tuple[Path, str]] = {}  # "v2" / "name=systemd" -> (mount point, mount root)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        fstype, options = tail[0], tail[2] if len(tail) > 2 else ""
        if fstype == "cgroup2":
            mounts.setdefault("v2", (Path(fields[4]), fields[3]))
        elif fstype == "cgroup" and "name=systemd" in options.split(","):
            mounts.setdefault("name=systemd", (Path(fields[4]), fields[3]))
    folders = []
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        kind = "v2" if controllers == "" else controllers
        if kind in mounts:
            mount, mount_root = mounts[kind]
            rel = os.path.relpath(path, mount_root) if path.startswith(mount_root) else None
            if rel is not None:
                folders.append((mount / rel).resolve() if rel != "." else mount)
    return folders


def create(name: str) -> list[Path]:
    """Make NAME under each of this process's cgroups; return the folders (none if cgroups are not writable)."""
    made = []
    for parent in own_folders():
        folder = parent / name
        try:
            folder.mkdir(exist_ok=True)
        except OSError as exc:
            log.warning("cannot make the cgroup %s (%s); the test host shares its parent's", folder, exc.strerror)
            continue
        made.append(folder)
    return made


def enter(folders: list[Path]) -> None:
    """Move the calling process into FOLDERS (used in the child between fork and exec)."""
    for folder in folders:
        (folder / "cgroup.procs").write_text("0")


def pids(folder: Path) -> list[int]:
    """Every process in FOLDER and below."""
    found = []
    for dirpath, _, _ in os.walk(folder):
        try:
            found += [int(p) for p in Path(dirpath, "cgroup.procs").read_text().split()]
        except OSError:
            pass
    return found


def kill(folders: list[Path]) -> None:
    """SIGKILL every process in FOLDERS: `cgroup.kill` on v2, one by one elsewhere."""
    for folder in folders:
        if not folder.exists():
            continue
        if (folder / "cgroup.kill").exists():
            (folder / "cgroup.kill").write_text("1")
            continue
        for pid in pids(folder):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def remove(folders: list[Path]) -> list[Path]:
    """Remove FOLDERS and the cgroups the host made below them; return those that are still busy."""
    busy = []
    for folder in folders:
        for dirpath, _, _ in sorted(os.walk(folder), key=lambda entry: -len(entry[0])):
            try:
                os.rmdir(dirpath)
            except FileNotFoundError:
                pass
            except OSError:
                busy.append(Path(dirpath))
    return busy

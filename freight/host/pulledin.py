"""Which container packages the running dnf transaction installs only as dependencies of others.

A base pulled in by a derivative (`dnf install container-webapp-prod`) must get
its machine, since the derivative's is made from its image, but nobody asked
for that machine to run. dnf knows why it installs each package; rpm's
scriptlets do not. So freight-host's dnf plugin leaves the names, with dnf's
process, in a runtime file, and the hook's %post believes the file only when
that process is one of its own ancestors: a file left by a transaction that
was refused or killed means nothing to the next one, and `rpm -i` without dnf
counts as asked for.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from freight.common import procs
from freight.host.config import HostConfig


def path(cfg: HostConfig) -> Path:
    return cfg.lock_file.with_name("freight-pulled-in.json")


def record(cfg: HostConfig, names: list[str]) -> None:
    """Note that this process (dnf) installs NAMES (container names) only as dependencies."""
    target = path(cfg)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    tmp.write_text(json.dumps({"pid": os.getpid(), "start": procs.start_time(os.getpid()), "names": sorted(names)}))
    os.replace(tmp, target)


def clear(cfg: HostConfig) -> None:
    path(cfg).unlink(missing_ok=True)


def pulled_in(cfg: HostConfig, name: str) -> bool:
    """Whether the dnf transaction this process runs in installs the container NAME only as a dependency."""
    try:
        data = json.loads(path(cfg).read_text())
    except (OSError, ValueError):
        return False
    if name not in data.get("names", []):
        return False
    return _ancestors().get(int(data.get("pid", 0))) == data.get("start")


def _ancestors() -> dict[int, int | None]:
    """This process's ancestors, each with its start time (to tell it from a later process of the same number)."""
    out: dict[int, int | None] = {}
    pid: int | None = os.getppid()
    while pid is not None and pid > 1 and pid not in out:
        out[pid] = procs.start_time(pid)
        pid = procs.parent(pid)
    return out

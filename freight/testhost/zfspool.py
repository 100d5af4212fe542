"""A scratch ZFS pool on zfs-fuse, for the tests and the benchmarks.

The pool is a sparse file (`cachefile=none`, so no host configuration
remembers it). The zfs-fuse daemon is started only when none runs, and
stopped afterwards only if no other pool appeared meanwhile: other work on the
machine may share the daemon. Its runtime folders go with it when it made them.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from freight.common.run import run

log = logging.getLogger("freight.testhost.zfspool")


def available() -> bool:
    return shutil.which("zfs-fuse") is not None and shutil.which("zpool") is not None and Path("/dev/fuse").exists()


def ready() -> bool:
    return run(["zpool", "list", "-H"], check=False).returncode == 0


def pools() -> list[str]:
    return run(["zpool", "list", "-H", "-o", "name"], check=False).stdout.split()


def wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


@contextmanager
def scratch_pool(work: Path, name: str, size: str) -> Iterator[str]:
    """A fresh pool NAME backed by a sparse file of SIZE in WORK; destroyed afterwards."""
    work.mkdir(parents=True, exist_ok=True)
    started: int | None = None
    runtime = [d for d in (Path("/run/zfs"), Path("/run/lock/zfs")) if not d.exists()]
    if not ready():
        pidfile = work / "zfs-fuse.pid"
        run(["zfs-fuse", "--pidfile", pidfile])
        wait(ready, 30, "zfs-fuse did not come up")
        started = int(pidfile.read_text())
    vdev = work / "pool.img"
    run(["truncate", "-s", size, vdev])
    try:
        run(["zpool", "create", "-o", "cachefile=none", "-m", "none", name, vdev])
        yield name
    finally:
        # zfs-fuse may call a just-used pool busy for a moment (see ZfsStorage._destroy).
        wait(lambda: run(["zpool", "destroy", "-f", name], check=False).returncode == 0 or name not in pools(), 30, f"zpool {name} stays busy")
        vdev.unlink(missing_ok=True)
        if started is not None and pools():
            log.warning("zfs-fuse (pid %d) stays running: other pools appeared meanwhile (%s)", started, ", ".join(pools()))
        elif started is not None:
            _stop(started)
            for folder in runtime:
                shutil.rmtree(folder, ignore_errors=True)


def _stop(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    try:
        wait(lambda: not Path(f"/proc/{pid}").exists(), 30, "zfs-fuse did not stop")
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)

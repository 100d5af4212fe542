"""Figure 5's setting: a host's storage backends, in a scratch folder, on a pool of their own.

The ZFS backend runs on zfs-fuse with a sparse file-backed pool made for the
run (`cachefile=none`, so no host configuration remembers it). The zfs-fuse
daemon is started only when none runs, and then stopped afterwards, but only
if no other pool appeared meanwhile: other work on the machine (the host
tests) may be using the same daemon.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from freight.host import config
from freight.host.config import HostConfig
from freight.host.storage import Storage, open_storage, zfs_letting_go
from freight.run import run

log = logging.getLogger("freight.bench")
POOL_SIZE = "4G"  # sparse: only what is written takes space


def _zfs_ready() -> bool:
    return run(["zpool", "list", "-H"], check=False).returncode == 0


def _pools() -> list[str]:
    return run(["zpool", "list", "-H", "-o", "name"], check=False).stdout.split()


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def zfs_available() -> bool:
    return shutil.which("zfs-fuse") is not None and shutil.which("zpool") is not None and Path("/dev/fuse").exists()


@contextmanager
def zfs_pool(work: Path) -> Iterator[str]:
    """A fresh pool on zfs-fuse for the run; its name. Destroyed afterwards, with the daemon if it was ours."""
    work.mkdir(parents=True, exist_ok=True)
    started: int | None = None
    runtime = [d for d in (Path("/run/zfs"), Path("/run/lock/zfs")) if not d.exists()]
    if not _zfs_ready():
        pidfile = work / "zfs-fuse.pid"
        run(["zfs-fuse", "--pidfile", pidfile])
        _wait(_zfs_ready, 30, "zfs-fuse did not come up")
        started = int(pidfile.read_text())
    pool = f"fbench{os.getpid()}"
    vdev = work / "pool.img"
    run(["truncate", "-s", POOL_SIZE, vdev])
    try:
        run(["zpool", "create", "-o", "cachefile=none", "-m", "none", pool, vdev])
        yield pool
    finally:
        _wait(lambda: run(["zpool", "destroy", "-f", pool], check=False).returncode == 0 or pool not in _pools(), 30, f"zpool {pool} stays busy")
        vdev.unlink(missing_ok=True)
        if started is not None and _pools():
            log.warning("zfs-fuse (pid %d) stays running: other pools appeared while the bench used it (%s)", started, ", ".join(_pools()))
        elif started is not None:
            os.kill(started, signal.SIGTERM)
            _wait(lambda: not Path(f"/proc/{started}").exists(), 30, "zfs-fuse did not stop")
            for folder in runtime:
                shutil.rmtree(folder, ignore_errors=True)


def storage(top: Path, backend: str, parent: str = "nopool/freight") -> Storage:
    """The BACKEND storage of a host whose every folder is under TOP."""
    top.mkdir(parents=True, exist_ok=True)
    conf = top / "host.conf"
    lines = [f"storage = {backend}", f"parent = {parent}", "keep_snapshots = 2"]
    lines += [f"{key} = {top / key.removesuffix('_dir')}" for key in ("images_dir", "machines_dir", "lib_dir", "containers_dir", "nspawn_dir", "units_dir")]
    lines += [f"lock_file = {top / 'host.lock'}", f"hook = {top / 'freight-host-hook'}"]
    conf.write_text("[host]\n" + "\n".join(lines) + "\n")
    cfg: HostConfig = config.load(conf)
    if backend == "zfs":
        run(["zfs", "create", "-p", parent])
    found = open_storage(cfg, backend)
    found.check()
    return found


def add_image(store: Storage, image: str, tree: Path, evr: str) -> None:
    """An image with TREE's files, snapshotted at EVR, as the hook leaves it after an install."""
    store.image_create(image)
    run(["cp", "-a", "--", f"{tree}/.", store.image_dir(image)])
    store.snapshot_create(image, evr)


def remove_image(store: Storage, image: str) -> None:
    store.image_destroy(image)


def destroy_parent(parent: str) -> None:
    zfs_letting_go("destroy", "-r", parent)

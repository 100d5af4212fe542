"""Figure 5's setting: a host's storage backends, in a scratch folder, on a pool of their own.

The ZFS backend runs on zfs-fuse with a sparse file-backed pool made for the
run (`cachefile=none`, so no host configuration remembers it). The zfs-fuse
daemon is started only when none runs, and then stopped afterwards, but only
if no other pool appeared meanwhile: other work on the machine (the host
tests) may be using the same daemon.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path

from freight.common.run import run
from freight.host import config
from freight.host.config import HostConfig
from freight.host.storage import Storage, open_storage, zfs_letting_go
from freight.testhost import zfspool

POOL_SIZE = "4G"  # sparse: only what is written takes space


def zfs_available() -> bool:
    return zfspool.available()


def zfs_pool(work: Path) -> AbstractContextManager[str]:
    """A fresh pool on zfs-fuse for the run; its name (see freight.testhost.zfspool)."""
    return zfspool.scratch_pool(work, f"fbench{os.getpid()}", POOL_SIZE)


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

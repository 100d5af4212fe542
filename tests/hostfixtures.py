"""Fixtures for the host side: a real zfs-fuse pool and a host pointed into a temporary folder.

The pool is file-backed and lives for the session; each test gets a parent
dataset of its own under it and must leave it empty. The zfs-fuse daemon is
started only if none runs, and then stopped at the end, so nothing leaks:
no daemon, no pool, no mount, no zpool.cache (the pool is created with
`cachefile=none`), none of the daemon's runtime folders.
"""

from __future__ import annotations

import itertools
import os
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from freight.common.run import run
from freight.host import config
from freight.host.config import HostConfig
from freight.host.storage import zfs_letting_go
from freight.testhost import zfspool

POOL_SIZE = "2G"  # sparse: only what the tests write takes space
_counter = itertools.count()


@pytest.fixture(scope="session")
def zfs_pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ZFS pool (zfs-fuse, file-backed) for the session; its name."""
    if not zfspool.available():
        pytest.skip("zfs-fuse or /dev/fuse is missing")
    with zfspool.scratch_pool(tmp_path_factory.mktemp("zfs"), f"fthook{os.getpid()}", POOL_SIZE) as pool:
        yield pool


@pytest.fixture
def zfs_parent(zfs_pool: str) -> Iterator[str]:
    """A fresh parent dataset for one test; the test must leave nothing under it."""
    parent = f"{zfs_pool}/t{next(_counter)}"
    run(["zfs", "create", parent])
    yield parent
    leftovers = datasets(parent)[1:]
    zfs_letting_go("destroy", "-r", parent)
    assert leftovers == [], f"the test left datasets behind: {leftovers}"


def datasets(root: str) -> list[str]:
    """Every dataset and snapshot under ROOT (ROOT first), or [] if it does not exist."""
    proc = run(["zfs", "list", "-H", "-o", "name", "-t", "all", "-r", root], check=False)
    return proc.stdout.split() if proc.returncode == 0 else []


@dataclass
class FakeHost:
    """A host whose every location is under one temporary folder."""

    top: Path
    conf: Path
    cfg: HostConfig

    def files(self) -> list[str]:
        """Every path freight may have made (the config file itself excluded)."""
        out = []
        for dirpath, dirnames, filenames in os.walk(self.top):
            rel = os.path.relpath(dirpath, self.top)
            out += [os.path.normpath(f"{rel}/{n}") for n in dirnames + filenames]
        return sorted(p for p in out if p not in ("host.conf", "bin", "bin/freight-host-hook"))


def make_host(top: Path, storage: str, parent: str = "nopool/freight", keep: int = 2, extra: str = "") -> FakeHost:
    top.mkdir(parents=True, exist_ok=True)
    conf = top / "host.conf"
    conf.write_text(
        textwrap.dedent(
            f"""\
            [host]
            storage = {storage}
            parent = {parent}
            keep_snapshots = {keep}
            images_dir = {top}/images
            machines_dir = {top}/machines
            lib_dir = {top}/lib
            containers_dir = {top}/containers
            overlays_dir = {top}/overlays
            protected_dir = {top}/protected
            nspawn_dir = {top}/nspawn
            units_dir = {top}/units
            hook = {top}/bin/freight-host-hook
            lock_file = {top.parent}/freight-host.lock
            run_dir = {top}/run
            """
        )
        + extra
    )
    return FakeHost(top=top, conf=conf, cfg=config.load(conf))


@pytest.fixture(params=["dir", "zfs"])
def fake_host(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    """A host on each backend, configured through $FREIGHT_HOST_CONF, with systemd offline."""
    parent = request.getfixturevalue("zfs_parent") if request.param == "zfs" else "nopool/freight"
    host = make_host(tmp_path / "host", request.param, parent)
    monkeypatch.setenv("FREIGHT_HOST_CONF", str(host.conf))
    monkeypatch.setenv("SYSTEMD_OFFLINE", "1")  # never touch a real systemd, even on a machine that has one
    return host

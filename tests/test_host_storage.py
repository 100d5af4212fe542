"""The storage backends against the real tools: zfs (zfs-fuse) and directories.

Every test runs on both backends through the `fake_host` fixture and must
leave nothing behind (the zfs fixture checks its parent dataset is empty).
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest
from hostfixtures import FakeHost, datasets, make_host

from freight.common.errors import FreightError
from freight.host.storage import Storage, open_storage, snapshot_name, state_name


def storage_of(host: FakeHost) -> Storage:
    return open_storage(host.cfg, host.cfg.storage)


def write_image(storage: Storage, name: str, page: str, extra: dict[str, str] | None = None) -> None:
    root = storage.image_dir(name)
    (root / "srv/www").mkdir(parents=True, exist_ok=True)
    (root / "srv/www/index.html").write_text(page)
    for rel, text in (extra or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_names_are_escaped_for_zfs() -> None:
    assert snapshot_name("1.0-1") == "1.0-1"
    assert snapshot_name("1.0~rc1^git-2_x") == "1.0_7erc1_5egit-2_5fx"
    assert state_name("/var/lib/db") == "var-lib-db"
    assert state_name("/var/lib/my-db") == "var-lib-my_2ddb"
    assert state_name("/srv/a:b+c") == "srv-a_3ab_2bc"


def test_image_snapshot_instance_state_lifecycle(fake_host: FakeHost) -> None:
    storage = storage_of(fake_host)
    storage.check()
    assert storage.image_create("web") is True
    assert storage.image_create("web") is False  # reused, not an error
    write_image(storage, "web", "one", {"srv/www/old.html": "old"})
    storage.snapshot_create("web", "1.0-1")
    (storage.image_dir("web") / "srv/www/old.html").unlink()
    write_image(storage, "web", "two")
    storage.snapshot_create("web", "1.1~rc1-1")
    assert storage.snapshot_exists("web", "1.0-1") and storage.snapshot_exists("web", "1.1~rc1-1")

    a = storage.instance_create("web", "1.0-1", "a")
    b = storage.instance_create("web", "1.1~rc1-1", "b")
    assert a == fake_host.top / "machines/a"
    assert (a / "srv/www/index.html").read_text() == "one" and (a / "srv/www/old.html").exists()
    assert (b / "srv/www/index.html").read_text() == "two" and not (b / "srv/www/old.html").exists()

    # Writes in one instance are seen neither by the other nor by the image.
    (a / "srv/www/index.html").write_text("changed in a")
    (a / "new-in-a").write_text("x")
    assert (b / "srv/www/index.html").read_text() == "two"
    assert (storage.image_dir("web") / "srv/www/index.html").read_text() == "two"
    assert not (storage.image_dir("web") / "new-in-a").exists()

    db = storage.state_create("a", "/var/lib/db")
    assert db == fake_host.top / "lib/state/a/var-lib-db" and db.is_dir()
    (db / "data").write_text("kept")
    assert storage.state_exists("a", "/var/lib/db") and not storage.state_exists("b", "/var/lib/db")

    # An instance goes, its state stays; then the state goes too.
    storage.instance_destroy("a")
    assert not a.exists() and not storage.instance_exists("a")
    assert (db / "data").read_text() == "kept"
    storage.state_destroy("a")
    assert not storage.state_exists("a", "/var/lib/db") and not (fake_host.top / "lib/state").exists()

    storage.instance_destroy("b")
    storage.snapshot_destroy("web", "1.0-1")
    assert not storage.snapshot_exists("web", "1.0-1")
    storage.image_destroy("web")
    assert not storage.image_exists("web")
    leftovers = [p for p in fake_host.files() if p not in ("images", "machines", "lib", "lib/snapshots")]
    assert leftovers == []


def test_instances_of_the_same_snapshot_are_apart(fake_host: FakeHost) -> None:
    storage = storage_of(fake_host)
    storage.image_create("web")
    write_image(storage, "web", "page")
    storage.snapshot_create("web", "1-1")
    a = storage.instance_create("web", "1-1", "a")
    b = storage.instance_create("web", "1-1", "b")
    (a / "only-a").write_text("a")
    assert not (b / "only-a").exists()
    with pytest.raises(FreightError, match="exists already"):
        storage.instance_create("web", "1-1", "a")
    for name in ("a", "b"):
        storage.instance_destroy(name)
    storage.image_destroy("web")


def test_one_state_path_can_be_removed_alone(fake_host: FakeHost) -> None:
    storage = storage_of(fake_host)
    storage.state_create("a", "/var/lib/one")
    two = storage.state_create("a", "/var/lib/two")
    storage.state_destroy("a", "/var/lib/one")
    assert not storage.state_exists("a", "/var/lib/one") and storage.state_exists("a", "/var/lib/two") and two.is_dir()
    storage.state_destroy("a")
    assert not (fake_host.top / "lib/state").exists()


def test_zfs_layout_and_readonly_image(zfs_parent: str, tmp_path: Path) -> None:
    host = make_host(tmp_path, "zfs", zfs_parent)
    storage = storage_of(host)
    storage.image_create("web")
    write_image(storage, "web", "page")
    storage.snapshot_create("web", "1.0-1")
    storage.image_set_writable("web", False)
    with pytest.raises(OSError) as err:
        (storage.image_dir("web") / "x").write_text("no")
    assert err.value.errno == errno.EROFS
    storage.instance_create("web", "1.0-1", "web")
    storage.state_create("web", "/var/lib/db")
    assert datasets(zfs_parent) == [
        zfs_parent,
        f"{zfs_parent}/images",
        f"{zfs_parent}/images/web",
        f"{zfs_parent}/images/web@1.0-1",
        f"{zfs_parent}/machines",
        f"{zfs_parent}/machines/web",
        f"{zfs_parent}/state",
        f"{zfs_parent}/state/web",
        f"{zfs_parent}/state/web/var-lib-db",
    ]
    mounts = Path("/proc/self/mountinfo").read_text()
    for where in (storage.image_dir("web"), storage.machine_dir("web"), storage.state_dir("web", "/var/lib/db")):
        assert f" {where} " in mounts
    # The clone is writable although its origin's dataset is read-only.
    (storage.machine_dir("web") / "x").write_text("yes")
    storage.instance_destroy("web")
    storage.state_destroy("web")
    storage.image_destroy("web")
    assert datasets(zfs_parent) == [zfs_parent], "the grouping datasets go with their last member"


def test_zfs_missing_parent_is_a_clear_error(zfs_pool: str, tmp_path: Path) -> None:
    host = make_host(tmp_path, "zfs", f"{zfs_pool}/no/such/parent")
    before = datasets(zfs_pool)
    with pytest.raises(FreightError) as err:
        storage_of(host).check()
    message = str(err.value)
    assert f"{zfs_pool}/no/such/parent" in message and str(host.conf) in message and "storage = zfs" in message
    assert datasets(zfs_pool) == before


def test_a_non_empty_mountpoint_is_refused(fake_host: FakeHost) -> None:
    storage = storage_of(fake_host)
    storage.image_create("web")
    write_image(storage, "web", "page")
    storage.snapshot_create("web", "1-1")
    squatter = storage.machine_dir("web")
    squatter.mkdir(parents=True)
    (squatter / "mine").write_text("not freight's")
    expected = {  # zfs refuses to mount a clone over it; dir refuses to copy onto it
        "zfs": f"cannot create the instance web at {squatter}: the directory exists and is not empty; move it away",
        "dir": f"to {squatter}: it exists already",
    }[fake_host.cfg.storage]
    with pytest.raises(FreightError, match=re.escape(expected)):
        storage.instance_create("web", "1-1", "web")
    assert (squatter / "mine").read_text() == "not freight's"
    (squatter / "mine").unlink()
    squatter.rmdir()
    storage.image_destroy("web")


def test_dir_copies_keep_owners_modes_and_links(tmp_path: Path) -> None:
    host = make_host(tmp_path, "dir")
    storage = storage_of(host)
    storage.image_create("web")
    root = storage.image_dir("web")
    (root / "etc").mkdir()
    (root / "etc/secret").write_text("s")
    os.chown(root / "etc/secret", 80, 80)
    os.chmod(root / "etc/secret", 0o640)
    (root / "bin").symlink_to("usr/bin")
    storage.snapshot_create("web", "1-1")
    inst = storage.instance_create("web", "1-1", "web")
    st = os.lstat(inst / "etc/secret")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (80, 80, 0o640)
    assert os.readlink(inst / "bin") == "usr/bin"
    assert not list(host.cfg.machines_dir.glob(".*")), "no temporary copy is left"

"""host.conf: defaults, errors that name the file and key, and how `auto` chooses."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from hostfixtures import make_host

from freight.common.errors import UsageError
from freight.host import config


def test_a_missing_file_means_the_defaults(tmp_path: Path) -> None:
    cfg = config.load(tmp_path / "absent.conf")
    assert (cfg.storage, cfg.parent, cfg.keep_snapshots) == ("auto", "tank/freight", 2)
    assert cfg.images_dir == Path("/var/lib/freight/images")
    assert cfg.machines_dir == Path("/var/lib/machines")
    assert cfg.nspawn_dir == Path("/etc/systemd/nspawn")
    assert cfg.units_dir == Path("/etc/systemd/system")
    assert cfg.manifest_path("web") == Path("/usr/share/freight/containers/web/manifest.json")


def test_the_shipped_host_conf_says_the_defaults() -> None:
    shipped = config.load(Path(__file__).resolve().parent.parent / "packaging/host.conf")
    defaults = config.load(Path("/nonexistent/host.conf"))
    assert {**vars(shipped), "path": None} == {**vars(defaults), "path": None}


def test_end_of_line_comments_are_not_part_of_the_value(tmp_path: Path) -> None:
    conf = tmp_path / "host.conf"
    conf.write_text("[host]\nstorage = dir    # zfs, dir, or auto\nparent = tank/c  ; the parent\nkeep_snapshots = 3 # kept\n")
    cfg = config.load(conf)
    assert (cfg.storage, cfg.parent, cfg.keep_snapshots) == ("dir", "tank/c", 3)


def test_the_readme_host_conf_loads(tmp_path: Path) -> None:
    """Every ini block the README shows is a host.conf freight accepts, as written."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = re.findall(r"^```ini\n(.*?)^```", readme, re.S | re.M)
    assert blocks, "the README shows no host.conf"
    for i, block in enumerate(blocks):
        conf = tmp_path / f"host{i}.conf"
        conf.write_text(block)
        cfg = config.load(conf)
        assert cfg.storage in config.STORAGE_KINDS and " " not in cfg.parent


def test_the_environment_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "h.conf"
    conf.write_text("storage = dir\nkeep_snapshots = 5\n")  # plain key = value lines are fine
    monkeypatch.setenv("FREIGHT_HOST_CONF", str(conf))
    cfg = config.load()
    assert (cfg.path, cfg.storage, cfg.keep_snapshots) == (conf, "dir", 5)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("storage = zsf", "storage: expected zfs, dir or auto, got 'zsf'"),
        ("keep_snapshots = 0", "keep_snapshots: expected a whole number of at least 1, got '0'"),
        ("keep_snapshots = two", "keep_snapshots: expected a whole number"),
        ("parent = tank/a b", "parent: expected a ZFS dataset name"),
        ("images_dir = relative/path", "images_dir: expected an absolute path"),
        ("storgae = dir", "unknown key 'storgae'"),
        ("[other]\nstorage = dir", "expected a [host] section"),
    ],
)
def test_bad_settings_name_the_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    conf = tmp_path / "host.conf"
    conf.write_text(text + "\n")
    with pytest.raises(UsageError) as err:
        config.load(conf)
    assert str(err.value).startswith(f"{conf}: ") and expected in str(err.value)


def test_auto_picks_zfs_when_the_parent_exists(zfs_parent: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="freight")
    assert config.choose_storage(make_host(tmp_path / "a", "auto", zfs_parent).cfg) == "zfs"
    assert f"storage: zfs on {zfs_parent}" in caplog.text
    missing = f"{zfs_parent}/absent"
    assert config.choose_storage(make_host(tmp_path / "b", "auto", missing).cfg) == "dir"
    assert f"storage: dir (auto: ZFS parent dataset {missing} is not usable" in caplog.text


def test_auto_picks_dir_without_a_zfs_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="freight")
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no zfs on it
    assert config.choose_storage(make_host(tmp_path / "h", "auto").cfg) == "dir"
    assert "storage: dir (auto: there is no zfs command)" in caplog.text


def test_an_explicit_choice_is_not_second_guessed(tmp_path: Path) -> None:
    assert config.choose_storage(make_host(tmp_path / "h", "zfs", "nowhere/at/all").cfg) == "zfs"


def test_installed_evr_carries_the_lock_serial(tmp_path: Path) -> None:
    """A rebuild after --update-lock is release 1.1: the hook names the upgrade's snapshot by that, not by the manifest's 1."""
    import json

    from freight.host.context import Host

    host = Host.load(make_host(tmp_path / "host", "dir").cfg)
    meta = host.cfg.manifest_path("web").parent
    meta.mkdir(parents=True)
    (meta / "manifest.json").write_text(json.dumps({"name": "web", "version": "1.0", "release": "1"}))
    assert host.installed_evr("web") == "1.0-1"  # an overlay package: no lock
    (meta / "lock.json").write_text(json.dumps({"serial": 0}))
    assert host.installed_evr("web") == "1.0-1"
    (meta / "lock.json").write_text(json.dumps({"serial": 2}))
    assert host.installed_evr("web") == "1.0-1.2"

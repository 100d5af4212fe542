"""Fast tests of freight's pure logic (no tools run)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import webapp_manifest

from freight.build import package
from freight.common.errors import FreightError, UsageError
from freight.manifest import load as manifest
from freight.manifest import lock
from freight.manifest.lock import LockedPackage
from freight.model import rpmbugs
from freight.model.owners import Owners
from freight.model.runsettings import merge_run


def _lock_for(m: manifest.Manifest) -> lock.Lock:
    pkg = LockedPackage("demo-www", 0, "1.0", "1", "noarch", "demo", "sha256:00", 100)
    return lock.Lock(inputs=m.resolution_inputs(), repos={"demo": "x"}, packages=[pkg])


def test_lock_matching_names_each_change(tmp_path: Path) -> None:
    m = manifest.load(webapp_manifest(tmp_path, tmp_path / "repo"))
    stale = _lock_for(m)
    lock.check_matches(m, stale)  # unchanged: fine
    stale.inputs = {**stale.inputs, "packages": ["demo-www", "gone"], "install_weak_deps": True}
    with pytest.raises(UsageError) as err:
        lock.check_matches(m, stale)
    assert "install_weak_deps: true -> false" in str(err.value)
    assert "packages: removed gone" in str(err.value)


def test_lock_round_trip_and_epoch(tmp_path: Path) -> None:
    m = manifest.load(webapp_manifest(tmp_path, tmp_path / "repo"))
    original = _lock_for(m)
    path = tmp_path / "manifest.lock"
    lock.write(path, original)
    again = lock.read(path)
    assert again is not None and again.to_json() == original.to_json()
    assert again.source_date_epoch == 100
    assert lock.read(tmp_path / "none.lock") is None
    path.write_text("{not json")
    with pytest.raises(UsageError, match="not a readable lock file"):
        lock.read(path)


def test_epoch_shows_in_evr() -> None:
    pkg = LockedPackage("openssl-libs", 1, "3.0.7", "2.fc38", "x86_64", "fedora", "sha256:00", 1)
    assert pkg.evr == "1:3.0.7-2.fc38"
    assert pkg.nevra == "openssl-libs-1:3.0.7-2.fc38.x86_64"


def test_owners_come_from_the_container(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/:/bin/sh\nwww:x:80:80::/:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nwww:x:80:\n")
    owners = Owners.of(tmp_path)
    st = os.stat_result((0o100644, 0, 0, 1, 80, 80, 0, 0, 0, 0))
    assert owners.names(st, "/f") == ("www", "www")
    assert owners.names(os.stat_result((0o100644, 0, 0, 1, 0, 0, 0, 0, 0, 0)), "/f") is None
    unknown = os.stat_result((0o100644, 0, 0, 1, 1000, 1000, 0, 0, 0, 0))
    with pytest.raises(FreightError, match="owned by 1000:1000"):
        owners.names(unknown, "/f")


@pytest.mark.parametrize(
    "written,expected",
    [("file:repo", "repo"), ("repo", "repo"), ("../r", "../r")],
)
def test_relative_baseurls_resolve_against_the_manifest(tmp_path: Path, written: str, expected: str) -> None:
    assert manifest._resolve_url(tmp_path / "m", written) == (tmp_path / "m" / expected).resolve().as_uri()


def test_absolute_urls_pass_through() -> None:
    for url in ("https://example.invalid/repo", "file:///srv/repo"):
        assert manifest._resolve_url(Path("/x"), url) == url


def test_run_merge_derivative_wins_and_lists_merge() -> None:
    base = {
        "command": ["/usr/bin/httpd", "-f"],
        "environment": {"LANG": "C", "MODE": "dev"},
        "state": ["/var/lib/app"],
        "limits": {"memory": "256M", "tasks": 64},
        "read_only": True,
    }
    derived = {"environment": {"MODE": "prod"}, "state": ["/var/log/app", "/var/lib/app"], "limits": {"memory": "1G"}, "read_only": False}
    assert merge_run(base, derived) == {
        "command": ["/usr/bin/httpd", "-f"],
        "environment": {"LANG": "C", "MODE": "prod"},
        "state": ["/var/lib/app", "/var/log/app"],
        "limits": {"memory": "1G", "tasks": 64},
        "read_only": False,
    }
    assert merge_run(base, {"command": ["/bin/sh"]})["command"] == ["/bin/sh"]
    assert "command" not in merge_run(base, {"boot": True})
    assert base["environment"] == {"LANG": "C", "MODE": "dev"}  # the base is left alone


def test_lock_pins_a_layers_base_and_an_update_of_it_bumps_the_serial(tmp_path: Path) -> None:
    m = manifest.load(webapp_manifest(tmp_path, tmp_path / "repo"))
    base = LockedPackage("container-webapp", 0, "1.0", "1", "x86_64", "demo", "sha256:11", 200)
    layered = lock.Lock(inputs=m.resolution_inputs(), repos={"demo": "x"}, packages=[], base=base)
    assert layered.source_date_epoch == 200  # a layer may add no package: its base still dates it
    lock.write(tmp_path / "m.lock", layered)
    again = lock.read(tmp_path / "m.lock")
    assert again is not None and again.base == base and again.to_json() == layered.to_json()
    assert "base" not in json.loads(_lock_for(m).to_json())  # a container's lock is as before
    assert layered.updated(layered.inputs, layered.repos, [], "1.0-1", base).serial == 0
    newer = LockedPackage("container-webapp", 0, "1.1", "1", "x86_64", "demo", "sha256:22", 300)
    assert layered.updated(layered.inputs, layered.repos, [], "1.0-1", newer).serial == 1


def test_the_serial_counts_rebuilds_of_one_version(tmp_path: Path) -> None:
    m = manifest.load(webapp_manifest(tmp_path, tmp_path / "repo"))
    old = LockedPackage("demo-ssl", 0, "1.0", "1", "x86_64", "demo", "sha256:11", 200)
    new = LockedPackage("demo-ssl", 0, "2.0", "1", "x86_64", "demo", "sha256:22", 300)
    fix = [{"id": "FIX-1"}]
    first = lock.Lock(inputs=m.resolution_inputs(), repos={}, packages=[old], serial_of="1.0-1")
    rebuilt = first.updated(first.inputs, {}, [new], "1.0-1", fixes=lambda: fix)
    assert (rebuilt.serial, rebuilt.serial_of, rebuilt.fixes, rebuilt.release("1")) == (1, "1.0-1", fix, "1.1")
    # the manifest's version moves on: no suffix needed, nor the last update's advisories
    bumped = rebuilt.counting("1.1-1")
    assert (bumped.serial, bumped.serial_of, bumped.fixes, bumped.packages) == (0, "1.1-1", [], [new])
    assert rebuilt.counting("1.0-1") == rebuilt
    # a version bump and new packages at once: the new version alone makes it an upgrade; the fixes are its own
    both = first.updated(first.inputs, {}, [new], "1.1-1", fixes=lambda: fix)
    assert (both.serial, both.serial_of, both.fixes) == (0, "1.1-1", fix)
    # a lock from before serial_of counts for the manifest as it is
    legacy = lock.Lock(inputs=m.resolution_inputs(), repos={}, packages=[old], serial=2)
    assert legacy.counting("1.3-1").serial == 2 and legacy.updated(legacy.inputs, {}, [new], "1.3-1").serial == 3
    lock.write(tmp_path / "m.lock", both)
    assert lock.read(tmp_path / "m.lock") == both


def _mktree(root: Path) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0::/:/bin/sh\n")
    (root / "etc/os-release").write_text("ID=demo\n")
    (root / "srv/data").mkdir(parents=True, mode=0o750)
    os.chown(root / "srv/data", 80, 80)
    (root / "srv/data/one").write_text("one\n")
    (root / "bin").symlink_to("usr/bin")


def test_tree_changes_find_new_and_changed_paths(tmp_path: Path) -> None:
    from freight.build import tree

    root = tmp_path / "root"
    _mktree(root)
    before = tree.snapshot(root)
    assert tree.Changes.between(before, tree.snapshot(root, before)) == tree.Changes([], [])
    with (root / "etc/passwd").open("a") as f:
        f.write("www:x:80:80::/:/bin/sh\n")  # same inode, new content
    os.chown(root / "srv/data/one", 80, 80)  # same content, new owner
    (root / "srv/data/two").write_text("two\n")
    os.link(root / "srv/data/two", root / "srv/data/two-again")
    (root / "srv/new/deep").mkdir(parents=True)
    os.chmod(root / "srv/new", 0o700)
    (root / "srv/new/deep/f").write_text("f\n")
    changes = tree.Changes.between(before, tree.snapshot(root, before))
    assert changes.inexpressible == []
    assert changes.changed == [
        "etc/passwd", "srv/data/one", "srv/data/two", "srv/data/two-again", "srv/new", "srv/new/deep", "srv/new/deep/f"
    ]

    out = tmp_path / "overlay"
    out.mkdir()
    tree.copy_out(root, changes.changed, out)
    assert (out / "etc/passwd").read_text().endswith("www:x:80:80::/:/bin/sh\n")
    # a directory only on the way keeps the attributes it has in the tree
    assert (os.stat(out / "srv/data").st_mode & 0o7777, os.stat(out / "srv/data").st_uid) == (0o750, 80)
    assert (os.stat(out / "srv/data/one").st_uid, os.stat(out / "srv/new").st_mode & 0o777) == (80, 0o700)
    assert os.stat(out / "srv/data/two").st_ino == os.stat(out / "srv/data/two-again").st_ino
    assert not (out / "etc/os-release").exists() and not (out / "bin").exists()


def test_tree_changes_an_overlay_cannot_express(tmp_path: Path) -> None:
    from freight.build import tree

    root = tmp_path / "root"
    _mktree(root)
    before = tree.snapshot(root)
    (root / "etc/os-release").unlink()
    for path in (root / "srv/data").iterdir():
        path.unlink()
    (root / "srv/data").rmdir()
    (root / "bin").unlink()
    (root / "bin").mkdir()
    changes = tree.Changes.between(before, tree.snapshot(root, before))
    assert changes.inexpressible == [
        "/bin (a symbolic link, now a directory)",
        "/etc/os-release (deleted)",
        "/srv/data (deleted)",  # its contents are not listed one by one
    ]


@pytest.mark.parametrize(
    ("version", "hangs"),
    [("4.18.0", True), ("4.18.0-rc1", True), ("4.18.1", False), ("4.18.2", False), ("4.19.1.1", False), ("4.17.1", False), ("4.16.1.3", False)],
)
def test_which_rpm_versions_hang_on_fifos(version: str, hangs: bool) -> None:
    assert rpmbugs.hangs_on_fifos(version) is hangs


def test_descriptions_are_wrapped_to_79_columns_keeping_paragraphs_and_indented_lines() -> None:
    from freight.build.changelog import wrap_description

    text = "word " * 40 + "\n\n  - an indented item stays as it is\n  - " + "long " * 20 + "\n\nshort\nlines join"
    wrapped = wrap_description(text)
    assert all(len(line) <= 79 for line in wrapped.splitlines())
    paragraphs = wrapped.split("\n\n")
    assert len(paragraphs) == 3 and paragraphs[2] == "short lines join"
    assert paragraphs[1].splitlines()[0] == "  - an indented item stays as it is"
    assert paragraphs[1].splitlines()[2].startswith("  long")


def test_changelog_is_newest_first_wrapped_and_escaped() -> None:
    from freight.build.changelog import render

    fix = {"id": "ADV-1", "type": "security", "severity": "Low", "cves": ["CVE-2026-1", "CVE-2026-2"], "package": "a", "to": "2-1"}
    history = [
        lock.HistoryEntry(0, "1.0-1", 86400 * 365, ["first lock: 1 packages"]),
        lock.HistoryEntry(1, "1.0-1.1", 86400 * 400, ["a 1-1 -> 2-1", "added " + "b" * 100 + " 100%"], [fix]),
    ]
    text = render(history, None)
    first, second = text.split("\n\n")
    assert first.startswith("* Fri Feb 05 1971 freight - 1.0-1.1\n- a 1-1 -> 2-1\n")
    assert "100%%" in first and "- ADV-1 (security, Low) for a 2-1: CVE-2026-1, CVE-2026-2" in first
    assert second == "* Fri Jan 01 1971 freight - 1.0-1\n- first lock: 1 packages"


def test_lock_history_keeps_dates_in_order_and_names_the_changes(tmp_path: Path) -> None:
    m = manifest.load(webapp_manifest(tmp_path, tmp_path / "repo"))
    old = _lock_for(m).with_history("1.0-1", 1000, None)
    assert old.with_history("1.0-1", 2000, old) is old  # a rebuild of the same release adds nothing
    newer = LockedPackage("demo-www", 0, "1.1", "1", "noarch", "demo", "sha256:01", 50)
    extra = LockedPackage("demo-extra", 0, "1", "1", "noarch", "demo", "sha256:02", 50)
    new = lock.Lock(old.inputs, old.repos, [newer, extra], serial=1, fixes=[{"id": "X"}], history=old.history)
    updated = new.with_history("1.0-1.1", 500, old)
    assert [(h.evr, h.date) for h in updated.history] == [("1.0-1", 1000), ("1.0-1.1", 1000)]
    assert updated.history[-1].changes == ["added demo-extra 1-1", "demo-www 1.0-1 -> 1.1-1"]
    assert updated.history[-1].fixes == [{"id": "X"}]
    path = tmp_path / "manifest.lock"
    lock.write(path, updated)
    assert lock.read(path) == updated


def test_a_payload_digest_from_a_child_process_equals_the_one_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from freight.common.run import CommandError
    from freight.trust import digest

    path = tmp_path / "blob"
    path.write_bytes(os.urandom(3 << 20))
    monkeypatch.setattr(digest, "CHILD_FROM", 1 << 20)  # the child path for this file, in place for a tiny one
    fd = os.open(path, os.O_RDONLY)
    try:
        hasher = digest.OnAnotherCore()
        assert hasher(fd, 1000, "sha256") == digest.in_place(fd, 1000, "sha256") and hasher.started.is_set()
        with pytest.raises(CommandError):
            digest.OnAnotherCore()(fd, 0, "no-such-hash")
        small = digest.OnAnotherCore()
        assert small(fd, (3 << 20) - 10, "sha512") == digest.in_place(fd, (3 << 20) - 10, "sha512")
    finally:
        os.close(fd)


def test_a_pulled_in_note_counts_only_inside_the_dnf_that_wrote_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    from freight.host import config, pulledin

    conf = tmp_path / "host.conf"
    conf.write_text(f"[host]\nstorage = dir\nlock_file = {tmp_path}/run/freight-host.lock\n")
    cfg = config.load(conf)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    ask = f"from pathlib import Path; from freight.host import config, pulledin; print(pulledin.pulled_in(config.load(Path({str(conf)!r})), 'webapp'))"

    def child() -> str:  # a scriptlet's hook runs as a descendant of dnf: here, of this process
        return subprocess.run([sys.executable, "-c", ask], capture_output=True, text=True, check=True, env=env).stdout.strip()

    assert child() == "False"  # no note
    pulledin.record(cfg, ["webapp"])
    assert child() == "True" and pulledin.pulled_in(cfg, "webapp") is False  # a process is not its own descendant
    assert subprocess.run([sys.executable, "-c", ask.replace("'webapp'", "'other'")], capture_output=True, text=True, env=env).stdout.strip() == "False"
    # a note left by another process (a dnf that was refused or killed) means nothing
    note = json.loads(pulledin.path(cfg).read_text())
    pulledin.path(cfg).write_text(json.dumps({**note, "start": (note["start"] or 0) + 1}))
    assert child() == "False"
    pulledin.clear(cfg)
    assert not pulledin.path(cfg).exists()

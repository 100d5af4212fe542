"""Fast tests of freight's pure logic (no tools run)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from freight import lock, manifest, package
from freight.errors import FreightError, UsageError
from freight.stage import LockedPackage

from conftest import webapp_manifest


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


@pytest.mark.parametrize("name", ["/a b", "/100%", "/x/ünïcode"])
def test_file_list_quoting_keeps_names(name: str) -> None:
    assert package._quote(name) == '"' + name.replace("%", "%%") + '"'


@pytest.mark.parametrize("name", ['/a"b', "/a\\b", "/a\nb", "/a[1]", "/a*", "/a?", "/{a,b}"])
def test_file_list_refuses_unlistable_names(name: str) -> None:
    with pytest.raises(FreightError, match="cannot package"):
        package._quote(name)


def test_owners_come_from_the_container(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/:/bin/sh\nwww:x:80:80::/:/bin/sh\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nwww:x:80:\n")
    owners = package.Owners.of(tmp_path)
    st = os.stat_result((0o100644, 0, 0, 1, 80, 80, 0, 0, 0, 0))
    assert owners.attr(st, "/f") == "%attr(-,www,www) "
    unknown = os.stat_result((0o100644, 0, 0, 1, 1000, 1000, 0, 0, 0, 0))
    with pytest.raises(FreightError, match="owned by 1000:1000"):
        owners.attr(unknown, "/f")


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
    assert manifest.merge_run(base, derived) == {
        "command": ["/usr/bin/httpd", "-f"],
        "environment": {"LANG": "C", "MODE": "prod"},
        "state": ["/var/lib/app", "/var/log/app"],
        "limits": {"memory": "1G", "tasks": 64},
        "read_only": False,
    }
    assert manifest.merge_run(base, {"command": ["/bin/sh"]})["command"] == ["/bin/sh"]
    assert "command" not in manifest.merge_run(base, {"boot": True})
    assert base["environment"] == {"LANG": "C", "MODE": "dev"}  # the base is left alone

"""`freight publish`: incremental, atomic, locked, signed repository metadata with createrepo_c."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, Signer, dnf, freight, rpm_from_spec
from repotools import OpenWatch, check_repository

pytestmark = pytest.mark.slow  # real rpmbuild, createrepo_c and dnf

PLAIN_REPO = "[test]\nname=test\nbaseurl={url}\ngpgcheck=0\nrepo_gpgcheck=0\n"


def publish(folder: Path, *args: str | Path, env: dict[str, str] | None = None) -> dict:
    result = freight("publish", "--json", folder, *args, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def repoquery(folder: Path, tmp: Path) -> list[str]:
    """What the real dnf sees in the repository at FOLDER."""
    proc = dnf(tmp / "root", PLAIN_REPO.format(url=folder.as_uri()), "-q", "repoquery", "--qf", "%{name}-%{version}")
    assert proc.returncode == 0, proc.stderr
    return sorted(proc.stdout.split())


def metadata_texts(folder: Path) -> dict[str, str]:
    """The uncompressed primary, filelists and other XML of FOLDER's repository."""
    import gzip

    import createrepo_c as cr

    records = cr.Repomd(str(folder / "repodata/repomd.xml")).records
    return {r.type: gzip.decompress((folder / r.location_href).read_bytes()).decode() for r in records}


def copy_rpms(src: Path, dest: Path, *patterns: str) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for pattern in patterns or ["*.rpm"]:
        for rpm in src.glob(pattern):
            shutil.copy2(rpm, dest / rpm.name)
    return dest


DEMO = ("demo-base-*.rpm", "demo-www-*.rpm")


@pytest.fixture
def small_repo(demo_repo: Path, tmp_path: Path) -> Path:
    """A published repository of demo-base and demo-www."""
    repo = copy_rpms(demo_repo, tmp_path / "repo", *DEMO)
    publish(repo)
    return repo


def test_publish_200_then_one_new_package_reads_only_the_new_one(bulk_rpms: Path, demo_repo: Path, tmp_path: Path) -> None:
    repo = copy_rpms(bulk_rpms, tmp_path / "repo")
    full = publish(repo)
    assert (full["packages"], full["read"], full["reused"]) == (200, 200, 0)

    new = "demo-www-1.0-1.noarch.rpm"
    shutil.copy2(demo_repo / new, repo / new)
    with OpenWatch(repo) as watch:
        incremental = publish(repo)
        opened = {name for name in watch.opened() if name.endswith(".rpm")}
    assert (incremental["packages"], incremental["read"], incremental["reused"]) == (201, 1, 200)
    assert opened == {new}, "the kernel saw publish open package files it should have reused"

    listed = check_repository(repo)
    assert len(listed) == 201 and new in listed
    # The reused records are exactly what reading every file again gives ...
    fresh = tmp_path / "fresh"
    shutil.copytree(repo, fresh, ignore=shutil.ignore_patterns("repodata", ".freight"))
    assert publish(fresh)["read"] == 201
    assert metadata_texts(fresh) == metadata_texts(repo)
    # ... and list the packages createrepo_c itself finds.
    reference = tmp_path / "reference"
    shutil.copytree(fresh, reference, ignore=shutil.ignore_patterns("repodata", ".freight"))
    subprocess.run(["createrepo_c", "--quiet", "--no-database", str(reference)], check=True)
    assert check_repository(reference) == listed
    assert len(repoquery(repo, tmp_path)) == 201
    print(f"\npublish of 200 packages: {full['seconds']:.3f}s; one new into 200: {incremental['seconds']:.3f}s")


def test_changed_and_removed_files_are_noticed(small_repo: Path, signer: Signer, tmp_path: Path) -> None:
    www = small_repo / "demo-www-1.0-1.noarch.rpm"
    assert freight("sign", "--key", signer.fingerprint, www, env=signer.env).returncode == 0
    stats = publish(small_repo)
    assert (stats["read"], stats["reused"]) == (1, 1)
    (small_repo / "demo-base-1.0-1.x86_64.rpm").unlink()
    stats = publish(small_repo)
    assert (stats["packages"], stats["read"]) == (1, 0)
    assert list(check_repository(small_repo)) == ["demo-www-1.0-1.noarch.rpm"]
    assert publish(small_repo)["read"] == 0


def test_the_previous_generation_stays_readable_for_one_publish(small_repo: Path, bulk_rpms: Path) -> None:
    import createrepo_c as cr

    first = {r.location_href for r in cr.Repomd(str(small_repo / "repodata/repomd.xml")).records}
    shutil.copy2(bulk_rpms / "bulk-001-1.0-1.noarch.rpm", small_repo)
    publish(small_repo)
    assert all((small_repo / href).is_file() for href in first)  # a reader mid-fetch still finds them
    shutil.copy2(bulk_rpms / "bulk-002-1.0-1.noarch.rpm", small_repo)
    publish(small_repo)
    assert not any((small_repo / href).exists() for href in first)  # but only for one generation
    check_repository(small_repo)


@pytest.mark.parametrize("point", ["read", "writing", "written"])
def test_a_killed_publish_leaves_the_previous_repository(point: str, small_repo: Path, bulk_rpms: Path, tmp_path: Path) -> None:
    before = (small_repo / "repodata/repomd.xml").read_bytes()
    shutil.copy2(bulk_rpms / "bulk-001-1.0-1.noarch.rpm", small_repo)
    killed = freight("publish", small_repo, env={"FREIGHT_PUBLISH_HOOK": f"{point}:kill"})
    assert killed.returncode == -signal.SIGKILL
    assert (small_repo / "repodata/repomd.xml").read_bytes() == before
    assert set(check_repository(small_repo)) == {"demo-base-1.0-1.x86_64.rpm", "demo-www-1.0-1.noarch.rpm"}
    assert repoquery(small_repo, tmp_path) == ["demo-base-1.0", "demo-www-1.0"]

    after = freight("publish", small_repo)
    assert after.returncode == 0, after.stderr
    assert not list(small_repo.glob(".repodata.*")), "the leftovers of the killed publish were not cleared"
    assert "bulk-001-1.0-1.noarch.rpm" in check_repository(small_repo)


def test_publish_killed_at_random_moments_never_breaks_the_repository(bulk_rpms: Path, tmp_path: Path) -> None:
    """SIGKILL a real publish of 200 packages after 20…290 ms, ten times."""
    repo = copy_rpms(bulk_rpms, tmp_path / "repo", "bulk-0*.rpm")
    publish(repo)
    good = set(check_repository(repo))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for i, delay in enumerate(range(20, 300, 30)):
        for rpm in bulk_rpms.glob("bulk-1*.rpm"):
            shutil.copy2(rpm, repo)
            os.utime(repo / rpm.name)  # a changed file: re-read every time
        proc = subprocess.Popen([sys.executable, "-m", "freight", "publish", str(repo)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay / 1000)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        listed = set(check_repository(repo))  # whole, whichever generation it is
        assert good <= listed
        good = listed if len(listed) > len(good) else good
        with open(repo / ".freight/publish.lock") as lock:  # nothing of the killed publish holds the lock
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    publish(repo)
    assert len(check_repository(repo)) == len(list(repo.glob("*.rpm")))


def test_concurrent_publishes_both_land(small_repo: Path, bulk_rpms: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "freight", "publish", "--json", str(small_repo)]
    shutil.copy2(bulk_rpms / "bulk-001-1.0-1.noarch.rpm", small_repo)
    first = subprocess.Popen(argv, env={**env, "FREIGHT_PUBLISH_HOOK": "read:sleep=2"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = small_repo / ".freight/publish.lock"
    deadline = time.monotonic() + 30
    while f"pid {first.pid}" not in (lock.read_text() if lock.exists() else ""):
        assert time.monotonic() < deadline and first.poll() is None, "the first publish never took the lock"
        time.sleep(0.02)
    shutil.copy2(bulk_rpms / "bulk-002-1.0-1.noarch.rpm", small_repo)
    second = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out2, err2 = second.communicate(timeout=60)
    out1, err1 = first.communicate(timeout=60)
    assert first.returncode == 0 and second.returncode == 0, err1 + err2
    assert "Waiting for the publish of" in err2  # the second really waited for the first
    assert json.loads(out2)["revision"] > json.loads(out1)["revision"], out1 + out2
    listed = set(check_repository(small_repo))
    assert {"bulk-001-1.0-1.noarch.rpm", "bulk-002-1.0-1.noarch.rpm"} <= listed
    assert repoquery(small_repo, tmp_path) == ["bulk-001-1.0", "bulk-002-1.0", "demo-base-1.0", "demo-www-1.0"]


def test_many_simultaneous_publishes_agree(small_repo: Path, bulk_rpms: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = []
    for n in range(1, 6):
        shutil.copy2(bulk_rpms / f"bulk-00{n}-1.0-1.noarch.rpm", small_repo)
        procs.append(subprocess.Popen([sys.executable, "-m", "freight", "publish", str(small_repo)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    assert all(p.wait(timeout=60) == 0 for p in procs), [p.stderr.read() for p in procs]
    assert len(check_repository(small_repo)) == 7


def test_keep_prunes_old_container_versions_only(demo_repo: Path, tmp_path: Path) -> None:
    repo = copy_rpms(demo_repo, tmp_path / "repo", *DEMO)
    for version in ("1.0", "1.1", "2.0", "10.0"):
        rpm_from_spec("fake-container.spec", repo, fake_version=version)
    stats = publish(repo, "--keep", "2")
    assert stats["pruned"] == ["container-fake-1.0-1.noarch.rpm", "container-fake-1.1-1.noarch.rpm"]
    assert sorted(check_repository(repo)) == [
        "container-fake-10.0-1.noarch.rpm",
        "container-fake-2.0-1.noarch.rpm",
        "demo-base-1.0-1.x86_64.rpm",
        "demo-www-1.0-1.noarch.rpm",
    ]
    assert not (repo / "container-fake-1.0-1.noarch.rpm").exists()
    bad = freight("publish", repo, "--keep", "0")
    assert bad.returncode == 2 and "keep at least 1" in bad.stderr


def test_signed_publish(small_repo: Path, signer: Signer) -> None:
    for rpm in small_repo.glob("*.rpm"):
        assert freight("sign", "--key", signer.fingerprint, rpm, env=signer.env).returncode == 0
    stats = publish(small_repo, "--sign-key", signer.fingerprint, env=signer.env)
    assert stats["signed"] and stats["read"] == 2
    check_repository(small_repo, pubkey=signer.pubkey)
    assert (small_repo / "RPM-GPG-KEY-freight").read_text() == signer.pubkey.read_text()
    assert (small_repo / "repodata/repomd.xml.key").read_text() == signer.pubkey.read_text()  # where zypper looks
    assert "PRIVATE KEY" not in "".join(p.read_text(errors="replace") for p in small_repo.rglob("*") if p.is_file() and p.suffix != ".rpm")


def test_signed_publish_refuses_unsigned_packages_and_changes_nothing(small_repo: Path, signer: Signer) -> None:
    before = sorted((p.name, p.read_bytes()) for p in (small_repo / "repodata").iterdir())
    result = freight("publish", small_repo, "--sign-key", signer.fingerprint, env=signer.env)
    assert result.returncode == 1
    assert "2 package(s) are not signed" in result.stderr and "demo-www-1.0-1.noarch.rpm" in result.stderr
    assert sorted((p.name, p.read_bytes()) for p in (small_repo / "repodata").iterdir()) == before
    assert not (small_repo / "RPM-GPG-KEY-freight").exists() and not (small_repo / "repodata/repomd.xml.key").exists()
    assert not list(small_repo.glob(".repodata.*"))
    allowed = freight("publish", small_repo, "--sign-key", signer.fingerprint, "--allow-unsigned", env=signer.env)
    assert allowed.returncode == 0, allowed.stderr
    check_repository(small_repo, pubkey=signer.pubkey)


def test_publish_refuses_a_keyring_inside_the_repository(small_repo: Path, tmp_path: Path) -> None:
    from conftest import make_signer

    inside = make_signer(small_repo / "keys-here", "inside@example.com")
    result = freight("publish", small_repo, "--sign-key", inside.fingerprint, env=inside.env)
    assert result.returncode == 2 and "is inside the repository" in result.stderr


def test_bad_folders_and_files(small_repo: Path, tmp_path: Path) -> None:
    result = freight("publish", tmp_path / "absent")
    assert result.returncode == 2 and "absent: no such folder" in result.stderr
    before = (small_repo / "repodata/repomd.xml").read_bytes()
    (small_repo / "junk.rpm").write_text("not a package\n")
    result = freight("publish", small_repo)
    assert result.returncode == 1 and f"{small_repo / 'junk.rpm'}: not an RPM package" in result.stderr
    assert (small_repo / "repodata/repomd.xml").read_bytes() == before
    assert not list(small_repo.glob(".repodata.*"))
    no_key = freight("publish", small_repo, "--sign-key", "nobody@example.com")
    assert no_key.returncode == 2 and "no secret key 'nobody@example.com'" in no_key.stderr


def test_demo_repositories_are_written_by_publish(demo_repo: Path) -> None:
    assert (demo_repo / ".freight/publish-state.json").is_file()
    check_repository(demo_repo)


def test_advisories_survive_a_publish(small_repo: Path, bulk_rpms: Path) -> None:
    import datetime

    from freight.publish import updateinfo

    advisory = updateinfo.Advisory(
        id="FREIGHT-TEST-1", type="security", severity="Low", title="a test advisory", cves=["CVE-2026-0001"],
        packages=[updateinfo.AdvisoryPackage("demo-www", 0, "1.0", "1", "noarch", "demo-www-1.0-1.noarch.rpm")],
        issued=datetime.datetime(2026, 1, 1),
    )
    updateinfo.add_to_repo(small_repo, [advisory])
    shutil.copy2(bulk_rpms / "bulk-001-1.0-1.noarch.rpm", small_repo)
    publish(small_repo)
    assert [u.id for u in updateinfo.read_repo(small_repo)] == ["FREIGHT-TEST-1"]
    assert "bulk-001-1.0-1.noarch.rpm" in check_repository(small_repo)


def test_a_damaged_package_is_refused_before_it_is_published(small_repo: Path, bulk_rpms: Path) -> None:
    before = (small_repo / "repodata/repomd.xml").read_bytes()
    data = (bulk_rpms / "bulk-001-1.0-1.noarch.rpm").read_bytes()
    (small_repo / "bulk-001-1.0-1.noarch.rpm").write_bytes(data[:-10])  # an upload cut short
    result = freight("publish", small_repo)
    assert result.returncode == 1
    assert f"{small_repo / 'bulk-001-1.0-1.noarch.rpm'}: truncated" in result.stderr
    assert (small_repo / "repodata/repomd.xml").read_bytes() == before


def test_a_publish_with_nothing_changed_writes_nothing(small_repo: Path, signer: Signer) -> None:
    for rpm in small_repo.glob("*.rpm"):
        assert freight("sign", "--key", signer.fingerprint, rpm, env=signer.env).returncode == 0
    first = publish(small_repo, "--sign-key", signer.fingerprint, env=signer.env)
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (small_repo / "repodata").iterdir()}
    again = publish(small_repo, "--sign-key", signer.fingerprint, env=signer.env)
    assert (again["revision"], again["read"], again["reused"]) == (first["revision"], 0, 2)
    assert again["seconds"] < 0.1
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (small_repo / "repodata").iterdir()} == before

    # each of these makes the next publish a real one
    unsigned = publish(small_repo, "--allow-unsigned")  # other options: no signature now
    assert unsigned["revision"] > again["revision"] and not (small_repo / "repodata/repomd.xml.asc").exists()
    resigned = publish(small_repo, "--sign-key", signer.fingerprint, env=signer.env)
    assert resigned["revision"] > unsigned["revision"]
    (small_repo / "repodata/repomd.xml.asc").unlink()  # repodata/ changed by hand
    assert publish(small_repo, "--sign-key", signer.fingerprint, env=signer.env)["revision"] > resigned["revision"]
    check_repository(small_repo, pubkey=signer.pubkey)
    (small_repo / ".repodata.new-x").mkdir()  # what a killed publish leaves: cleared by a real publish
    cleared = publish(small_repo, "--sign-key", signer.fingerprint, env=signer.env)
    assert not (small_repo / ".repodata.new-x").exists() and cleared["read"] == 0
    rpm = next(small_repo.glob("demo-www-*.rpm"))
    os.utime(rpm)  # a package touched: read again
    assert publish(small_repo, "--sign-key", signer.fingerprint, env=signer.env)["read"] == 1

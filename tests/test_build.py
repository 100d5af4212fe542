"""`freight build` against real dnf, rpmbuild and createrepo_c repositories."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import DBPATH, ROOT, as_the_hook, copy_repo, freight, gpg_key, tree, webapp_manifest

from freight.dist import demorepo

pytestmark = pytest.mark.slow

IMAGE = "var/lib/freight/images/webapp"
META = "usr/share/freight/containers/webapp"


def rpm_q(*args: str | Path) -> str:
    return subprocess.run(["rpm", *map(str, args)], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(demo_repo: Path, tmp_path: Path) -> Path:
    """A private copy of the demo repository that a test may change."""
    return copy_repo(demo_repo, tmp_path / "repo")


def add_package(repo: Path, spec: str, version: str) -> None:
    demorepo.build_rpm(ROOT / "specs/demo" / spec, repo, {"version_override": version})
    demorepo.createrepo(repo)


def build(manifest: Path, *args: str | Path) -> subprocess.CompletedProcess:
    return freight("build", manifest, "-o", manifest.parent / "out", *args)


def test_rpm_installs_into_empty_root_and_equals_staging_tree(repo: Path, tmp_path: Path) -> None:
    manifest = webapp_manifest(tmp_path / "w", repo)
    # demo-private ships files owned by www, a user of the container unknown to this host
    manifest.write_text(manifest.read_text().replace("[demo-www]", "[demo-www, demo-private]"))
    stage = tmp_path / "stage"
    result = build(manifest, "--keep-stage", stage)
    assert result.returncode == 0, result.stderr
    rpm = Path(result.last_line)
    assert rpm.name == "container-webapp-1.0-1.x86_64.rpm" and rpm.parent == manifest.parent / "out"
    assert result.stdout.strip() == str(rpm)  # stdout carries only the path

    target = tmp_path / "target"
    subprocess.run(
        ["rpm", "-i", "--root", target, "--dbpath", DBPATH, "--nodeps", "--noscripts", rpm],
        check=True, env={**os.environ, "RPM_FORCE_DEBIAN": "1"},
    )
    # The host resolves owner names with its own /etc/passwd; the hook gives the image's
    # files their owners from the image's own users, as this does:
    as_the_hook(target, "webapp", target / IMAGE)
    for sub in (IMAGE, META):
        installed, staged = tree(target / sub), tree(stage / sub)
        assert installed == staged
    assert (target / IMAGE / "srv/www/index.html").read_text().count("Hello from the freight demo") == 1
    assert (os.stat(target / IMAGE / "srv/private/token").st_uid, os.stat(target / IMAGE / "srv/private/token").st_gid) == (80, 80)
    # the container keeps its own rpm database, which knows what is inside
    inside = rpm_q("--root", target / IMAGE, "--dbpath", DBPATH, "-qa", "--qf", "%{NAME}\n").split()
    assert sorted(inside) == ["demo-base", "demo-private", "demo-www"]
    # and the image can be verified against the vendors' package headers
    subprocess.run(["rpm", "--root", target / IMAGE, "--dbpath", DBPATH, "-Va"], check=True)


def test_header_declares_bundled_packages_and_metadata(built_webapp: Path) -> None:
    provides = rpm_q("-qp", "--provides", built_webapp).splitlines()
    assert "bundled(demo-base) = 1.0-1" in provides
    assert "bundled(demo-www) = 1.0-1" in provides
    assert "freight-container(webapp) = 1.0-1" in provides
    requires = rpm_q("-qp", "--requires", built_webapp).splitlines()
    # /bin/sh runs the scriptlets that call freight-host's hook; rpmbuild adds it even with AutoReqProv: no
    assert not [r for r in requires if not r.startswith(("rpmlib(", "freight-host")) and r != "/bin/sh"], requires
    files = rpm_q("-qpl", built_webapp).splitlines()
    assert f"/{META}/manifest.json" in files and f"/{META}/lock.json" in files
    assert all(f.startswith((f"/{IMAGE}", f"/{META}")) for f in files)
    assert "/var/lib/freight/images" not in files  # shared with other containers: not ours to own
    # the ELF file keeps its 64-bit colour with freight's small magic database
    colours = dict(
        line.split(" ", 1)[::-1] for line in rpm_q("-qp", "--qf", "[%{FILECOLORS} %{FILENAMES}\n]", built_webapp).splitlines()
    )
    assert colours[f"/{IMAGE}/usr/bin/busybox"] == "2"


def test_staging_root_is_scrubbed(repo: Path, tmp_path: Path) -> None:
    manifest = webapp_manifest(tmp_path / "w", repo)
    manifest.write_text(manifest.read_text().replace("[demo-www]", "[demo-www, demo-private]"))
    stage = tmp_path / "stage"
    assert build(manifest, "--keep-stage", stage).returncode == 0
    image = stage / IMAGE
    # demo-private's scriptlet wrote a machine id and a random seed
    assert (image / "etc/machine-id").read_text() == "uninitialized\n"
    assert not (image / "var/lib/systemd/random-seed").exists()
    leftovers = [p for p in ("var/cache/dnf", "var/lib/dnf", "var/log/dnf.log", "var/log/hawkey.log", "etc/dnf") if (image / p).exists()]
    assert leftovers == []
    assert sorted(os.listdir(image / DBPATH.lstrip("/"))) == ["rpmdb.sqlite"]
    assert not (image / "root/.rpmdb").exists()


def dump(rpm_file: str | Path) -> dict[str, int]:
    """Each file's time, as the RPM records it."""
    return {line.split()[0]: int(line.split()[2]) for line in rpm_q("-qp", "--dump", rpm_file).splitlines()}


def test_packaged_files_keep_their_packages_times_and_the_rest_is_clamped(repo: Path, tmp_path: Path) -> None:
    """demo-late's file is newer than every build time the lock knows: it must still enter the container
    with the time demo-late records, or the image's own rpm -Va calls it changed."""
    manifest = webapp_manifest(tmp_path / "w", repo)
    manifest.write_text(manifest.read_text().replace("[demo-www]", "[demo-www, demo-late]"))
    built = build(manifest)
    assert built.returncode == 0, built.stderr
    (late_rpm,) = repo.glob("demo-late-*.rpm")
    late = dump(late_rpm)["/usr/share/demo-late/stamp"]
    assert late > int(rpm_q("-qp", "--qf", "%{BUILDTIME}", late_rpm))
    times = dump(built.last_line)
    assert times[f"/{IMAGE}/usr/share/demo-late/stamp"] == late
    www = dump(next(repo.glob("demo-www-1.0-*.rpm")))
    assert all(times[f"/{IMAGE}{path}"] == t for path, t in www.items())
    assert int(rpm_q("-qp", "--qf", "%{BUILDTIME}", built.last_line)) == late  # the source date moved up to it

    # without it, what no package records (freight's metadata, the image's rpm database) is dated the lock's source date
    plain = webapp_manifest(tmp_path / "plain", repo)
    assert (plain_build := build(plain)).returncode == 0, plain_build.stderr
    source_date = json.loads(plain.with_suffix(".lock").read_text())["source_date_epoch"]
    plain_times = dump(plain_build.last_line)
    assert plain_times[f"/{IMAGE}{DBPATH}/rpmdb.sqlite"] == plain_times[f"/{META}/manifest.json"] == source_date

    # as a host lays it down: rpm writes the files, the image's database gives them their owners. The image's
    # own rpm -Va is clean (no line, exit 0); the host's rpm -V reports only the owner names it cannot
    # resolve (users only the container has, see the README's Known limits), and nothing else
    root = tmp_path / "host"
    subprocess.run(["rpm", "-i", "--root", root, "--dbpath", DBPATH, "--nodeps", "--noscripts", built.last_line],
                   check=True, capture_output=True, env={**os.environ, "RPM_FORCE_DEBIAN": "1"})
    as_the_hook(root, "webapp", root / IMAGE)
    image = subprocess.run(["rpm", "--root", root / IMAGE, "--dbpath", DBPATH, "-Va", "--nodeps"], capture_output=True, text=True)
    assert (image.returncode, image.stdout) == (0, ""), image.stdout + image.stderr
    host = subprocess.run(["rpm", "--root", root, "--dbpath", DBPATH, "-V", "--nodeps", "container-webapp"], capture_output=True, text=True)
    changed = host.stdout.splitlines()
    assert all(line.split()[0].strip(".UG") == "" for line in changed), host.stdout
    assert host.returncode == (1 if changed else 0), host.stdout + host.stderr


def test_lock_pins_versions_until_update_lock(repo: Path, tmp_path: Path) -> None:
    manifest = webapp_manifest(tmp_path / "w", repo)
    first = build(manifest)
    assert first.returncode == 0, first.stderr
    lock = json.loads(manifest.with_suffix(".lock").read_text())
    assert {p["name"]: p["version"] for p in lock["packages"]} == {"demo-base": "1.0", "demo-www": "1.0"}
    assert all(p["checksum"].startswith("sha256:") for p in lock["packages"])
    assert set(lock["repos"]) == {"demo"}

    add_package(repo, "demo-www.spec", "1.1")
    locked = build(manifest)
    assert locked.returncode == 0, locked.stderr
    assert "bundled(demo-www) = 1.0-1" in rpm_q("-qp", "--provides", locked.last_line)

    updated = build(manifest, "--update-lock")
    assert updated.returncode == 0, updated.stderr
    assert "bundled(demo-www) = 1.1-1" in rpm_q("-qp", "--provides", updated.last_line)
    lock = json.loads(manifest.with_suffix(".lock").read_text())
    assert {p["name"]: p["version"] for p in lock["packages"]}["demo-www"] == "1.1"


def test_unchanged_rebuild_is_a_noop_and_force_rebuilds(repo: Path, tmp_path: Path) -> None:
    manifest = webapp_manifest(tmp_path / "w", repo)
    first = build(manifest)
    assert first.returncode == 0, first.stderr
    rpm = Path(first.last_line)
    before = rpm.stat()

    again = build(manifest)
    assert again.returncode == 0
    assert "container-webapp-1.0-1.x86_64.rpm is up to date" in again.stderr
    assert again.last_line == str(rpm)
    assert "Installing" not in again.stderr
    assert (rpm.stat().st_ino, rpm.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    quiet = build(manifest, "-q")
    assert (quiet.returncode, quiet.stderr, quiet.stdout) == (0, "", f"{rpm}\n")

    forced = build(manifest, "--force")
    assert forced.returncode == 0
    assert "up to date" not in forced.stderr
    assert rpm.stat().st_ino != before.st_ino

    # a change to the repository metadata means it is no longer up to date
    add_package(repo, "demo-www.spec", "1.1")
    assert "up to date" not in build(manifest).stderr


def test_two_builds_of_one_lock_have_equal_file_lists(repo: Path, tmp_path: Path) -> None:
    manifest = webapp_manifest(tmp_path / "w", repo)
    one = build(manifest)
    assert one.returncode == 0, one.stderr
    time.sleep(1.1)  # a second later: any unclamped timestamp would differ
    two = freight("build", manifest, "-o", tmp_path / "out2", "--force")
    assert two.returncode == 0, two.stderr
    dump_one = rpm_q("-qp", "--dump", one.last_line)
    assert dump_one == rpm_q("-qp", "--dump", two.last_line)
    assert "rpmdb.sqlite" in dump_one


def test_lock_that_no_longer_matches_the_manifest_is_refused(repo: Path, tmp_path: Path) -> None:
    manifest = webapp_manifest(tmp_path / "w", repo)
    assert build(manifest).returncode == 0
    manifest.write_text(manifest.read_text().replace("packages: [demo-www]", "packages: [demo-www, demo-base]"))
    result = build(manifest)
    assert result.returncode == 2
    assert "manifest.lock does not match" in result.stderr
    assert "packages: added demo-base" in result.stderr
    assert "--update-lock" in result.stderr


def test_locked_package_gone_from_repository(repo: Path, tmp_path: Path) -> None:
    manifest = webapp_manifest(tmp_path / "w", repo)
    assert build(manifest).returncode == 0
    lock_before = manifest.with_suffix(".lock").read_text()
    for old in repo.glob("demo-www-1.0-*.rpm"):
        old.unlink()
    add_package(repo, "demo-www.spec", "1.1")
    result = build(manifest)
    assert result.returncode == 2, result.stderr
    assert "demo-www-1.0-1.noarch is no longer in repository demo" in result.stderr
    assert manifest.with_suffix(".lock").read_text() == lock_before


def _assert_nothing_left(manifest: Path) -> None:
    out = manifest.parent / "out"
    assert not out.exists() or os.listdir(out) == [], os.listdir(out)
    assert not manifest.with_suffix(".lock").exists()
    stage = Path(os.environ["FREIGHT_CACHE_DIR"]) / "stage"
    assert not stage.exists() or not [p for p in os.listdir(stage) if p.startswith("webapp.")]


def test_build_as_an_ordinary_user_is_refused() -> None:
    with tempfile.TemporaryDirectory() as tmp:  # pytest's own folders are private to root
        _refused_as_nobody(Path(tmp))


def _refused_as_nobody(tmp_path: Path) -> None:
    work = tmp_path / "w"
    manifest = webapp_manifest(work, tmp_path / "repo")
    for path in (tmp_path, work):
        path.chmod(0o755)
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "freight", "build", manifest, "-o", work / "out"],
        env={**os.environ, "PYTHONPATH": str(ROOT), "FREIGHT_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path)},
        capture_output=True, text=True,
    )
    assert proc.returncode == 2, proc.stderr
    assert "freight build needs root" in proc.stderr
    assert not (work / "out").exists() and not manifest.with_suffix(".lock").exists()


def test_unreachable_repository(tmp_path: Path) -> None:
    manifest = webapp_manifest(tmp_path / "w", tmp_path / "no-such-repo")
    result = build(manifest)
    assert result.returncode == 1
    assert "repository 'demo' is unreachable" in result.stderr and "no-such-repo/repodata/repomd.xml" in result.stderr
    _assert_nothing_left(manifest)


def test_unknown_package(repo: Path, tmp_path: Path) -> None:
    manifest = webapp_manifest(tmp_path / "w", repo)
    manifest.write_text(manifest.read_text().replace("[demo-www]", "[demo-www, no-such-package]"))
    result = build(manifest)
    assert result.returncode == 2
    assert "no package in the manifest's repositories provides: no-such-package" in result.stderr
    _assert_nothing_left(manifest)


def test_failure_while_packing_leaves_nothing(repo: Path, tmp_path: Path) -> None:
    """A file name rpm refuses (a control character) is refused while packing, and nothing is written."""
    manifest = webapp_manifest(tmp_path / "w", repo)
    (manifest.parent / "conf").mkdir()
    (manifest.parent / "conf/app.conf").write_text("x\n")
    (manifest.parent / "conf/backup\t1.conf").write_text("x\n")
    manifest.write_text(manifest.read_text() + "files:\n  - src: conf\n    dest: /etc/app\n")
    result = build(manifest)
    assert result.returncode == 1
    assert "cannot package 1 path of webapp:\n  '/etc/app/backup\\t1.conf': it holds the control character 0x09" in result.stderr
    assert "the manifest's files copy it to /etc/app (rename it at its source)" in result.stderr
    _assert_nothing_left(manifest)


def test_files_are_copied_with_their_mode(repo: Path, tmp_path: Path) -> None:
    manifest = webapp_manifest(tmp_path / "w", repo)
    (manifest.parent / "site").mkdir()
    (manifest.parent / "site/extra.html").write_text("<p>extra</p>\n")
    (manifest.parent / "site/odd name 100%.html").write_text("<p>odd name</p>\n")
    os.chown(manifest.parent / "site/extra.html", 1234, 1234)  # the builder's, not the container's
    manifest.write_text(
        manifest.read_text()
        + "files:\n  - src: site\n    dest: /srv/www/site\n  - src: site/extra.html\n    dest: /srv/www/secret.html\n    mode: '0600'\n"
    )
    result = build(manifest)
    assert result.returncode == 0, result.stderr
    dump = {line.split()[0]: line.split() for line in rpm_q("-qp", "--dump", result.last_line).splitlines()}
    assert dump[f"/{IMAGE}/srv/www/secret.html"][4] == "0100600"
    # copied files belong to root, as with every image builder, not to whoever built
    assert dump[f"/{IMAGE}/srv/www/site/extra.html"][5:7] == ["root", "root"]
    # names with spaces and '%' reach the RPM unchanged
    assert f"/{IMAGE}/srv/www/site/odd name 100%.html" in rpm_q("-qpl", result.last_line).splitlines()


def test_ctrl_c_leaves_no_rpm_and_no_staging_root(repo: Path, tmp_path: Path) -> None:
    manifest = webapp_manifest(tmp_path / "w", repo)
    cache = tmp_path / "cache"
    proc = subprocess.Popen(
        [sys.executable, "-m", "freight", "build", str(manifest), "-o", str(manifest.parent / "out")],
        env={**os.environ, "PYTHONPATH": str(ROOT), "FREIGHT_CACHE_DIR": str(cache)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not ((cache / "stage").exists() and os.listdir(cache / "stage")):
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C: the whole process group
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert os.listdir(cache / "stage") == []
    out = manifest.parent / "out"
    assert not out.exists() or os.listdir(out) == []
    assert not manifest.with_suffix(".lock").exists()


def test_gpgcheck_refuses_unsigned_packages_unless_told(repo: Path, tmp_path: Path) -> None:
    gpg_key(tmp_path / "RPM-GPG-KEY-test")
    manifest = webapp_manifest(tmp_path / "w", repo)
    manifest.write_text(manifest.read_text().replace(f"baseurl: {repo.as_uri()}", f"baseurl: {repo.as_uri()}\n    gpgkey: ../RPM-GPG-KEY-test"))
    refused = build(manifest)
    assert refused.returncode == 1
    assert "failed its signature check" in refused.stderr
    _assert_nothing_left(manifest)
    allowed = build(manifest, "--nogpgcheck")
    assert allowed.returncode == 0, allowed.stderr
    assert "warning: signature checks are OFF" in allowed.stderr


def test_a_killed_build_leaves_no_dnf_running(demo_repo: Path, tmp_path: Path) -> None:
    """SIGKILL to `freight build` while dnf runs a scriptlet: the dnf child dies with it, so no
    transaction goes on writing into a staging root nobody will remove. (The scriptlet a dying rpm
    started runs to its end on its own, as it would under a killed dnf.)"""
    from corpus import treerpm

    tree = tmp_path / "tree"
    (tree / "usr/share/demo-slow").mkdir(parents=True)
    (tree / "usr/share/demo-slow/README").write_text("its %post takes its time\n")
    repo = copy_repo(demo_repo, tmp_path / "repo")
    marker = f"demo-slow-{os.getpid()}"
    treerpm.build(tree, treerpm.Package("demo-slow", "1.0", requires=["demo-base"], post=f"sh -c 'sleep 30; true' {marker}"), repo)
    demorepo.createrepo(repo)
    manifest = webapp_manifest(tmp_path / "w", repo)
    manifest.write_text(manifest.read_text().replace("[demo-www]", "[demo-www, demo-slow]"))
    cache = tmp_path / "cache"
    build = subprocess.Popen([sys.executable, "-m", "freight", "build", str(manifest), "-o", str(tmp_path / "out")],
                             env={**os.environ, "PYTHONPATH": str(ROOT), "FREIGHT_CACHE_DIR": str(cache)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def running(pattern: str) -> list[str]:
        return subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()

    try:
        deadline = time.monotonic() + 120
        while not running(marker):
            assert build.poll() is None and time.monotonic() < deadline, "the scriptlet never started"
            time.sleep(0.2)
        assert running(f"freight.build.stage {cache}"), "dnf runs in a child of freight's"
        build.kill()
        build.wait()
        deadline = time.monotonic() + 10
        while running(f"freight.build.stage {cache}") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert running(f"freight.build.stage {cache}") == [], "the dnf child outlived the killed freight"
    finally:
        subprocess.run(["pkill", "-f", marker], check=False)

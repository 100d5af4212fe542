"""Derivatives, of files only and layers of packages, built with the real dnf and rpmbuild and installed with the real rpm."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import DBPATH, as_the_hook, copy_repo, dnf, freight, gpg_key, rpm_from_spec, tree, webapp_manifest, write_manifest

from freight.dist import demorepo

pytestmark = pytest.mark.slow

OVERLAY = "/var/lib/freight/overlays/webapp-prod"

DERIVATIVE = """\
name: webapp-prod
version: "1.0"
summary: The demo web server with the production page
license: MIT
base: webapp
base_version: ">= 1.0"
files:
  - src: site/index.html
    dest: /srv/www/index.html
  - src: site/app.conf
    dest: /etc/app.conf
    mode: "0600"
run:
  environment: {MODE: prod}
"""


@pytest.fixture
def derivative(tmp_path: Path) -> Path:
    site = tmp_path / "d/site"
    site.mkdir(parents=True)
    (site / "index.html").write_text("<h1>production</h1>\n" + "<p>news</p>\n" * 200)
    (site / "app.conf").write_text("mode = prod\n")
    return write_manifest(tmp_path / "d", DERIVATIVE)


def q(*args: str | Path) -> list[str]:
    return subprocess.run(["rpm", "-qp", *map(str, args)], check=True, capture_output=True, text=True).stdout.splitlines()


def test_derivative_carries_only_its_files(derivative: Path) -> None:
    result = freight("build", derivative, "-o", derivative.parent / "out")
    assert result.returncode == 0, result.stderr
    rpm = Path(result.last_line)
    assert rpm.name == "container-webapp-prod-1.0-1.noarch.rpm"
    files = q("-l", rpm)
    assert f"{OVERLAY}/srv/www/index.html" in files and f"{OVERLAY}/etc/app.conf" in files
    assert "/usr/share/freight/containers/webapp-prod/manifest.json" in files
    assert not [f for f in files if f.startswith("/var/lib/freight/images")]
    assert "container-webapp >= 1.0" in q("--requires", rpm)
    provides = q("--provides", rpm)
    assert "freight-container(webapp-prod) = 1.0-1" in provides
    assert not [p for p in provides if p.startswith("bundled(")]
    modes = {line.split()[0]: line.split()[4] for line in q("--dump", rpm)}
    assert modes[f"{OVERLAY}/etc/app.conf"] == "0100600"
    # no lock: a derivative of files only resolves no packages, and its changelog is its own version's
    assert not derivative.with_suffix(".lock").exists()
    assert q("--changelog", rpm)[:2] == ["* " + q("--qf", "%{CHANGELOGTIME:day}", rpm)[0] + " freight - 1.0-1",
                                         "- configuration over webapp (container-webapp >= 1.0): 2 files"]
    # small: its files plus the RPM's own overhead (the goal: under 30 KiB of overhead)
    payload = sum(p.stat().st_size for p in (derivative.parent / "site").iterdir())
    assert rpm.stat().st_size < payload + 30 * 1024
    again = freight("build", derivative, "-o", derivative.parent / "out")
    assert "is up to date" in again.stderr


def test_dnf_resolves_the_base_for_the_derivative(derivative: Path, built_webapp: Path, tmp_path: Path) -> None:
    """dnf resolves the derivative's Requires to the base container package in the same repository."""
    repo = tmp_path / "repo"
    repo.mkdir()
    os.link(built_webapp, repo / built_webapp.name)
    result = freight("build", derivative, "-o", repo)
    assert result.returncode == 0, result.stderr
    demorepo.createrepo(repo)
    config = tmp_path / "dnf.conf"
    config.write_text("")  # nothing from this machine's dnf setup
    proc = subprocess.run(
        [
            "dnf", "repoquery", "-q", "--config", config, "--setopt=reposdir=/nonexistent", "--releasever=1",
            "--setopt", f"cachedir={tmp_path / 'cache'}", f"--repofrompath=containers,{repo}", "--repo=containers",
            "--requires", "--resolve", "container-webapp-prod",
        ],
        capture_output=True, text=True, check=True,
    )
    assert proc.stdout.split() == ["container-webapp-0:1.0-1.x86_64"]


# --- layers: derivatives that install packages on their base ------------------

IMAGE = "/var/lib/freight/images/webapp"
LAYER_OVERLAY = "/var/lib/freight/overlays/webapp-extra"
RPMDB = "usr/lib/sysimage/rpm/rpmdb.sqlite"

LAYER = """\
name: NAME
version: "1.0"
summary: The demo web server with extras
license: MIT
base: webapp
base_version: ">= 1.0"
repos:
  - name: demo
    baseurl: REPO
packages: [PACKAGES]
files:
  - src: site/index.html
    dest: /srv/www/index.html
"""


def layer_manifest(folder: Path, repo: Path, packages: str = "demo-extra", name: str = "webapp-extra") -> Path:
    """A layer on the demo container; its own index.html replaces the base's."""
    (folder / "site").mkdir(parents=True)
    (folder / "site/index.html").write_text("<h1>extras</h1>\n")
    text = LAYER.replace("NAME", name).replace("REPO", repo.as_uri()).replace("PACKAGES", packages)
    return write_manifest(folder, text)


@pytest.fixture(scope="module")
def containers_repo(demo_repo: Path, built_webapp: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo packages and the demo container's package in one repository, as a layer needs them."""
    repo = copy_repo(demo_repo, tmp_path_factory.mktemp("containers") / "repo")
    shutil.copy2(built_webapp, repo)
    demorepo.createrepo(repo)
    return repo


@pytest.fixture(scope="module")
def built_layer(containers_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """container-webapp-extra: demo-extra and an index page on the demo container; (manifest, RPM)."""
    manifest = layer_manifest(tmp_path_factory.mktemp("layer"), containers_repo)
    result = freight("build", manifest, "-o", manifest.parent / "out")
    assert result.returncode == 0, result.stderr
    return manifest, Path(result.last_line)


def dump(rpm: Path, prefix: str) -> dict[str, tuple[str, ...]]:
    """The RPM's paths under PREFIX (relative to it): mode, owner, group, digest, link target."""
    out = {}
    for line in q("--dump", rpm):
        path, _size, _mtime, digest, mode, owner, group, _config, _doc, _rdev, target = line.split(" ", 10)
        if path.startswith(prefix + "/"):
            out[path[len(prefix) + 1 :]] = (mode, owner, group, digest, target)
    return out


def payload_file(rpm: Path, path: str) -> str:
    """The content of PATH in RPM's payload (rpm2archive gives it as a tar stream)."""
    with rpm.open("rb") as f:
        archive = subprocess.run(["rpm2archive", "-"], stdin=f, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = tar.extractfile(f".{path}")
        assert member is not None, path
        return member.read().decode()


def test_layer_carries_only_what_its_packages_add_or_change(built_layer: tuple[Path, Path], built_webapp: Path) -> None:
    manifest, rpm = built_layer
    assert rpm.name == "container-webapp-extra-1.0-1.x86_64.rpm"  # binaries may come in: the base's arch
    assert q("--changelog", rpm)[1] == "- first lock: 2 packages"  # demo-extra and the base it pins
    shipped, base = dump(rpm, LAYER_OVERLAY), dump(built_webapp, IMAGE)
    assert set(q("-l", rpm)) == {LAYER_OVERLAY, *(f"{LAYER_OVERLAY}/{p}" for p in shipped)} | {
        "/usr/share/freight/containers/webapp-extra",
        "/usr/share/freight/containers/webapp-extra/manifest.json",
        "/usr/share/freight/containers/webapp-extra/lock.json",
        "/usr/share/freight/containers/webapp-extra/owners.json",
        "/usr/share/freight/containers/webapp-extra/sbom.spdx.json",
        "/usr/share/freight/containers/webapp-extra/sbom.cdx.json",
    }
    files = {p for p, (mode, *_) in shipped.items() if not mode.startswith("04")}
    # demo-extra's files, the account files its %pre edited, the page from the manifest,
    # and the image's rpm database, which now knows demo-extra
    assert files == {"srv/extra/data", "srv/www/extra.txt", "etc/passwd", "etc/group", "srv/www/index.html", RPMDB}
    assert {p for p in files if p in base} == {"etc/passwd", "etc/group", "srv/www/index.html", RPMDB}
    assert all(shipped[p] != base[p] for p in files if p in base)
    # a directory is new, or only on the way to a changed file and then as in the base
    assert all(p == "srv/extra" or shipped[p] == base[p] for p in set(shipped) - files)
    assert shipped["srv/extra"][:3] == ("040750", "extra", "extra")  # owners by name from the image's passwd
    assert shipped["srv/extra/data"][:3] == ("0100640", "extra", "extra")
    assert shipped["srv/www/extra.txt"][4] == "../extra/data"
    # and the same names for the host's hook to apply with the instance's own account files
    recorded = json.loads(payload_file(rpm, "/usr/share/freight/containers/webapp-extra/owners.json"))
    assert recorded == {"format": 1, "owners": {"srv/extra": ["extra", "extra"], "srv/extra/data": ["extra", "extra"]}}

    # a diff against one exact base build: it requires that build, nothing older or newer
    assert [r for r in q("--requires", rpm) if r.startswith("container-")] == ["container-webapp = 1.0-1"]
    assert [p for p in q("--provides", rpm) if p.startswith("bundled(")] == ["bundled(demo-extra) = 1.0-1"]
    the_lock = json.loads(manifest.with_suffix(".lock").read_text())
    assert (the_lock["base"]["name"], the_lock["base"]["version"], the_lock["base"]["release"]) == ("container-webapp", "1.0", "1")
    assert the_lock["base"]["checksum"].startswith("sha256:")
    assert [p["name"] for p in the_lock["packages"]] == ["demo-extra"]
    assert rpm.stat().st_size * 10 < built_webapp.stat().st_size

    again = freight("build", manifest, "-o", manifest.parent / "out")
    assert again.returncode == 0 and "container-webapp-extra-1.0-1.x86_64.rpm is up to date" in again.stderr


def rpm_install(root: Path, *rpms: Path) -> None:
    """Install container RPMs under ROOT as the host does: no dependencies, no scriptlets (no hook here)."""
    subprocess.run(
        ["rpm", "-i", "--root", root, "--dbpath", DBPATH, "--nodeps", "--noscripts", *rpms],
        check=True, capture_output=True, env={**os.environ, "RPM_FORCE_DEBIAN": "1"},
    )


def rpm_image(image: Path, *args: str) -> str:
    """rpm on a container's own database."""
    proc = subprocess.run(["rpm", "--root", image, "--dbpath", DBPATH, *args], capture_output=True, text=True)
    assert proc.returncode in (0, 1), proc.stderr  # -V exits 1 when it finds a change
    return proc.stdout


def test_layer_over_its_base_equals_a_full_build(
    built_layer: tuple[Path, Path], built_webapp: Path, containers_repo: Path, tmp_path: Path
) -> None:
    # what a host does: install the base and the layer, lay the overlay over a copy of the image
    host = tmp_path / "host"
    rpm_install(host, built_webapp, built_layer[1])
    as_the_hook(host, "webapp", host / IMAGE[1:])
    instance = tmp_path / "instance"
    subprocess.run(["cp", "-a", host / IMAGE[1:], instance], check=True)
    subprocess.run(["cp", "-a", f"{host}{LAYER_OVERLAY}/.", instance], check=True)
    as_the_hook(host, "webapp-extra", instance)  # the host's rpm named the overlay's owners with the host's passwd

    # the same container built whole: base packages, the layer's package, the layer's file
    manifest = webapp_manifest(tmp_path / "full", containers_repo, files="[{src: site/index.html, dest: /srv/www/index.html}]")
    manifest.write_text(manifest.read_text().replace("[demo-www]", "[demo-www, demo-extra]"))
    (manifest.parent / "site").mkdir()
    (manifest.parent / "site/index.html").write_text("<h1>extras</h1>\n")
    full = freight("build", manifest, "-o", manifest.parent / "out")
    assert full.returncode == 0, full.stderr
    whole = tmp_path / "whole"
    rpm_install(whole, Path(full.last_line))
    as_the_hook(whole, "webapp", whole / IMAGE[1:])

    layered, plain = tree(instance), tree(whole / IMAGE[1:])
    # the databases differ in bytes (install order and times), not in what they say
    layered.pop(RPMDB), plain.pop(RPMDB)
    assert layered == plain
    assert (instance / "srv/extra/data").stat().st_uid == 81
    qa = ("-qa", "--qf", "%{NEVRA} %{SIGMD5}\n")  # install times differ: each build dates its own
    assert sorted(rpm_image(instance, *qa).splitlines()) == sorted(rpm_image(whole / IMAGE[1:], *qa).splitlines())
    # rpm -V says the same of both (demo-extra's %pre edited demo-base's account files)
    verify = rpm_image(instance, "-Va")
    assert verify == rpm_image(whole / IMAGE[1:], "-Va") and "/etc/passwd" in verify


def test_layer_lock_pins_its_base_until_update_lock(containers_repo: Path, built_webapp: Path, tmp_path: Path) -> None:
    repo = copy_repo(containers_repo, tmp_path / "repo")
    manifest = layer_manifest(tmp_path / "layer", repo)
    first = freight("build", manifest, "-o", tmp_path / "out")
    assert first.returncode == 0, first.stderr

    # a newer build of the base is published
    base = webapp_manifest(tmp_path / "base", repo)
    base.write_text(base.read_text().replace('version: "1.0"', 'version: "1.1"'))
    assert freight("build", base, "-o", repo).returncode == 0
    demorepo.createrepo(repo)

    locked = freight("build", manifest, "-o", tmp_path / "out")
    assert locked.returncode == 0, locked.stderr
    assert "up to date" not in locked.stderr  # the repository changed
    assert "container-webapp = 1.0-1" in q("--requires", locked.last_line)

    updated = freight("build", manifest, "-o", tmp_path / "out", "--update-lock")
    assert updated.returncode == 0, updated.stderr
    assert Path(updated.last_line).name == "container-webapp-extra-1.0-1.1.x86_64.rpm"  # the release rule
    assert "container-webapp = 1.1-1" in q("--requires", updated.last_line)
    assert json.loads(manifest.with_suffix(".lock").read_text())["base"]["version"] == "1.1"

    # a base that does not satisfy base_version is refused, and the lock is left alone
    lock_before = manifest.with_suffix(".lock").read_text()
    manifest.write_text(manifest.read_text().replace('">= 1.0"', '"> 1.1"'))
    stale = freight("build", manifest, "-o", tmp_path / "out")
    assert stale.returncode == 2 and 'base_version: ">= 1.0" -> "> 1.1"' in stale.stderr
    refused = freight("build", manifest, "-o", tmp_path / "out", "--update-lock")
    assert refused.returncode == 2
    assert f"{manifest}: base: no package in the manifest's repositories is container-webapp > 1.1" in refused.stderr
    assert manifest.with_suffix(".lock").read_text() == lock_before


def test_dnf_upgrade_skips_a_base_build_the_layer_was_not_made_on(containers_repo: Path, tmp_path: Path) -> None:
    """The exact Requires at work: with the layer installed, a newer base build is held back until the layer is rebuilt."""
    repo = copy_repo(containers_repo, tmp_path / "repo")
    layer = freight("build", layer_manifest(tmp_path / "layer", repo), "-o", repo)
    assert layer.returncode == 0, layer.stderr
    rpm_from_spec("freight-host-stub.spec", repo)  # what container packages require, without a hook to run
    demorepo.createrepo(repo)
    root, repo_file = tmp_path / "root", f"[containers]\nname=containers\nbaseurl={repo.as_uri()}\ngpgcheck=0\n"
    installed = dnf(root, repo_file, "install", "container-webapp-extra")
    assert installed.returncode == 0, installed.stdout + installed.stderr

    def base_installed() -> str:
        return subprocess.run(["rpm", "--root", root, "--dbpath", DBPATH, "-q", "--qf", "%{VERSION}-%{RELEASE}", "container-webapp"],
                              capture_output=True, text=True, check=True).stdout

    assert base_installed() == "1.0-1"
    base = webapp_manifest(tmp_path / "base", repo)
    base.write_text(base.read_text().replace('version: "1.0"', 'version: "1.1"'))
    assert freight("build", base, "-o", repo).returncode == 0
    demorepo.createrepo(repo)

    skipped = dnf(root, repo_file, "--setopt", "best=False", "upgrade")
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    assert base_installed() == "1.0-1"
    refused = dnf(root, repo_file, "--setopt", "best=True", "upgrade")
    out = refused.stdout + refused.stderr
    assert refused.returncode == 1 and "container-webapp-extra" in out and "container-webapp-1.1-1" in out, out
    assert base_installed() == "1.0-1"


def _assert_nothing_left(manifest: Path, name: str) -> None:
    out = manifest.parent / "out"
    assert not out.exists() or os.listdir(out) == []
    assert not manifest.with_suffix(".lock").exists()
    stage = Path(os.environ["FREIGHT_CACHE_DIR"]) / "stage"
    assert not [p for p in os.listdir(stage) if p.startswith(f"{name}.")]


def test_layer_that_deletes_a_base_file_is_refused(containers_repo: Path, tmp_path: Path) -> None:
    """demo-wipe's scriptlet (run by the base's own busybox sh) deletes /etc/os-release."""
    manifest = layer_manifest(tmp_path, containers_repo, packages="demo-wipe", name="webapp-wipe")
    result = freight("build", manifest, "-o", tmp_path / "out")
    assert result.returncode == 2, result.stderr
    assert f"{manifest}: a layer can only add and change files" in result.stderr
    assert "on container-webapp-1.0-1.x86_64 leaves what an overlay cannot express:\n  /etc/os-release (deleted)\n" in result.stderr
    _assert_nothing_left(manifest, "webapp-wipe")


def test_layer_checks_the_signature_of_its_base(containers_repo: Path, tmp_path: Path) -> None:
    key = gpg_key(tmp_path / "RPM-GPG-KEY-test")
    manifest = layer_manifest(tmp_path / "w", containers_repo, name="webapp-signed")
    manifest.write_text(manifest.read_text().replace("    baseurl:", f"    gpgkey: {key.as_uri()}\n    baseurl:"))
    result = freight("build", manifest, "-o", tmp_path / "w/out")
    assert result.returncode == 1
    assert "container-webapp-1.0-1.x86_64 from repository 'demo' failed its signature check" in result.stderr
    _assert_nothing_left(manifest, "webapp-signed")


def test_layer_installed_on_a_host_makes_its_own_machine(rpm_host, built_layer: tuple[Path, Path], built_webapp: Path) -> None:
    """The real scriptlets: the layer's machine is the base's snapshot, the overlay, then the owners its rpm database names."""
    from rpmhost import leftovers, ok  # the rpm test host, shared with the hook tests

    h, cfg = rpm_host, rpm_host.host.cfg
    ok(h.put("-i", built_webapp))
    ok(h.put("-i", built_layer[1]))
    layer, base = cfg.machines_dir / "webapp-extra", cfg.machines_dir / "webapp"
    assert (layer / "srv/www/index.html").read_text() == "<h1>extras</h1>\n"
    data = (layer / "srv/extra/data").stat()
    assert (data.st_uid, data.st_mode & 0o777) == (81, 0o640)  # demo-extra's user, which only the container has
    assert not (base / "srv/extra").exists() and not (cfg.images_dir / "webapp/srv/extra").exists()
    refused = freight("rollback", "webapp-extra", env={"FREIGHT_HOST_CONF": str(h.host.conf), "SYSTEMD_OFFLINE": "1"})
    assert refused.returncode == 1 and "a diff against one exact build of webapp" in refused.stderr
    ok(h.rpm("-e", "container-webapp-extra"))
    assert not layer.exists() and base.is_dir()
    ok(h.rpm("-e", "container-webapp"))
    assert leftovers(h) == []

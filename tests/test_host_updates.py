"""The host side of update visibility, with real rpm, dnf and createrepo_c updateinfo.

A container (with demo-ssl 1.0 and a file of the container-only user `www`) is
installed by the real dnf into a scratch root, as on a host; `--root` points
`freight verify --installed` and `freight outdated --host` at that root, and
the private HOME the `dnf()` helper uses gives rpm the host's `%_dbpath`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import Result, Signer, as_the_hook, copy_repo, dnf, freight, rpm_from_spec, tree, webapp_manifest, write_manifest
from test_updates import CVE, fix_demo_ssl

from freight.model.paths import RPM_DBPATH

pytestmark = pytest.mark.slow

IMAGE = "var/lib/freight/images/webapp"


class Host:
    """A scratch host: ROOT, the .repo text for its container repository, its dnf.conf."""

    def __init__(self, root: Path, repo_file: str) -> None:
        self.root = root
        self.repo_file = repo_file
        self.home = root.parent / f"{root.name}.dnf" / "home"  # dnf()'s HOME: rpm's %_dbpath
        self.dnf_conf = root.parent / "host-dnf.conf"
        # The host's dnf configuration: the same .repo folder the dnf() helper installs from.
        self.dnf_conf.write_text(
            "[main]\n"
            f"reposdir={root.parent / f'{root.name}.dnf' / 'repos.d'}\n"
            f"cachedir={root.parent / 'host-dnf-cache'}\n"
            "metadata_expire=0\n"
        )

    @property
    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home)}

    def freight(self, *args: str | Path) -> Result:
        return freight(*args, "--root", self.root, env=self.env)


@pytest.fixture
def installed(demo_repo: Path, signer: Signer, tmp_path: Path) -> tuple[Path, Path, Path, Host]:
    """(library repo, manifest, container repo, host) with container-webapp 1.0-1 installed."""
    repo = copy_repo(demo_repo, tmp_path / "repo")
    manifest = webapp_manifest(tmp_path / "w", repo)
    manifest.write_text(manifest.read_text().replace("[demo-www]", "[demo-www, demo-ssl, demo-private]"))
    containers = tmp_path / "containers"
    containers.mkdir()
    built = freight("build", manifest, "-o", containers, "--sign", signer.fingerprint, env=signer.env)
    assert built.returncode == 0, built.stderr
    stub = rpm_from_spec("freight-host-stub.spec", containers)
    assert freight("sign", "--key", signer.fingerprint, stub, env=signer.env).returncode == 0
    published = freight("publish", containers, "--sign-key", signer.fingerprint, env=signer.env)
    assert published.returncode == 0, published.stderr
    repo_file = freight("repo-file", "--name", "containers", "--baseurl", containers.as_uri()).stdout
    host = Host(tmp_path / "host", repo_file)
    done = dnf(host.root, repo_file, "install", "container-webapp")
    assert done.returncode == 0, done.stderr
    # What freight-host-hook does after an install (the scratch root runs no scriptlets):
    # the image's files get the owners the image's own users name.
    as_the_hook(host.root, "webapp", host.root / IMAGE)
    return repo, manifest, containers, host


def test_verify_installed_is_clean_then_names_a_changed_file(installed: tuple[Path, Path, Path, Host]) -> None:
    *_, host = installed
    token = host.root / IMAGE / "srv/private/token"
    assert token.stat().st_uid == 80  # www inside the container; the host has no such user

    # The host's own rpm flags the www files (U/G): that is the known limit, not tampering.
    raw = subprocess.run(["rpm", "--root", host.root, "-V", "container-webapp"], capture_output=True, text=True,
                         env={"HOME": str(host.home), "PATH": "/usr/bin:/bin"})
    assert f"/{IMAGE}/srv/private/token" in raw.stdout and "U" in raw.stdout.split(f"/{IMAGE}/srv/private/token")[0].splitlines()[-1]

    # The image is read-only on a host between transactions (ZFS readonly=on): checking it
    # must work so, and writes nothing into it (not even sqlite's lock and -shm files).
    image = host.root / IMAGE
    runtime = [image / RPM_DBPATH.lstrip("/") / leaf for leaf in ("rpmdb.sqlite-shm", "rpmdb.sqlite-wal", ".rpm.lock")]
    for path in runtime:
        path.unlink(missing_ok=True)
    before = tree(image)
    if os.geteuid() == 0:
        subprocess.run(["mount", "--bind", image, image], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", image], check=True)
    try:
        clean = host.freight("verify", "--installed", "webapp")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", image], check=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert tree(image) == before and not any(p.exists() for p in runtime)
    assert "container-webapp-1.0-1.x86_64 (/var/lib/freight/images/webapp): clean" in clean.stdout
    report = json.loads(host.freight("verify", "--installed", "webapp", "--json").stdout)
    assert report["clean"] is True and report["changed"] == []
    assert f"/{IMAGE}/srv/private/token" in report["owned_by_container_users"]

    index = host.root / IMAGE / "srv/www/index.html"
    index.write_text("defaced\n")
    changed = host.freight("verify", "--installed", "webapp", "--json")
    assert changed.returncode == 1, changed.stderr
    files = {c["path"]: c for c in json.loads(changed.stdout)["changed"]}
    assert list(files) == [f"/{IMAGE}/srv/www/index.html"]
    entry = files[f"/{IMAGE}/srv/www/index.html"]
    assert entry["host"].startswith("S.5") and entry["image"].startswith("S.5"), entry  # both databases saw it
    assert {"size", "digest"} <= set(entry["reasons"])
    text = host.freight("verify", "--installed", "webapp")
    assert text.returncode == 1 and f"/{IMAGE}/srv/www/index.html" in text.stdout and "1 changed file(s)" in text.stdout

    # An owner change is reported by the image's own database. The host's rpm cannot see
    # this one: it maps the name `www`, unknown to the host, to root, which the file now has.
    os.chown(token, 0, 80)
    owner = json.loads(host.freight("verify", "--installed", "webapp", "--json").stdout)
    token_entry = next(c for c in owner["changed"] if c["path"].endswith("/srv/private/token"))
    assert token_entry["image"] == ".....U..." and token_entry["reasons"] == ["owner"], token_entry
    assert token_entry["host"] is None

    unknown = host.freight("verify", "--installed", "nosuch")
    assert unknown.returncode == 2 and "no installed package provides freight-container(nosuch)" in unknown.stderr


def test_outdated_host_sees_the_fix_then_the_rebuilt_container(
    installed: tuple[Path, Path, Path, Host], signer: Signer
) -> None:
    repo, manifest, containers, host = installed
    current = host.freight("outdated", "--host", "--dnf-config", host.dnf_conf)
    assert current.returncode == 0, current.stdout + current.stderr
    assert current.stdout.strip() == "container-webapp 1.0-1: up to date"

    # The distribution ships the fix: the installed container bundles the old version.
    fix_demo_ssl(repo)
    due = host.freight("outdated", "--host", "--dnf-config", host.dnf_conf)
    assert due.returncode == 100, due.stdout + due.stderr
    assert "container-webapp 1.0-1: no newer container package yet" in due.stdout
    assert f"demo-ssl  1.0-1 -> 2.0-1  security (Important): {CVE} [FREIGHT-2026-0001]" in due.stdout

    # The rebuilt container is published: the host's repositories offer it, with its advisory.
    rebuilt = freight("build", manifest, "-o", containers, "--update-lock", "--sign", signer.fingerprint, env=signer.env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    published = freight("publish", containers, "--sign-key", signer.fingerprint, env=signer.env)
    assert published.returncode == 0, published.stderr
    update = host.freight("outdated", "--host", "--dnf-config", host.dnf_conf)
    assert update.returncode == 100, update.stdout + update.stderr
    assert "container-webapp 1.0-1: update 1.0-1.1 in containers (security advisory)" in update.stdout
    assert "(the update bundles 2.0-1)" in update.stdout
    # Without --dnf-config, the dnf configuration below --root is the host's, as for dnf --installroot.
    (host.root / "etc/dnf").mkdir(parents=True, exist_ok=True)
    (host.root / "etc/dnf/dnf.conf").write_text(f"[main]\ncachedir={host.root.parent / 'root-dnf-cache'}\n")
    (host.root / "etc/yum.repos.d").mkdir(exist_ok=True)
    (host.root / "etc/yum.repos.d/containers.repo").write_text(host.repo_file)
    own = host.freight("outdated", "--host")
    assert own.returncode == 100 and "update 1.0-1.1 in containers" in own.stdout, own.stdout + own.stderr
    report = json.loads(host.freight("outdated", "--host", "--dnf-config", host.dnf_conf, "--json").stdout)
    assert len(report) == 1
    entry = report[0]
    assert (entry["container"], entry["installed"], entry["update"]) == ("webapp", "1.0-1", "1.0-1.1")
    assert [(a["id"], a["type"], a["cves"]) for a in entry["update_advisories"]] == [
        ("FREIGHT-container-webapp-1.0-1.1", "security", [CVE])
    ]
    assert [(p["name"], p["installed"], p["available"], p["security"], p["in_update"]) for p in entry["packages"]] == [
        ("demo-ssl", "1.0-1", "2.0-1", True, "2.0-1")
    ]

    # Once upgraded, nothing is due.
    upgraded = dnf(host.root, host.repo_file, "upgrade", "container-webapp")
    assert upgraded.returncode == 0, upgraded.stderr
    after = host.freight("outdated", "--host", "--dnf-config", host.dnf_conf)
    assert after.returncode == 0, after.stdout + after.stderr
    assert after.stdout.strip() == "container-webapp 1.0-1.1: up to date"


def test_host_options_need_host(tmp_path: Path) -> None:
    assert freight("outdated", "--root", tmp_path).returncode == 2
    assert freight("verify", "--root", tmp_path, "x.rpm").returncode == 2
    nodb = freight("outdated", "--host", "--root", tmp_path)
    assert nodb.returncode == 1 and "there is no rpm database at" in nodb.stderr, nodb.stderr
    assert not any(tmp_path.iterdir())  # reading created nothing


def test_verify_installed_derivative_by_the_hosts_database(
    installed: tuple[Path, Path, Path, Host], signer: Signer, tmp_path: Path
) -> None:
    """A derivative ships an overlay, not an image: the host's database is what can check it."""
    from test_derivative import DERIVATIVE

    _, _, containers, host = installed
    site = tmp_path / "d/site"
    site.mkdir(parents=True)
    (site / "index.html").write_text("<h1>production</h1>\n")
    (site / "app.conf").write_text("mode = prod\n")
    manifest = write_manifest(tmp_path / "d", DERIVATIVE)
    built = freight("build", manifest, "-o", containers, "--sign", signer.fingerprint, env=signer.env)
    assert built.returncode == 0, built.stderr
    assert freight("publish", containers, "--sign-key", signer.fingerprint, env=signer.env).returncode == 0
    done = dnf(host.root, host.repo_file, "install", "container-webapp-prod")
    assert done.returncode == 0, done.stderr

    clean = host.freight("verify", "--installed", "webapp-prod", "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    report = json.loads(clean.stdout)
    assert report["image"] == "/var/lib/freight/overlays/webapp-prod" and "host's database only" in report["note"]
    conf = host.root / "var/lib/freight/overlays/webapp-prod/etc/app.conf"
    conf.write_text("mode = debug\n")
    changed = host.freight("verify", "--installed", "webapp-prod", "--json")
    assert changed.returncode == 1
    assert [c["path"] for c in json.loads(changed.stdout)["changed"]] == ["/var/lib/freight/overlays/webapp-prod/etc/app.conf"]

    # It bundles nothing of its own: outdated --host has nothing to say about it.
    outdated = host.freight("outdated", "--host", "--dnf-config", host.dnf_conf)
    assert outdated.returncode == 0, outdated.stdout + outdated.stderr
    assert "container-webapp-prod 1.0-1: up to date" in outdated.stdout

"""rpmlint, with the configuration kept in packaging/rpmlint.toml, on every kind of RPM freight makes.

A container, a derivative of files only, a layer, and freight's own packages
(`make rpms`), all signed as freight ships them: 0 errors and 0 warnings. A
planted defect (a description line rpm readers cannot show) must still fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, Signer, copy_repo, freight, write_manifest

from freight.dist import demorepo

pytestmark = pytest.mark.slow

if shutil.which("rpmlint") is None:
    pytest.skip("rpmlint is not installed (make setup installs it)", allow_module_level=True)

CONFIG = ROOT / "packaging" / "rpmlint.toml"

IDENTITY = """\
url: https://example.com/containers
vendor: Example containers
packager: Example builders <builders@example.com>
"""

CONTAINER = """\
name: webapp
version: "1.0"
summary: The demo web server
license: MIT
description: |
  busybox httpd serving /srv/www.
repos:
  - name: demo
    baseurl: REPO
packages: [demo-www]
"""

DERIVATIVE = """\
name: webapp-prod
version: "1.0"
summary: The demo web server with a secret
license: MIT
base: webapp
files:
  - {src: app.conf, dest: /etc/app.conf, mode: "0600"}
"""

LAYER = """\
name: webapp-extra
version: "1.0"
summary: The demo web server with extras
license: MIT
base: webapp
repos:
  - name: demo
    baseurl: REPO
packages: [demo-extra]
"""


def rpmlint(work: Path, signer: Signer, *rpms: Path) -> subprocess.CompletedProcess:
    """rpmlint as on a machine that trusts SIGNER: its key in the rpm database rpmlint checks signatures with."""
    home = work / "lint-home"
    if not home.exists():
        (home / "rpmdb").mkdir(parents=True)
        (home / ".rpmmacros").write_text(f"%_dbpath {home / 'rpmdb'}\n")
        subprocess.run(["rpm", "--dbpath", str(home / "rpmdb"), "--import", str(signer.pubkey)], check=True, capture_output=True)
    return subprocess.run(["rpmlint", "-c", str(CONFIG), *map(str, rpms)], capture_output=True, text=True,
                          env={**os.environ, "HOME": str(home)})


def build(folder: Path, text: str, repo: Path, out: Path) -> Path:
    manifest = write_manifest(folder, text.replace("REPO", repo.as_uri()) + IDENTITY)
    result = freight("build", manifest, "-o", out)
    assert result.returncode == 0, result.stderr
    return Path(result.last_line)


@pytest.fixture(scope="module")
def freights_rpms(demo_repo: Path, freight_rpms: list[Path], signer: Signer, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A container, a derivative, a layer and freight's own packages, signed."""
    work = tmp_path_factory.mktemp("lint")
    out = work / "out"
    container = build(work / "c", CONTAINER, demo_repo, out)
    (work / "d").mkdir()
    (work / "d/app.conf").write_text("secret = 1\n")
    derivative = build(work / "d", DERIVATIVE, demo_repo, out)
    repo = copy_repo(demo_repo, work / "repo")
    shutil.copy2(container, repo)
    demorepo.createrepo(repo)
    layer = build(work / "l", LAYER, repo, out)
    own = [shutil.copy2(rpm, out / rpm.name) for rpm in freight_rpms if rpm.name.startswith("freight")]
    rpms = [container, derivative, layer, *map(Path, own)]
    signed = freight("sign", "--key", signer.fingerprint, *rpms, env=signer.env)
    assert signed.returncode == 0, signed.stderr
    return rpms


def test_every_rpm_freight_makes_passes_rpmlint(freights_rpms: list[Path], signer: Signer, tmp_path: Path) -> None:
    names = sorted(rpm.name.rsplit("-", 2)[0] for rpm in freights_rpms)
    assert names == ["container-webapp", "container-webapp-extra", "container-webapp-prod", "freight", "freight-common", "freight-host"]
    result = rpmlint(tmp_path, signer, *freights_rpms)
    assert result.returncode == 0 and " 0 errors, 0 warnings" in result.stdout, result.stdout + result.stderr


def test_the_filtered_man_page_check_is_met_all_the_same(freights_rpms: list[Path]) -> None:
    """rpmlint 2.4 cannot see man pages (the config says why): each command's page is in its package."""
    pages = {}
    for rpm in freights_rpms:
        files = subprocess.run(["rpm", "-qpl", rpm], capture_output=True, text=True, check=True).stdout.split()
        pages[rpm.name.rsplit("-", 2)[0]] = {Path(f).name for f in files if f.startswith("/usr/share/man/man1/")}
    assert "freight.1.gz" in pages["freight-common"] and "freight-host-hook.1.gz" in pages["freight-host"]
    assert "freight-build.1.gz" in pages["freight"] and "freight-start.1.gz" in pages["freight-host"]


def test_rpmlint_still_fails_a_real_defect(demo_repo: Path, signer: Signer, tmp_path: Path) -> None:
    """A description line no wrapping can shorten (one 100-character word) is an rpmlint error."""
    text = CONTAINER.replace("busybox httpd serving /srv/www.", "serves /srv/" + "x" * 90)
    rpm = build(tmp_path / "c", text, demo_repo, tmp_path / "out")
    assert freight("sign", "--key", signer.fingerprint, rpm, env=signer.env).returncode == 0
    result = rpmlint(tmp_path, signer, rpm)
    assert result.returncode != 0
    assert "container-webapp.x86_64: E: description-line-too-long" in result.stdout, result.stdout
    assert " 1 errors, 0 warnings" in result.stdout, result.stdout  # that defect and nothing else

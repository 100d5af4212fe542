"""Derivative (config-overlay) packages built with the real rpmbuild and installed with the real dnf."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import freight, write_manifest
from freight import demorepo

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
    # no lock: a derivative of files only resolves no packages
    assert not derivative.with_suffix(".lock").exists()
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


def test_layered_derivative_is_refused_for_now(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path, "name: site\nversion: '1'\nsummary: s\nlicense: MIT\nbase: webapp\nrepos: [{name: r, baseurl: file:r}]\npackages: [x]\n"
    )
    result = freight("build", manifest, "-o", tmp_path / "out")
    assert result.returncode == 2
    assert "a derivative that installs packages on its base (a layer) is not supported yet" in result.stderr
    assert not (tmp_path / "out").exists()

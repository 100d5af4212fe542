"""What dnf sees in `freight build`: the manifest's repositories, `exclude` and `releasever`,
and nothing of the build machine's dnf configuration (README "Building", DESIGN "Isolated dnf")."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT, copy_repo, freight, webapp_manifest, write_manifest
from test_updates import fix_demo_ssl

pytestmark = pytest.mark.slow

# What a dnf reading the machine's configuration would trip over: a repository it cannot
# read (dnf's default is to fail on it) and every demo package excluded.
PLANTED_REPO = """\
[planted]
name=planted by the test
baseurl=file:///nonexistent/planted-repo
enabled=1
gpgcheck=0
skip_if_unavailable=False
"""
PLANTED_CONF = "[main]\nexcludepkgs=demo-*\nskip_if_unavailable=False\n"


def bundled(rpm_file: str) -> dict[str, str]:
    """The container's bundled(NAME) = EVR provides."""
    provides = subprocess.run(["rpm", "-qp", "--provides", rpm_file], check=True, capture_output=True, text=True).stdout
    return {line.split("(", 1)[1].split(")")[0]: line.split(" = ")[1] for line in provides.splitlines() if line.startswith("bundled(")}


@pytest.fixture
def planted_etc(tmp_path: Path) -> Path:
    """An overlay for /etc: a dnf.conf, a vars folder and a yum.repos.d that break any dnf reading them."""
    upper = tmp_path / "etc-upper"
    (upper / "dnf/vars").mkdir(parents=True)
    (upper / "yum.repos.d").mkdir()
    (upper / "dnf/dnf.conf").write_text(PLANTED_CONF)
    (upper / "dnf/vars/releasever").write_text("planted\n")
    (upper / "yum.repos.d/planted.repo").write_text(PLANTED_REPO)
    return upper


def with_etc(upper: Path, *argv: str | os.PathLike[str]) -> subprocess.CompletedProcess:
    """ARGV run with UPPER laid over /etc in a mount namespace of its own: the machine's files are never touched."""
    workdir = upper.parent / f"{upper.name}.work"
    workdir.mkdir(exist_ok=True)
    overlay = f"mount -t overlay overlay -o lowerdir=/etc,upperdir={upper},workdir={workdir} /etc && exec \"$@\""
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", overlay, "sh", *map(str, argv)],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
    )


def test_build_reads_nothing_of_the_machines_dnf_configuration(demo_repo: Path, planted_etc: Path, tmp_path: Path) -> None:
    # the planted configuration does break a dnf that reads it
    control = with_etc(planted_etc, "dnf", "-q", "--releasever=1", "--setopt", f"cachedir={tmp_path / 'dnf-cache'}", "makecache")
    assert control.returncode != 0 and "planted" in control.stderr, (control.stdout, control.stderr)
    manifest = webapp_manifest(tmp_path / "w", demo_repo)
    built = with_etc(planted_etc, sys.executable, "-m", "freight", "build", manifest, "-o", tmp_path / "w/out")
    assert built.returncode == 0, built.stderr
    assert "planted" not in built.stderr
    assert bundled(built.stdout.strip().splitlines()[-1]) == {"demo-base": "1.0-1", "demo-www": "1.0-1"}


def test_exclude_keeps_a_version_out_of_the_resolution(demo_repo: Path, tmp_path: Path) -> None:
    repo = copy_repo(demo_repo, tmp_path / "repo")
    fix_demo_ssl(repo)  # demo-ssl 1.0 and 2.0
    manifest = webapp_manifest(tmp_path / "w", repo)
    manifest.write_text(manifest.read_text().replace("[demo-www]", "[demo-www, demo-ssl]"))
    newest = freight("build", manifest, "-o", tmp_path / "w/out")
    assert newest.returncode == 0, newest.stderr
    assert bundled(newest.last_line)["demo-ssl"] == "2.0-1"

    manifest.write_text(manifest.read_text() + 'exclude: ["demo-ssl-2*"]\n')
    excluded = freight("build", manifest, "-o", tmp_path / "w/out", "--update-lock")
    assert excluded.returncode == 0, excluded.stderr
    assert bundled(excluded.last_line)["demo-ssl"] == "1.0-1"


def test_releasever_comes_from_the_manifest(demo_repo: Path, tmp_path: Path) -> None:
    copy_repo(demo_repo, tmp_path / "repos/41")

    def manifest(releasever: str) -> Path:
        return write_manifest(tmp_path / f"w{releasever}", textwrap.dedent(f"""\
            name: webapp
            version: "1.0"
            summary: demo web server
            license: MIT
            releasever: "{releasever}"
            repos:
              - name: demo
                baseurl: file://{tmp_path}/repos/$releasever
            packages: [demo-www]
            """))

    built = freight("build", manifest("41"), "-o", tmp_path / "out41")
    assert built.returncode == 0, built.stderr
    assert bundled(built.last_line)["demo-www"] == "1.0-1"
    other = freight("build", manifest("40"), "-o", tmp_path / "out40")
    assert other.returncode == 1 and f"{tmp_path}/repos/40" in other.stderr, other.stderr

"""A container of real Debian 12 packages (debootstrap's minbase, as RPMs): thousands of real files.

It must build, carry exactly the staging tree, install with rpm into an empty
root as staged, verify clean by the image's own rpm database, and run
`/usr/bin/[` and `sh` from its root. Its SBOM names every package.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import shutil

import pytest

import debcorpus
from conftest import DB_RUNTIME, DBPATH, as_the_hook, freight, write_manifest
from test_names import attributes, listing, rpm_paths

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None, reason="the corpus is fetched with apt-get from Debian's archive")

IMAGE = "/var/lib/freight/images/minbase"
# What opening the image's rpm database leaves behind, as absolute paths in the image.
RUNTIME = {"/" + p for p in DB_RUNTIME}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(manifest, container RPM, kept staging root) of the minbase container."""
    work = tmp_path_factory.mktemp("minbase")
    manifest = write_manifest(
        work / "m",
        f"""\
        name: minbase
        version: "12"
        summary: Debian 12 minbase, from Debian's own packages
        license: various
        repos:
          - name: debian
            baseurl: {debcorpus.repository().as_uri()}
        packages: [{", ".join(debcorpus.MINBASE)}]
        run:
          command: [/bin/sh, -c, "[ -x /usr/bin/[ ]"]
        """,
    )
    result = freight("build", manifest, "-o", work / "out", "--keep-stage", work / "stage")
    assert result.returncode == 0, result.stderr
    return manifest, Path(result.last_line), work / "stage"


def test_the_container_carries_exactly_the_staging_tree(built: tuple[Path, Path, Path]) -> None:
    _, container, stage = built
    staged = listing(stage)
    carried = rpm_paths(container)
    assert len([p for p in carried if p.startswith(IMAGE + "/")]) > 5000
    assert {IMAGE + "/usr/bin/[", IMAGE + "/usr/bin/chage", IMAGE + "/bin/sh"} <= carried
    in_image = {p for p in carried if p == IMAGE or p.startswith(IMAGE + "/")}
    assert in_image == {p for p in staged if p == IMAGE or p.startswith(IMAGE + "/")} - {IMAGE + p for p in RUNTIME}


def test_rpm_lays_it_down_as_staged_and_the_image_verifies_clean(built: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, container, stage = built
    host = tmp_path / "host"
    host.mkdir()
    subprocess.run(
        ["rpm", "-i", "--root", host, "--dbpath", DBPATH, "--nodeps", "--noscripts", "--nosignature", container],
        check=True, capture_output=True,
    )
    image = host / IMAGE.lstrip("/")
    as_the_hook(host, "minbase", image)
    want = {p: a for p, a in attributes(stage / IMAGE.lstrip("/")).items() if p not in RUNTIME}
    got = {p: a for p, a in attributes(image).items() if p not in RUNTIME}
    assert got == want
    chage = os.lstat(image / "usr/bin/chage")
    assert chage.st_mode & 0o2000 and chage.st_gid == 42  # setgid shadow, by the container's /etc/group
    verified = subprocess.run(["rpm", "--root", image, "--dbpath", DBPATH, "-Va"], capture_output=True, text=True)
    assert (verified.returncode, verified.stdout) == (0, ""), verified.stdout[:2000]
    ran = subprocess.run(
        ["chroot", image, "/bin/sh", "-c", "[ -x /usr/bin/[ ] && /usr/bin/[ a = a ] && echo from $(cat /etc/debian_version)"],
        capture_output=True, text=True,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("from 12.")


def test_its_sbom_names_every_debian_package(built: tuple[Path, Path, Path]) -> None:
    _, container, _ = built
    result = freight("sbom", container)
    assert result.returncode == 0, result.stderr
    names = {p["name"] for p in json.loads(result.stdout)["packages"]}
    assert set(debcorpus.MINBASE) <= names

"""A container of real Debian 12 packages (debootstrap's minbase, as RPMs): thousands of real files.

It must build, carry exactly the staging tree, install with rpm into an empty
root as staged, verify clean by the image's own rpm database, and run
`/usr/bin/[` and `sh` from its root. Its SBOM names every package. In the
booted test host, signed and published, `dnf install` lays it down, the host's
`rpm -V` and the image's own database both find it clean, and the machine runs
a command that uses the image's `/usr/bin/[` and `sh`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import DB_RUNTIME, DBPATH, as_the_hook, freight, make_signer, write_manifest
from e2ehost import add_signed_repo, configure, lent, machine_state, make_pool, sh_status
from test_names import attributes, listing, rpm_paths

from corpus import debian

if TYPE_CHECKING:
    from freight.testhost import TestHost

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None, reason="the corpus is fetched with apt-get from Debian's archive")

IMAGE = "/var/lib/freight/images/minbase"
# What opening the image's rpm database leaves behind, as absolute paths in the image.
RUNTIME = {"/" + p for p in DB_RUNTIME}
SAYS = "minbase runs on Debian"
REPO_ID = "freight-corpus"
POOL = "corpuspool"


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
            baseurl: {debian.repository().as_uri()}
        packages: [{", ".join(debian.MINBASE)}]
        run:
          # dash has a [ of its own: call coreutils' by its path
          command: [/bin/sh, -c, "/usr/bin/[ -x /usr/bin/[ ] && echo {SAYS} $(cat /etc/debian_version) && exec sleep infinity"]
          network: host
          autostart: true
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
    assert set(debian.MINBASE) <= names


@pytest.mark.slow
def test_dnf_installs_it_in_a_booted_host_where_it_verifies_and_runs(
    built: tuple[Path, Path, Path], freight_host: TestHost, host_share: Path, tmp_path: Path
) -> None:
    _, container, _ = built
    signer = make_signer(tmp_path / "keys", "corpus@example.com")
    repo = host_share / "corpus-repo"
    repo.mkdir(exist_ok=True)
    shutil.copy2(container, repo)
    for step in (("sign", "--key", signer.fingerprint, repo / container.name), ("publish", repo, "--sign-key", signer.fingerprint)):
        result = freight(*step, env=signer.env)
        assert result.returncode == 0, result.stderr
    parent = f"{POOL}/freight"
    with lent(freight_host, REPO_ID, POOL, f"/var/tmp/{POOL}.img") as host:
        add_signed_repo(host, REPO_ID, repo)
        make_pool(host, POOL, f"/var/tmp/{POOL}.img")
        host.run(["zfs", "create", "-o", "mountpoint=none", parent])
        configure(host, "zfs", parent)
        code, out = sh_status(host, f"dnf -y --refresh --repo {REPO_ID} install container-minbase")
        assert code == 0, out[-3000:]
        assert sh_status(host, "rpm -V container-minbase") == (0, "")
        code, out = sh_status(host, "freight verify --installed minbase")
        assert code == 0, out
        assert host.run(["zfs", "get", "-H", "-o", "value", "mountpoint", f"{parent}/images/minbase"]).strip() == IMAGE
        deadline = time.monotonic() + 30
        while SAYS not in (said := host.sh("journalctl -q -o cat -u systemd-nspawn@minbase.service || true")):
            assert time.monotonic() < deadline, said
            time.sleep(0.5)
        assert f"{SAYS} 12." in said, said
        assert machine_state(host, "minbase") == "running"

"""`freight verify --installed` and `freight outdated --host` in the booted test host.

The scratch-root tests (test_host_updates.py) run no scriptlets; here dnf runs
them, so the hook has made the image a read-only ZFS dataset, given its files
the owners of the container's own users, and snapshotted it: the state a real
host checks. The container gets a name of its own (and a pool and .repo file of
its own), so it stays apart from test_host_e2e.py's container-webapp.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import publish_signed_build, Signer, freight, make_signer, write_manifest

if TYPE_CHECKING:
    from freight.testhost import TestHost

pytestmark = pytest.mark.slow

NAME = "hostcheck"
REPO_ID = "freight-hostcheck"
POOL = "hcpool"
PARENT = f"{POOL}/freight"
IMAGE = f"/var/lib/freight/images/{NAME}"
CONF = "/etc/freight/host.conf"


@dataclass
class Shop:
    """The demo repository the container is built from and the signed repository the host installs from."""

    signer: Signer
    demo: Path
    work: Path
    repo: Path

    def release(self, demo_www: str | None = None) -> str:
        """Optionally demo-www DEMO_WWW in the demo repository; the container rebuilt with
        --update-lock, signed and published; its VERSION-RELEASE."""
        from freight import demorepo

        if demo_www:
            demorepo.make_repo(self.demo, [demorepo.DEMO_SPECS / "demo-www.spec"], {"version_override": demo_www})
        manifest = write_manifest(self.work, f"""\
            name: {NAME}
            version: "1.0"
            summary: demo web server, checked on a host
            license: MIT
            repos:
              - name: demo
                baseurl: {self.demo.as_uri()}
            packages: [demo-www]
            run:
              command: [/usr/bin/httpd, -f, -p, "8091", -h, /srv/www]
              user: www
            """)
        return publish_signed_build(manifest, self.repo, self.signer)


@pytest.fixture(scope="module")
def shop(host_share: Path, tmp_path_factory: pytest.TempPathFactory) -> Shop:
    from freight import demorepo

    work = tmp_path_factory.mktemp("hostcheck")
    demo = host_share / "hostcheck-demo"  # the host reads the manifest's repository too
    demorepo.make_repo(demo, sorted(demorepo.DEMO_SPECS.glob("*.spec")))
    shop = Shop(make_signer(work / "keys", "hostcheck@example.com"), demo, work / "manifest", host_share / "hostcheck-repo")
    shop.release()
    return shop


@pytest.fixture(scope="module")
def host(freight_host: TestHost, shop: Shop) -> Iterator[TestHost]:
    """The host with the signed repository configured, a zfs-fuse pool and container-hostcheck installed.

    The manifest names the demo repository by its path on this machine; the host
    sees it at another path, so a link there makes the same URL work in the host,
    as a build mirror reachable from hosts would."""
    h = freight_host
    repo_file = freight("repo-file", "--name", REPO_ID, "--baseurl", f"file://{h.inside(shop.repo)}")
    assert repo_file.returncode == 0, repo_file.stderr
    h.write_text(f"/etc/yum.repos.d/{REPO_ID}.repo", repo_file.stdout)
    h.sh(f"mkdir -p {shop.demo.parent}; ln -sfn {h.inside(shop.demo)} {shop.demo}")
    # Kept with its times: rpm -V freight-host (test_testhost) checks the %config file's mtime too.
    h.run(["cp", "-p", CONF, "/var/tmp/updates-host.conf"])
    h.sh(f"truncate -s 1G /var/tmp/{POOL}.img; zpool create -o cachefile=none -m none {POOL} /var/tmp/{POOL}.img")
    h.run(["zfs", "create", "-o", "mountpoint=none", PARENT])
    h.write_text(CONF, textwrap.dedent(f"""\
        [host]
        storage = zfs
        parent = {PARENT}
        """))
    try:
        assert status(h, f"dnf -y --refresh --repo {REPO_ID} install container-{NAME}")[0] == 0
        yield h
    finally:
        h.sh(f"dnf remove -y container-{NAME} >/dev/null 2>&1 || true; rm -f /etc/yum.repos.d/{REPO_ID}.repo; rm -f {shop.demo}")
        h.sh(f"for i in $(seq 50); do zpool destroy -f {POOL} && break; sleep 0.2; done; rm -f /var/tmp/{POOL}.img")
        h.run(["mv", "/var/tmp/updates-host.conf", CONF])
        h.sh("systemctl reset-failed")


def status(host: TestHost, script: str) -> tuple[int, str]:
    """SCRIPT in the host: its exit code and its output (stdout and stderr)."""
    out = host.sh(f"{script} 2>&1 && echo rc=0 || echo rc=$?")
    body, _, rc = out.rstrip().rpartition("rc=")
    return int(rc), body


def test_verify_installed_on_a_readonly_zfs_image(host: TestHost) -> None:
    # Closed, as the hook closes an image between transactions: the check must work read-only.
    host.run(["zfs", "set", "readonly=on", f"{PARENT}/images/{NAME}"])
    code, out = status(host, f"freight verify --installed {NAME} --json")
    assert code == 0, out
    report = json.loads(out)
    assert report["clean"] is True and report["image"] == IMAGE, report

    host.run(["zfs", "set", "readonly=off", f"{PARENT}/images/{NAME}"])
    host.sh(f"echo tampered >> {IMAGE}/srv/www/index.html")
    host.run(["zfs", "set", "readonly=on", f"{PARENT}/images/{NAME}"])
    code, out = status(host, f"freight verify --installed {NAME}")
    assert code == 1, out
    assert f"S.5....T.  S.5....T.  {IMAGE}/srv/www/index.html  (size, digest, mtime)" in out, out
    assert "1 changed file(s)" in out


def test_outdated_host_in_the_host(host: TestHost, shop: Shop) -> None:
    code, out = status(host, "freight outdated --host")
    assert (code, out.strip()) == (0, f"container-{NAME} 1.0-1: up to date"), out
    evr = shop.release(demo_www="1.1")
    assert evr == "1.0-1.1"
    host.sh("dnf -q makecache --refresh >/dev/null 2>&1 || true")  # the host's metadata_expire would wait
    code, out = status(host, "freight outdated --host --json")
    assert code == 100, out
    report = json.loads(out)
    entry = next(r for r in report if r["container"] == NAME)
    assert (entry["installed"], entry["update"], entry["update_repo"]) == ("1.0-1", evr, REPO_ID), entry
    assert [(p["name"], p["installed"], p["available"], p["in_update"]) for p in entry["packages"]] == [
        ("demo-www", "1.0-1", "1.1-1", "1.1-1")
    ], entry

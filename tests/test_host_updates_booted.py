"""`freight verify --installed`, `freight outdated --host` and `freight start/stop/enable/disable`
in the booted test host.

The scratch-root tests (test_host_updates.py) run no scriptlets; here dnf runs
them, so the hook has made the image a read-only ZFS dataset, given its files
the owners of the container's own users, and snapshotted it: the state a real
host checks. The container gets a name of its own (and a pool and .repo file of
its own), so it stays apart from test_host_e2e.py's container-webapp.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import Signer, make_signer, publish_signed_build, write_manifest
from e2ehost import add_signed_repo, configure, lent, machine_state, make_pool, sh_status

if TYPE_CHECKING:
    from freight.testhost import TestHost

pytestmark = pytest.mark.slow

NAME = "hostcheck"
REPO_ID = "freight-hostcheck"
POOL = "hcpool"
PARENT = f"{POOL}/freight"
POOL_FILE = f"/var/tmp/{POOL}.img"
IMAGE = f"/var/lib/freight/images/{NAME}"


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
        from freight.dist import demorepo

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
    from freight.dist import demorepo

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
    with lent(h, REPO_ID, POOL, POOL_FILE):
        add_signed_repo(h, REPO_ID, shop.repo)
        h.sh(f"mkdir -p {shop.demo.parent}; ln -sfn {h.inside(shop.demo)} {shop.demo}")
        make_pool(h, POOL, POOL_FILE)
        h.run(["zfs", "create", "-o", "mountpoint=none", PARENT])
        configure(h, "zfs", PARENT)
        try:
            assert sh_status(h, f"dnf -y --refresh --repo {REPO_ID} install container-{NAME}")[0] == 0
            yield h
        finally:
            h.run(["rm", "-f", str(shop.demo)])


def test_verify_installed_on_a_readonly_zfs_image(host: TestHost) -> None:
    # Closed, as the hook closes an image between transactions: the check must work read-only.
    host.run(["zfs", "set", "readonly=on", f"{PARENT}/images/{NAME}"])
    code, out = sh_status(host, f"freight verify --installed {NAME} --json")
    assert code == 0, out
    report = json.loads(out)
    assert report["clean"] is True and report["image"] == IMAGE, report

    host.run(["zfs", "set", "readonly=off", f"{PARENT}/images/{NAME}"])
    host.sh(f"echo tampered >> {IMAGE}/srv/www/index.html")
    host.run(["zfs", "set", "readonly=on", f"{PARENT}/images/{NAME}"])
    code, out = sh_status(host, f"freight verify --installed {NAME}")
    assert code == 1, out
    assert f"S.5....T.  S.5....T.  {IMAGE}/srv/www/index.html  (size, digest, mtime)" in out, out
    assert "1 changed file(s)" in out


def test_outdated_host_in_the_host(host: TestHost, shop: Shop) -> None:
    code, out = sh_status(host, "freight outdated --host")
    assert (code, out.strip()) == (0, f"container-{NAME} 1.0-1: up to date"), out
    evr = shop.release(demo_www="1.1")
    assert evr == "1.0-1.1"
    host.sh("dnf -q makecache --refresh >/dev/null 2>&1 || true")  # the host's metadata_expire would wait
    code, out = sh_status(host, "freight outdated --host --json")
    assert code == 100, out
    report = json.loads(out)
    entry = next(r for r in report if r["container"] == NAME)
    assert (entry["installed"], entry["update"], entry["update_repo"]) == ("1.0-1", evr, REPO_ID), entry
    assert [(p["name"], p["installed"], p["available"], p["in_update"]) for p in entry["packages"]] == [
        ("demo-www", "1.0-1", "1.1-1", "1.1-1")
    ], entry


def test_start_stop_enable_disable_through_the_running_systemd(host: TestHost) -> None:
    """The host commands go to the host's systemd (D-Bus): systemctl and machinectl, asked
    independently, see the machine's unit started, enabled, stopped and disabled."""
    unit = f"systemd-nspawn@{NAME}.service"

    def unit_state() -> tuple[str, str]:
        return (host.sh(f"systemctl is-active {unit} || true").strip(), host.sh(f"systemctl is-enabled {unit} || true").strip())

    assert unit_state()[0] == "inactive" and machine_state(host, NAME) == ""
    host.run(["freight", "start", NAME])
    assert unit_state()[0] == "active" and machine_state(host, NAME) == "running"
    host.run(["freight", "enable", NAME])
    assert unit_state() == ("active", "enabled")
    assert host.sh(f"test -L /etc/systemd/system/machines.target.wants/{unit} && echo linked").strip() == "linked"
    host.run(["freight", "stop", NAME])
    assert unit_state() == ("inactive", "enabled") and machine_state(host, NAME) == ""
    host.run(["freight", "disable", NAME])
    assert unit_state()[1] != "enabled"
    assert host.sh(f"test -e /etc/systemd/system/machines.target.wants/{unit} || echo gone").strip() == "gone"

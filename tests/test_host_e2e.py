"""Issue 4 end to end, in the booted test host: a signed repository, `dnf install`, a page over HTTP.

Everything is the real thing: `freight key generate`, `freight build --sign`
and `freight publish --sign-key` make a signed repository; the host (systemd
as PID 1) has freight and freight-host installed by dnf, and sees the
repository through a bind mount, configured with the .repo file
`freight repo-file` prints (gpgcheck=1, repo_gpgcheck=1). dnf runs the
container's scriptlets, which call the hook, which makes ZFS datasets on a
file-backed zfs-fuse pool inside the host (or folders, on the dir backend).

The demo web server uses `network: host`: with a veth link the machine's
interface comes up without an address (nothing in a command container runs
DHCP, and the host runs no systemd-networkd to hand one out), so the only
address the host can reach it at is its own.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import publish_signed_build, HOST_SHARE, Signer, freight, make_signer, write_manifest

if TYPE_CHECKING:
    from freight.testhost import TestHost

pytestmark = pytest.mark.slow

REPO_ID = "freight-e2e"
POOL = "e2epool"
PARENT = f"{POOL}/freight"
IMAGE = "/var/lib/freight/images/webapp"
CONF = "/etc/freight/host.conf"
PORT = 8080
CVE = "CVE-2026-4242"


def _manifest(folder: Path, demo: Path, version: str) -> Path:
    """examples/webapp/manifest.yaml as it is, against DEMO (on the host's network: see the module's docstring)."""
    return write_manifest(
        folder,
        f"""\
        name: webapp
        version: "{version}"
        summary: A tiny web server serving the freight demo page
        license: MIT
        repos:
          - name: demo
            baseurl: {demo.as_uri()}
        packages: [demo-www]
        run:
          command: [/usr/bin/httpd, -f, -v, -p, "{PORT}", -h, /srv/www]
          user: www
          network: host
          read_only: true
          autostart: true
        """,
    )


@dataclass
class Published:
    """The signed repository the host installs from, and how to put a new release in it."""

    signer: Signer
    demo: Path  # the demo repository the container is built from
    work: Path
    repo: Path  # in host_share: what `freight publish` wrote

    def release(self, version: str, page: str) -> str:
        """demo-www VERSION with PAGE in the demo repository; container-webapp rebuilt against it with
        --update-lock (the lock's change bumps its release), signed and published; its VERSION-RELEASE."""
        from freight import demorepo, updateinfo

        if version != "1.0":
            (rpm,) = demorepo.make_repo(self.demo, [demorepo.DEMO_SPECS / "demo-www.spec"],
                                        {"version_override": version, "page_text": page})
            # the distribution marks the new demo-www a security fix; the rebuilt container inherits that
            updateinfo.add_to_repo(self.demo, [updateinfo.Advisory(
                id=f"DEMO-{version}", type="security", severity="Important", title="demo-www: security fix",
                cves=[CVE], packages=[updateinfo.AdvisoryPackage("demo-www", 0, version, "1", "noarch", rpm.name)],
            )])
        manifest = _manifest(self.work, self.demo, "1.0")
        return publish_signed_build(manifest, self.repo, self.signer)


@pytest.fixture(scope="session")
def published(host_share: Path, tmp_path_factory: pytest.TempPathFactory) -> Published:
    from freight import demorepo

    work = tmp_path_factory.mktemp("e2e")
    signer = make_signer(work / "keys", "e2e@example.com")
    demo = work / "demo-repo"
    demorepo.make_repo(demo, sorted(demorepo.DEMO_SPECS.glob("*.spec")))
    published = Published(signer, demo, work / "webapp", host_share / "e2e-repo")
    published.release("1.0", "Hello from the freight demo container")
    return published


@pytest.fixture(scope="module")  # undone before other modules use the session's host
def e2e_host(freight_host: TestHost, published: Published, host_share: Path) -> Iterator[TestHost]:
    """The host with the signed repository configured and a zfs-fuse pool with PARENT; all undone at the end."""
    baseurl = f"file://{freight_host.inside(published.repo)}"
    repo_file = freight("repo-file", "--name", REPO_ID, "--baseurl", baseurl)
    assert repo_file.returncode == 0, repo_file.stderr
    assert "gpgcheck=1" in repo_file.stdout and "repo_gpgcheck=1" in repo_file.stdout
    freight_host.write_text(f"/etc/yum.repos.d/{REPO_ID}.repo", repo_file.stdout)
    # Kept with its times: rpm -V freight-host (test_testhost) checks the %config file's mtime too.
    freight_host.run(["cp", "-p", CONF, "/var/tmp/e2e-host.conf"])
    freight_host.sh(f"truncate -s 1G /var/tmp/{POOL}.img; zpool create -o cachefile=none -m none {POOL} /var/tmp/{POOL}.img")
    try:
        yield freight_host
    finally:
        freight_host.sh(f"dnf remove -y container-webapp >/dev/null 2>&1 || true; rm -f /etc/yum.repos.d/{REPO_ID}.repo")
        freight_host.run(["mv", "/var/tmp/e2e-host.conf", CONF])
        freight_host.sh("rpm -e gpg-pubkey >/dev/null 2>&1 || true; systemctl reset-failed")
        letting_go(freight_host, f"zpool destroy -f {POOL}")
        freight_host.run(["rm", "-f", f"/var/tmp/{POOL}.img"])


def configure(host: TestHost, storage: str, parent: str = PARENT) -> None:
    host.write_text(CONF, textwrap.dedent(f"""\
        [host]
        storage = {storage}
        parent = {parent}
        """))


def dnf_status(host: TestHost, *args: str) -> tuple[int, str]:
    """dnf in the host, against the signed repository only: its exit code and output (stdout and stderr)."""
    out = host.sh(f"dnf -y --refresh --repo {REPO_ID} {' '.join(args)} 2>&1 && echo rc=0 || echo rc=$?")
    body, _, rc = out.rstrip().rpartition("rc=")
    return int(rc), body


def dnf(host: TestHost, *args: str) -> str:
    code, out = dnf_status(host, *args)
    assert code == 0, out
    return out


def datasets(host: TestHost, root: str = PARENT) -> list[str]:
    return host.run(["zfs", "list", "-H", "-o", "name", "-t", "all", "-r", root]).split()


def fetch(host: TestHost, expect: str, timeout: float = 30) -> str:
    """The demo page, fetched by curl in the host, once it says EXPECT."""
    deadline = time.monotonic() + timeout
    page = ""
    while time.monotonic() < deadline:
        page = host.sh(f"curl -fsS --max-time 2 http://127.0.0.1:{PORT}/ || true")
        if expect in page:
            return page
        time.sleep(0.3)
    raise AssertionError(f"no page saying {expect!r} within {timeout} s; last answer: {page!r}")


def machine_state(host: TestHost) -> str:
    return host.sh("machinectl show webapp --property=State --value 2>/dev/null || true").strip()


def rpm_verify(host: TestHost) -> tuple[int, str]:
    """`rpm -V container-webapp` in the host: its exit code and what it reported."""
    out = host.sh("rpm -V container-webapp 2>&1 && echo rc=0 || echo rc=$?")
    body, _, rc = out.rstrip().rpartition("rc=")
    return int(rc), body


def status(host: TestHost) -> dict:
    return json.loads(host.run(["freight", "status", "--json", "webapp"]))


def assert_nothing_left(host: TestHost) -> None:
    """No package, machine, unit, settings file, drop-in, image or instance of webapp in the host."""
    assert host.sh("rpm -q container-webapp || true").strip() == "package container-webapp is not installed"
    assert machine_state(host) == ""
    assert host.sh("systemctl is-active systemd-nspawn@webapp.service || true").strip() == "inactive"
    leftovers = host.sh(
        "ls -d /etc/systemd/nspawn/webapp.nspawn /etc/systemd/system/systemd-nspawn@webapp.service.d "
        f"/etc/systemd/system/machines.target.wants/systemd-nspawn@webapp.service {IMAGE} /var/lib/machines/webapp "
        "/usr/share/freight/containers/webapp* 2>/dev/null || true"
    )
    assert leftovers == ""
    assert json.loads(host.run(["freight", "list", "--json"]))["instances"] == []


def test_zfs_install_serve_upgrade_verify_remove(e2e_host: TestHost, published: Published) -> None:
    host = e2e_host
    host.run(["zfs", "create", "-o", "mountpoint=none", PARENT])
    configure(host, "zfs")

    # --- install, with signatures checked -----------------------------------------------
    out = dnf(host, "install", "container-webapp")
    assert "Importing GPG key" in out or "imported" in out.lower(), out
    assert host.run(["rpm", "-q", "container-webapp"]).strip().startswith("container-webapp-1.0-1")
    sets = datasets(host)
    assert f"{PARENT}/images/webapp" in sets and f"{PARENT}/images/webapp@1.0-1" in sets, (sets, out)
    assert f"{PARENT}/machines/webapp" in sets, sets
    assert host.run(["zfs", "get", "-H", "-o", "value", "origin", f"{PARENT}/machines/webapp"]).strip() == f"{PARENT}/images/webapp@1.0-1"
    assert host.run(["zfs", "get", "-H", "-o", "value", "mountpoint", f"{PARENT}/images/webapp"]).strip() == IMAGE
    assert "[Exec]" in host.run(["cat", "/etc/systemd/nspawn/webapp.nspawn"])

    # --- it runs, and says so the same way to machinectl and freight ---------------------
    page = fetch(host, "Hello from the freight demo container")
    assert "demo-www 1.0" in page
    assert machine_state(host) == "running"
    st = status(host)
    assert (st["state"], st["sub_state"], st["version"]) == ("active", "running", "1.0-1"), st
    leader = host.run(["machinectl", "show", "webapp", "--property=Leader", "--value"]).strip()
    assert st["leader"] == int(leader), st

    # --- rpm -V: clean, then it sees a file changed in the image --------------------------
    assert rpm_verify(host) == (0, "")
    # The image is a read-only dataset on purpose; changing a file there takes an explicit step.
    host.run(["zfs", "set", "readonly=off", f"{PARENT}/images/webapp"])
    host.sh(f"echo tampered >> {IMAGE}/srv/www/index.html")
    host.run(["zfs", "set", "readonly=on", f"{PARENT}/images/webapp"])
    code, verify = rpm_verify(host)
    assert code == 1 and verify.split() == ["S.5....T.", f"{IMAGE}/srv/www/index.html"], verify
    # The snapshot and the running instance are untouched: they are not the image's live files.
    assert "tampered" not in fetch(host, "demo-www 1.0")

    # --- upgrade to a new build: a new snapshot; the restarted instance serves the new page ---
    evr = published.release("1.1", "Hello from the upgraded demo")
    assert evr == "1.0-1.1"
    # dnf's security workflow sees the rebuilt container as a security update (issue 7)
    advisories = dnf(host, "updateinfo", "list", "--security")
    assert f"FREIGHT-container-webapp-{evr}" in advisories and f"container-webapp-{evr}.x86_64" in advisories, advisories
    assert CVE in dnf(host, "updateinfo", "info", f"FREIGHT-container-webapp-{evr}")
    out = dnf(host, "upgrade", "--security")
    assert host.run(["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}", "container-webapp"]) == evr
    assert f"{PARENT}/images/webapp@{evr}" in datasets(host), out
    st = status(host)
    assert (st["version"], st["pending"]) == ("1.0-1", evr), st  # the instance runs on until restarted
    host.run(["freight", "restart", "webapp"])
    page = fetch(host, "Hello from the upgraded demo")
    assert "demo-www 1.1" in page
    st = status(host)
    assert (st["state"], st["version"], st["pending"]) == ("active", evr, None), st
    assert host.run(["zfs", "get", "-H", "-o", "value", "origin", f"{PARENT}/machines/webapp"]).strip() == f"{PARENT}/images/webapp@{evr}"
    assert rpm_verify(host) == (0, "")  # the upgrade laid the image down afresh

    # --- remove: nothing left ---------------------------------------------------------------
    dnf(host, "remove", "container-webapp")
    assert_nothing_left(host)
    assert datasets(host) == [PARENT]
    assert host.sh(f"curl -fsS --max-time 2 http://127.0.0.1:{PORT}/ >/dev/null 2>&1 && echo served || echo gone").strip() == "gone"
    letting_go(host, f"zfs destroy {PARENT}")


def letting_go(host: TestHost, command: str, timeout: float = 20) -> None:
    """A zfs or zpool destroy in the host, waiting while zfs-fuse calls it busy (see storage.zfs_letting_go)."""
    deadline = time.monotonic() + timeout
    while True:
        out = host.sh(f"{command} 2>&1 && echo destroyed || true")
        if out.strip().endswith("destroyed"):
            return
        assert "busy" in out and time.monotonic() < deadline, out
        Path("/proc/sys/vm/drop_caches").write_text("2\n")  # the host shares this kernel's inode cache
        time.sleep(0.2)


def test_missing_zfs_parent_fails_cleanly(e2e_host: TestHost) -> None:
    host = e2e_host
    configure(host, "zfs", f"{POOL}/missing")
    try:
        code, out = dnf_status(host, "install", "container-webapp")
        assert code != 0, out
        assert f"{POOL}/missing" in out, out
        assert_nothing_left(host)
        assert datasets(host, POOL) == [POOL]
    finally:
        host.sh("rpm -e --noscripts container-webapp >/dev/null 2>&1 || true")


def test_dir_backend_install_serves_and_removes(e2e_host: TestHost) -> None:
    host = e2e_host
    configure(host, "dir")
    dnf(host, "install", "container-webapp")
    fetch(host, "freight demo")
    assert machine_state(host) == "running"
    st = status(host)
    assert (st["state"], st["storage"]) == ("active", "dir"), st
    assert rpm_verify(host) == (0, "")
    dnf(host, "remove", "container-webapp")
    assert_nothing_left(host)
    assert datasets(host, POOL) == [POOL]

"""The booted test host with a signed repository of the demo container: fixtures and helpers for the e2e tests.

Everything is the real thing: `freight key generate`, `freight build --sign`
and `freight publish --sign-key` make a signed repository; the host (systemd
as PID 1) has freight and freight-host installed by dnf, and sees the
repository through a bind mount, configured with the .repo file
`freight repo-file` prints (gpgcheck=1, repo_gpgcheck=1). dnf runs the
containers' scriptlets, which call the hook, which makes ZFS datasets on a
file-backed zfs-fuse pool inside the host (or folders, on the dir backend).

The demo web servers use `network: host`: with a veth link the machine's
interface comes up without an address (nothing in a command container runs
DHCP, and the host runs no systemd-networkd to hand one out), so the only
address the host can reach them at is its own; each listens on a port of its own.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import Signer, freight, make_signer, publish_signed_build, write_manifest

if TYPE_CHECKING:
    from freight.testhost import TestHost

REPO_ID = "freight-e2e"
POOL = "e2epool"
PARENT = f"{POOL}/freight"
POOL_FILE = f"/var/tmp/{POOL}.img"
CONF = "/etc/freight/host.conf"
PORT = 8080  # the base container's; derivatives listen on ports of their own
UPLOADS = "/srv/www/uploads"  # the base's state path, served: what a machine keeps across moves is fetched over HTTP
CVE = "CVE-2026-4242"
FIRST_PAGE = "Hello from the freight demo container"


def demo_manifest(folder: Path, demo: Path, name: str, summary: str, run: str) -> Path:
    """A container NAME of the demo's demo-www (busybox httpd) against DEMO, with the RUN settings given as YAML."""
    header = f"""\
        name: {name}
        version: "1.0"
        summary: {summary}
        license: MIT
        repos:
          - name: demo
            baseurl: {demo.as_uri()}
        packages: [demo-www]
        run:
        """
    return write_manifest(folder, textwrap.dedent(header) + textwrap.indent(textwrap.dedent(run), "  "))


def base_manifest(folder: Path, demo: Path) -> Path:
    """examples/webapp/manifest.yaml against DEMO, with a state path under its web root."""
    return demo_manifest(folder, demo, "webapp", "A tiny web server serving the freight demo page", f"""\
        command: [/usr/bin/httpd, -f, -v, -p, "{PORT}", -h, /srv/www]
        user: www
        network: host
        read_only: true
        autostart: true
        state: [{UPLOADS}]
        """)


@dataclass
class Published:
    """The signed repository the host installs from, and how to put new releases in it."""

    signer: Signer
    demo: Path  # the demo repository the containers are built from
    work: Path
    repo: Path  # in host_share: what `freight publish` wrote
    releases: list[tuple[str, str]] = field(default_factory=list)  # (demo-www version, container-webapp EVR), oldest first

    def release(self, page: str = FIRST_PAGE) -> tuple[str, str]:
        """container-webapp rebuilt with --update-lock, signed and published; after the first, against a
        new demo-www saying PAGE (a security fix). (the demo-www version it carries, its VERSION-RELEASE)"""
        from freight.dist import demorepo

        if self.releases:
            version = f"1.{len(self.releases)}"
            # the distribution marks the new demo-www a security fix; the rebuilt container inherits that
            demorepo.publish_fix(self.demo, demorepo.Fix(demorepo.DEMO_SPECS / "demo-www.spec", version, f"DEMO-{version}", CVE,
                                                         "demo-www: security fix", defines={"page_text": page}))
        else:
            version = "1.0"
        self.releases.append((version, self.publish(base_manifest(self.work / "webapp", self.demo))))
        return self.releases[-1]

    @property
    def newest(self) -> tuple[str, str]:
        """The newest release of container-webapp: (the demo-www version it carries, its VERSION-RELEASE)."""
        return self.releases[-1]

    def publish(self, manifest: Path, update_lock: bool = True) -> str:
        """MANIFEST built (with --update-lock unless told not to), signed, into the repository, published; its VERSION-RELEASE."""
        return publish_signed_build(manifest, self.repo, self.signer, update_lock)

    def rpm(self, name: str, evr: str) -> Path:
        (found,) = self.repo.glob(f"container-{name}-{evr}.*.rpm")
        return found


@pytest.fixture(scope="session")
def published(host_share: Path, tmp_path_factory: pytest.TempPathFactory) -> Published:
    from freight.dist import demorepo

    work = tmp_path_factory.mktemp("e2e")
    signer = make_signer(work / "keys", "e2e@example.com")
    demo = work / "demo-repo"
    demorepo.make_repo(demo, sorted(demorepo.DEMO_SPECS.glob("*.spec")))
    published = Published(signer, demo, work, host_share / "e2e-repo")
    published.release()
    return published


@contextmanager
def lent(host: TestHost, repo_id: str, pool: str, pool_file: str) -> Iterator[TestHost]:
    """HOST for a test, given back as it was: every container package removed and its state purged,
    the .repo file REPO_ID, imported keys and the zfs-fuse pool POOL on POOL_FILE (see make_pool) gone,
    host.conf restored (with its times: rpm -V freight-host, in test_testhost, checks them too)."""
    saved = f"/var/tmp/{repo_id}-host.conf"
    host.run(["cp", "-p", CONF, saved])
    try:
        yield host
    finally:
        clear(host)
        host.run(["rm", "-f", f"/etc/yum.repos.d/{repo_id}.repo"])
        host.run(["mv", saved, CONF])
        host.sh("rpm -e gpg-pubkey >/dev/null 2>&1 || true; systemctl reset-failed")
        if host.sh(f"zpool list -H -o name {pool} 2>/dev/null || true").strip() == pool:
            letting_go(host, f"zpool destroy -f {pool}")
        host.run(["rm", "-f", pool_file])


def make_pool(host: TestHost, pool: str, pool_file: str) -> None:
    """A zfs-fuse pool POOL on the sparse file POOL_FILE in the host (the host has no disk of its own)."""
    host.sh(f"truncate -s 1G {pool_file}; zpool create -o cachefile=none -m none {pool} {pool_file}")


def add_signed_repo(host: TestHost, repo_id: str, repo: Path) -> None:
    """The repository REPO (in host_share) in the host's dnf, with the .repo file `freight repo-file` prints."""
    repo_file = freight("repo-file", "--name", repo_id, "--baseurl", f"file://{host.inside(repo)}")
    assert repo_file.returncode == 0, repo_file.stderr
    assert "gpgcheck=1" in repo_file.stdout and "repo_gpgcheck=1" in repo_file.stdout
    host.write_text(f"/etc/yum.repos.d/{repo_id}.repo", repo_file.stdout)


@pytest.fixture(scope="module")  # undone before other modules use the session's host
def e2e_host(freight_host: TestHost, published: Published) -> Iterator[TestHost]:
    """The host with the signed repository configured and a zfs-fuse pool; all undone at the end."""
    with lent(freight_host, REPO_ID, POOL, POOL_FILE):
        add_signed_repo(freight_host, REPO_ID, published.repo)
        make_pool(freight_host, POOL, POOL_FILE)
        yield freight_host


@pytest.fixture(params=["zfs", "dir"])
def storage(request: pytest.FixtureRequest, e2e_host: TestHost) -> Iterator[str]:
    """host.conf naming each backend in turn (zfs with a fresh parent dataset, which must be left empty)."""
    configure(e2e_host, request.param)
    if request.param == "zfs":
        e2e_host.run(["zfs", "create", "-o", "mountpoint=none", PARENT])
    yield request.param
    clear(e2e_host)
    if request.param == "zfs":
        left = datasets(e2e_host)
        letting_go(e2e_host, f"zfs destroy -r {PARENT}")
        assert left == [PARENT], f"the test left datasets behind: {left}"


def clear(host: TestHost) -> None:
    """Every container package removed, and the state their instances kept purged: how a test leaves the host."""
    host.sh("dnf remove -y 'container-*' >/dev/null 2>&1 || true")
    for kept in json.loads(host.run(["freight", "list", "--json"]))["kept_state"]:
        host.run(["freight", "purge", kept["instance"]])


def configure(host: TestHost, storage: str, parent: str = PARENT) -> None:
    host.write_text(CONF, textwrap.dedent(f"""\
        [host]
        storage = {storage}
        parent = {parent}
        """))


def sh_status(host: TestHost, script: str) -> tuple[int, str]:
    """SCRIPT in the host: its exit code and its output (stdout and stderr), whatever the code."""
    out = host.sh(f"{script} 2>&1 && echo rc=0 || echo rc=$?")
    body, _, rc = out.rstrip().rpartition("rc=")
    return int(rc), body


def dnf_status(host: TestHost, *args: str) -> tuple[int, str]:
    """dnf in the host, against the signed repository only: its exit code and output."""
    return sh_status(host, f"dnf -y --refresh --repo {REPO_ID} {' '.join(args)}")


def dnf(host: TestHost, *args: str) -> str:
    code, out = dnf_status(host, *args)
    assert code == 0, out
    return out


def datasets(host: TestHost, root: str = PARENT) -> list[str]:
    return host.run(["zfs", "list", "-H", "-o", "name", "-t", "all", "-r", root]).split()


def get(host: TestHost, port: int = PORT, path: str = "/") -> str | None:
    """What curl in the host gets from 127.0.0.1:PORT/PATH; None for an error or no answer."""
    out = host.sh(f"curl -fsS --max-time 2 http://127.0.0.1:{port}{path} && echo '<ok>' || true")
    return out[: -len("<ok>\n")] if out.endswith("<ok>\n") else None


def fetch(host: TestHost, expect: str, port: int = PORT, path: str = "/", timeout: float = 30) -> str:
    """The page at PORT/PATH, fetched by curl in the host, once it says EXPECT."""
    deadline = time.monotonic() + timeout
    page = None
    while time.monotonic() < deadline:
        page = get(host, port, path)
        if page is not None and expect in page:
            return page
        time.sleep(0.3)
    raise AssertionError(f"no page at :{port}{path} saying {expect!r} within {timeout} s; last answer: {page!r}")


def machine_state(host: TestHost, name: str = "webapp") -> str:
    return host.sh(f"machinectl show {name} --property=State --value 2>/dev/null || true").strip()


def rpm_verify(host: TestHost, package: str = "container-webapp") -> tuple[int, str]:
    """`rpm -V PACKAGE` in the host: its exit code and what it reported."""
    return sh_status(host, f"rpm -V {package}")


def status(host: TestHost, name: str = "webapp") -> dict:
    return json.loads(host.run(["freight", "status", "--json", name]))


def installed(host: TestHost, package: str) -> str | None:
    """The VERSION-RELEASE of PACKAGE in the host's rpm database, or None."""
    out = host.sh(f"rpm -q --qf '%{{VERSION}}-%{{RELEASE}}\\n' {package} 2>/dev/null || echo not installed")
    return None if "not installed" in out else out.strip()


def assert_nothing_left(host: TestHost, name: str = "webapp") -> None:
    """No package, machine, unit, settings file, drop-in, image or instance of NAME in the host."""
    assert installed(host, f"container-{name}") is None
    assert machine_state(host, name) == ""
    assert host.sh(f"systemctl is-active systemd-nspawn@{name}.service || true").strip() == "inactive"
    leftovers = host.sh(
        f"ls -d /etc/systemd/nspawn/{name}.nspawn /etc/systemd/system/systemd-nspawn@{name}.service.d "
        f"/etc/systemd/system/machines.target.wants/systemd-nspawn@{name}.service /var/lib/freight/images/{name} "
        f"/var/lib/machines/{name} /usr/share/freight/containers/{name} /etc/dnf/protected.d/freight-{name}.conf 2>/dev/null || true"
    )
    assert leftovers == ""
    assert name not in [i["name"] for i in json.loads(host.run(["freight", "list", "--json"]))["instances"]]


def letting_go(host: TestHost, command: str, timeout: float = 60) -> None:
    """A zfs or zpool destroy in the host, waiting while zfs-fuse calls it busy (see storage.zfs_letting_go)."""
    deadline = time.monotonic() + timeout
    while True:
        out = host.sh(f"{command} 2>&1 && echo destroyed || true")
        if out.strip().endswith("destroyed"):
            return
        assert "busy" in out and time.monotonic() < deadline, out
        Path("/proc/sys/vm/drop_caches").write_text("2\n")  # the host shares this kernel's inode cache
        time.sleep(0.2)

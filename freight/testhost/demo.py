"""The host half of `make demo`: install the published demo container in the demo host and fetch its page.

    python -m freight.testhost.demo --name freight-demo --repo /srv/freight-repo

The host is the one `make demo-host` booted (freight and freight-host
installed by dnf, the published repo/ bound at REPO). This does what an
administrator would: configure the repository with the .repo file
`freight repo-file` prints (gpgcheck=1, repo_gpgcheck=1), give freight a ZFS
parent dataset (a file-backed zfs-fuse pool, as the host has no disk of its
own), `dnf install container-webapp container-webapp-prod` (the demo container
and its derivative, examples/webapp-prod), and check that both machines run,
each serving its own page.
"""

from __future__ import annotations

import argparse
import sys
import time

from freight.common import log as flog
from freight.common.errors import FreightError
from freight.common.run import CommandError
from freight.testhost.machine import TestHost

REPO_ID = "freight-demo"
POOL = "demo"
PARENT = f"{POOL}/freight"
POOL_FILE = "/var/tmp/freight-demo-pool.img"
# Each machine and where it serves: both run on the default bridged network, each with an
# address of its own, and publish a host port each (examples/*/manifest.yaml).
MACHINES = {"webapp": "http://127.0.0.1:8080/", "webapp-prod": "http://127.0.0.1:8081/"}


def repo_file(host: TestHost, repo: str) -> str:
    """The .repo file `freight repo-file` (the host's own freight) prints for the repository at REPO."""
    return host.run(["freight", "repo-file", "--name", REPO_ID, "--baseurl", f"file://{repo}"])


def zfs_parent(host: TestHost) -> None:
    """A zfs-fuse pool on a sparse file with the parent dataset freight's host.conf names (once)."""
    if host.sh(f"zfs list -H -o name {PARENT} 2>/dev/null || true").strip() == PARENT:
        return
    host.sh(f"truncate -s 1G {POOL_FILE}; zpool create -o cachefile=none -m none {POOL} {POOL_FILE}; "
            f"zfs create -o mountpoint=none {PARENT}")
    host.write_text("/etc/freight/host.conf", f"[host]\nstorage = zfs\nparent = {PARENT}\n")


def install(host: TestHost, repo: str) -> None:
    flog.step("Configuring the signed repository %s in %s", repo, host.name)
    host.write_text(f"/etc/yum.repos.d/{REPO_ID}.repo", repo_file(host, repo))
    flog.log.info("%s", host.run(["cat", f"/etc/yum.repos.d/{REPO_ID}.repo"]).rstrip())
    zfs_parent(host)
    packages = [f"container-{name}" for name in MACHINES]
    flog.step("dnf install %s (signatures checked)", " ".join(packages))
    out = host.sh(f"dnf -y --refresh --repo {REPO_ID} install {' '.join(packages)} 2>&1")
    flog.log.info("%s", out.rstrip())
    missing = [p for p in packages if not _installed(host, p)]
    if missing:
        raise FreightError(f"dnf did not install {', '.join(missing)}")


def _installed(host: TestHost, package: str) -> bool:
    try:
        host.run(["rpm", "-q", package])
        return True
    except CommandError:
        return False


def fetch(host: TestHost, url: str, timeout: float = 30) -> str:
    """The page at URL, once the machine answers (it may still be starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return host.run(["curl", "-fsS", "--max-time", "2", url])
        except CommandError as exc:
            if time.monotonic() > deadline:
                raise FreightError(f"the demo machine does not answer at {url}: {exc.stderr.strip()}") from None
            time.sleep(0.3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m freight.testhost.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="freight-demo", help="the test host (make demo-host boots it)")
    parser.add_argument("--repo", default="/srv/freight-repo", help="the published repository, as the host sees it")
    args = parser.parse_args(argv)
    flog.setup()
    try:
        host = TestHost.attach(args.name)
        install(host, args.repo)
        pages = {url: fetch(host, url) for url in MACHINES.values()}
        flog.step("The machines run: two of one image, the derivative a clone of its snapshot with its page laid over")
        print(host.run(["machinectl", "list", "--no-pager"]).rstrip())
        print(host.run(["freight", "list"]).rstrip())
        print(host.run(["zfs", "list", "-t", "all", "-r", "-o", "name,origin,mountpoint", PARENT]).rstrip())
        for url, page in pages.items():
            flog.step("curl %s in the host", url)
            print(page.rstrip())
    except FreightError as exc:
        flog.log.error("%s", exc)
        return exc.exit_code
    print()
    print(f"A shell in the host: {host.shell_hint()}")
    print("In it, try: freight status webapp-prod; machinectl status webapp; journalctl -M webapp-prod; "
          "rpm -V container-webapp; dnf remove container-webapp (refused: webapp-prod runs on it)")
    print("Stop the host:        make demo-host-down")
    return 0


if __name__ == "__main__":
    sys.exit(main())

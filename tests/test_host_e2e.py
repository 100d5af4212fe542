"""Issue 4 end to end, in the booted test host: a signed repository, `dnf install`, a page over HTTP.

The host, the signed repository and the helpers are e2ehost's (its docstring
says how real each piece is).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from e2ehost import (
    CVE,
    PARENT,
    POOL,
    Published,
    assert_nothing_left,
    configure,
    datasets,
    dnf,
    dnf_status,
    fetch,
    get,
    installed,
    machine_state,
    rpm_verify,
    status,
)

if TYPE_CHECKING:
    from freight.testhost import TestHost

pytestmark = pytest.mark.slow

IMAGE = "/var/lib/freight/images/webapp"


@pytest.mark.parametrize("storage", ["zfs"], indirect=True)
def test_zfs_install_serve_upgrade_verify_remove(storage: str, e2e_host: TestHost, published: Published) -> None:
    host = e2e_host

    # --- install, with signatures checked -----------------------------------------------
    out = dnf(host, "install", "container-webapp")
    assert "Importing GPG key 0x" in out and "Key imported successfully" in out, out
    www, first = published.newest  # other tests may have released some before
    assert installed(host, "container-webapp") == first, out
    sets = datasets(host)
    assert f"{PARENT}/images/webapp" in sets and f"{PARENT}/images/webapp@{first}" in sets, (sets, out)
    assert f"{PARENT}/machines/webapp" in sets, sets
    assert host.run(["zfs", "get", "-H", "-o", "value", "origin", f"{PARENT}/machines/webapp"]).strip() == f"{PARENT}/images/webapp@{first}"
    assert host.run(["zfs", "get", "-H", "-o", "value", "mountpoint", f"{PARENT}/images/webapp"]).strip() == IMAGE
    assert "[Exec]" in host.run(["cat", "/etc/systemd/nspawn/webapp.nspawn"])

    # --- it runs, and says so the same way to machinectl and freight ---------------------
    page = fetch(host, f"demo-www {www}")
    assert machine_state(host) == "running"
    st = status(host)
    assert (st["state"], st["sub_state"], st["version"]) == ("active", "running", first), st
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
    assert "tampered" not in fetch(host, f"demo-www {www}")

    # --- upgrade to a new build: a new snapshot; the restarted instance serves the new page ---
    www, evr = published.release("Hello from the upgraded demo")
    assert evr != first and evr.startswith("1.0-1."), evr  # the lock's change bumped the release
    # dnf's security workflow sees the rebuilt container as a security update (issue 7)
    advisories = dnf(host, "updateinfo", "list", "--security")
    assert f"FREIGHT-container-webapp-{evr}" in advisories and f"container-webapp-{evr}.x86_64" in advisories, advisories
    assert CVE in dnf(host, "updateinfo", "info", f"FREIGHT-container-webapp-{evr}")
    out = dnf(host, "upgrade", "--security")
    assert host.run(["rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}", "container-webapp"]) == evr
    assert f"{PARENT}/images/webapp@{evr}" in datasets(host), out
    st = status(host)
    assert (st["version"], st["pending"]) == (first, evr), st  # the instance runs on until restarted
    host.run(["freight", "restart", "webapp"])
    page = fetch(host, "Hello from the upgraded demo")
    assert f"demo-www {www}" in page
    st = status(host)
    assert (st["state"], st["version"], st["pending"]) == ("active", evr, None), st
    assert host.run(["zfs", "get", "-H", "-o", "value", "origin", f"{PARENT}/machines/webapp"]).strip() == f"{PARENT}/images/webapp@{evr}"
    assert rpm_verify(host) == (0, "")  # the upgrade laid the image down afresh

    # --- remove: nothing left ---------------------------------------------------------------
    dnf(host, "remove", "container-webapp")
    assert_nothing_left(host)
    assert get(host) is None
    # its state stays, as dnf remove leaves a service's data, until freight purge
    assert datasets(host) == [PARENT, f"{PARENT}/state", f"{PARENT}/state/webapp", f"{PARENT}/state/webapp/srv-www-uploads"]
    host.run(["freight", "purge", "webapp"])
    assert datasets(host) == [PARENT]


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


@pytest.mark.parametrize("storage", ["dir"], indirect=True)
def test_dir_backend_install_serves_and_removes(storage: str, e2e_host: TestHost) -> None:
    host = e2e_host
    dnf(host, "install", "container-webapp")
    fetch(host, "<title>freight demo</title>")  # whichever release is newest
    assert machine_state(host) == "running"
    st = status(host)
    assert (st["state"], st["storage"]) == ("active", "dir"), st
    assert rpm_verify(host) == (0, "")
    dnf(host, "remove", "container-webapp")
    assert_nothing_left(host)
    host.run(["freight", "purge", "webapp"])
    assert datasets(host, POOL) == [POOL]

"""A production host has freight-host alone: no build side, no jsonschema, no createrepo_c.

A host of its own (not the session's, which has both sides) boots, loses
Debian's python3-jsonschema and python3-createrepo-c, and gets freight-host
from dnf, which brings freight-common and not freight. It then installs a
signed container from the e2e repository with dnf, and the machine serves:
the installer hook, `freight list` and `freight status` run on what
freight-host ships. A build command says which package it needs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import HOST_SHARE
from e2ehost import FIRST_PAGE, REPO_ID, Published, add_signed_repo, dnf, fetch, installed, machine_state, sh_status

if TYPE_CHECKING:
    from freight.testhost import TestHost

pytestmark = pytest.mark.slow

BUILD_SIDE_DEBS = ("python3-jsonschema", "python3-createrepo-c")


@pytest.fixture(scope="module")
def bare_host(host_share: Path, freight_rpms: list[Path], published: Published) -> Iterator[TestHost]:
    """A booted host with freight-host alone, without the build side's Python libraries."""
    from freight.testhost import Bind, TestHost
    from freight.testhost.provision import install_freight

    host = TestHost.boot(binds=[Bind(host_share, HOST_SHARE)])
    try:
        host.run(["apt-get", "remove", "-y", "-q", *BUILD_SIDE_DEBS])
        install_freight(host, host.inside(freight_rpms[0].parent), packages=("freight-host",))
        add_signed_repo(host, REPO_ID, published.repo)
        host.write_text("/etc/freight/host.conf", "[host]\nstorage = dir\n")
        yield host
    finally:
        host.shutdown()


def test_freight_host_installs_without_the_build_side(bare_host: TestHost) -> None:
    for deb in BUILD_SIDE_DEBS:
        status = bare_host.sh(f"dpkg-query -W -f='${{db:Status-Status}}' {deb} 2>/dev/null || true").strip()
        assert status != "installed", f"{deb} is still installed"
    code, out = sh_status(bare_host, "python3 -c 'import jsonschema'")
    assert code != 0 and "ModuleNotFoundError" in out
    assert installed(bare_host, "freight-host") is not None
    assert installed(bare_host, "freight-common") is not None
    assert installed(bare_host, "freight") is None


def test_a_container_installs_and_runs_on_freight_host_alone(bare_host: TestHost, published: Published) -> None:
    _, evr = published.releases[0]
    dnf(bare_host, "install", f"container-webapp-{evr}")
    try:
        assert FIRST_PAGE in fetch(bare_host, FIRST_PAGE)
        assert machine_state(bare_host) == "running"
        listed = json.loads(bare_host.run(["freight", "list", "--json"]))
        assert [i["name"] for i in listed["instances"]] == ["webapp"]
        assert json.loads(bare_host.run(["freight", "status", "--json", "webapp"]))["version"] == evr
        # The SBOM the package carries, read on a host without the build side or its SBOM libraries.
        sbom = json.loads(bare_host.run(["freight", "sbom", "--installed", "webapp"]))
        assert sbom["spdxVersion"] == "SPDX-2.3"
        assert {p["name"] for p in sbom["packages"]} == {"container-webapp", "demo-base", "demo-www"}
    finally:
        dnf(bare_host, "remove", "container-webapp")
    assert installed(bare_host, "container-webapp") is None
    assert machine_state(bare_host) == ""


def test_a_build_command_names_the_package_it_needs(bare_host: TestHost) -> None:
    code, out = sh_status(bare_host, "freight build /nonexistent.yaml")
    assert code == 1
    assert "'freight build' needs the freight package, which is not installed here" in out
    assert "Traceback" not in out

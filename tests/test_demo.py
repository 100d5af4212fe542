"""The host half of `make demo` (freight.testhost.demo), on the examples as they are, in the booted test host.

`make demo` itself runs on the machine, not in the suite; this runs the same
code on the same manifests (examples/webapp and its derivative
examples/webapp-prod, with their relative repository path), so a change that
breaks the demo breaks a test.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import ROOT, make_signer, publish_signed_build
from e2ehost import lent

if TYPE_CHECKING:
    from freight.testhost import TestHost

pytestmark = pytest.mark.slow


@pytest.fixture
def demo_host(freight_host: TestHost) -> Iterator[TestHost]:
    """The test host, given back as it was: no demo packages, repository, pool or host.conf change."""
    from freight.testhost import demo

    with lent(freight_host, demo.REPO_ID, demo.POOL, demo.POOL_FILE):
        yield freight_host


def test_make_demo_installs_the_example_and_its_derivative(demo_host: TestHost, host_share: Path, tmp_path: Path) -> None:
    from freight.dist import demorepo
    from freight.testhost import demo

    # the examples keep their repository relative to themselves: ../../build/demo-repo
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("*.lock"))
    demorepo.make_repo(tmp_path / "build/demo-repo")
    signer = make_signer(tmp_path / "keys", "demo@example.com")
    repo = host_share / "demo-repo"
    publish_signed_build(tmp_path / "examples/webapp/manifest.yaml", repo, signer)
    publish_signed_build(tmp_path / "examples/webapp-prod/manifest.yaml", repo, signer, update_lock=False)

    demo.install(demo_host, demo_host.inside(repo))
    pages = {name: demo.fetch(demo_host, url) for name, url in demo.MACHINES.items()}
    assert "Hello from the freight demo container" in pages["webapp"]
    assert "Hello from webapp-prod, a derivative of the freight demo container" in pages["webapp-prod"]
    origin = demo_host.run(["zfs", "get", "-H", "-o", "value", "origin", f"{demo.PARENT}/machines/webapp-prod"]).strip()
    assert origin == f"{demo.PARENT}/images/webapp@1.0-1"

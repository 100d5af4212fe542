"""Transactions that die on a host's image, and the repair that puts the image back in step with rpm.

Each dead transaction is made with the real pieces at the point it dies: the
hook's own phases as rpm would have run them so far, and rpm's database as
rpm would have left it (`rpm --justdb` writes or drops a header without
touching files). What follows is what freight documents: the next dnf
transaction, `freight repair`, or prepare-start. The booted host's kill
sweep is the issue's and not here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import freight
from hostfixtures import datasets
from rpmhost import RpmHost, leftovers, ok, registry

from freight.host.registry import ImageRecord, InstanceRecord
from freight.host.repair import diagnose

pytestmark = pytest.mark.slow


def cli(h: RpmHost, *args: str) -> subprocess.CompletedProcess:
    result = freight(*args, env=h.env)
    return subprocess.CompletedProcess(args, result.returncode, result.stdout, result.stderr)


def verify_clean(h: RpmHost) -> None:
    """rpm -V of the container finds nothing but owner names this host cannot resolve."""
    lines = h.rpm("-V", "--nodeps", "container-webapp").stdout.splitlines()
    assert all(line.split()[0].strip(".UG") == "" for line in lines), lines


def upgrade_dies_during_unpack(h: RpmHost) -> Path:
    """container-webapp 1.0 installed, then an upgrade to 1.1 that died while unpacking: its %pre ran
    and some of its files were written; rpm's database still lists 1.0 alone. The page it changed."""
    cfg = h.host.cfg
    ok(h.put("-i", RPMS["1.0"]))
    ok(h.hook("pre-install", "webapp", "1.1-1", "2", "--size", "1000"))
    page = cfg.images_dir / "webapp/srv/www/page.html"
    page.write_text("page 1.1\n")  # what the unpack got to
    (cfg.images_dir / "webapp/srv/www/half-written").write_text("x")
    assert h.installed() == ["container-webapp-1.0-1"]
    return page


RPMS: dict[str, Path] = {}


@pytest.fixture(autouse=True)
def _rpms(webapp_rpms: dict[str, Path]) -> None:
    RPMS.update(webapp_rpms)


def test_an_upgrade_that_died_is_reported_then_rolled_back_by_freight_repair(rpm_host: RpmHost) -> None:
    h = rpm_host
    page = upgrade_dies_during_unpack(h)
    code = h.rpm("-V", "--nodeps", "container-webapp")
    assert code.returncode == 1 and "srv/www/page.html" in code.stdout  # rpm sees it: the image is out of step

    listed = json.loads(cli(h, "list", "--json").stdout)["images"]
    assert listed[0]["interrupted"] == (
        "an rpm transaction (install 1.1-1) on container-webapp did not finish: rpm's database lists 1.0-1; "
        "'freight repair' will roll the image back to its snapshot of 1.0-1"
    )
    assert page.read_text() == "page 1.1\n"  # list only looks
    assert "roll the image back" in cli(h, "list").stdout

    repaired = cli(h, "repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "done: roll the image back to its snapshot of 1.0-1" in repaired.stderr
    assert page.read_text() == "page 1.0\n" and not (page.parent / "half-written").exists()
    verify_clean(h)
    assert registry(h).get(ImageRecord, "webapp").txn is None
    again = cli(h, "repair")
    assert again.returncode == 0 and "every image is in step" in again.stderr

    ok(h.put("-U", RPMS["1.1"]))  # and the upgrade, run again, goes through
    ok(h.hook("prepare-start", "webapp"))
    assert (h.host.cfg.machines_dir / "webapp/srv/www/page.html").read_text() == "page 1.1\n"
    verify_clean(h)
    ok(h.rpm("-e", "container-webapp"))
    assert cli(h, "purge", "webapp").returncode == 0
    assert leftovers(h) == []


def test_the_next_transaction_repairs_before_it_starts(rpm_host: RpmHost) -> None:
    h = rpm_host
    upgrade_dies_during_unpack(h)
    log = ok(h.put("-U", RPMS["1.2"]))  # dnf run again, to another version
    assert "done: roll the image back to its snapshot of 1.0-1" in log
    assert h.installed() == ["container-webapp-1.2-1"]
    assert registry(h).get(ImageRecord, "webapp").txn is None
    assert not (h.host.cfg.images_dir / "webapp/srv/www/half-written").exists()
    verify_clean(h)
    ok(h.rpm("-e", "container-webapp"))
    assert cli(h, "purge", "webapp").returncode == 0


def test_prepare_start_repairs_and_the_machine_keeps_its_snapshot(rpm_host: RpmHost) -> None:
    h = rpm_host
    upgrade_dies_during_unpack(h)
    machine = h.host.cfg.machines_dir / "webapp/srv/www/page.html"
    assert machine.read_text() == "page 1.0\n"  # the machine runs a clone: the dead unpack never reached it
    ok(h.hook("prepare-start", "webapp"))
    assert machine.read_text() == "page 1.0\n"
    assert registry(h).get(ImageRecord, "webapp").txn is None
    verify_clean(h)
    ok(h.rpm("-e", "container-webapp"))
    assert cli(h, "purge", "webapp").returncode == 0


def test_an_upgrade_that_died_after_the_old_header_went_is_finished(rpm_host: RpmHost) -> None:
    """The new version's files and header are in, the old header gone, its %postun (the snapshot) never ran."""
    h, cfg = rpm_host, rpm_host.host.cfg
    ok(h.put("-i", RPMS["1.0"]))
    ok(h.hook("pre-install", "webapp", "1.1-1", "2"))
    ok(h.put("-U", RPMS["1.1"], "--noscripts"))  # the files and the database, without the scriptlets
    assert registry(h).get(ImageRecord, "webapp").current == "1.0-1"
    repaired = cli(h, "repair")
    assert repaired.returncode == 0 and "done: take its snapshot of 1.1-1" in repaired.stderr, repaired.stderr
    image = registry(h).get(ImageRecord, "webapp")
    assert (image.current, image.txn) == ("1.1-1", None) and "1.1-1" in image.snapshots
    ok(h.hook("prepare-start", "webapp"))
    assert registry(h).get(InstanceRecord, "webapp").snapshot == "1.1-1"
    ok(h.rpm("-e", "container-webapp"))
    assert cli(h, "purge", "webapp").returncode == 0
    assert leftovers(h) == []
    if cfg.storage == "zfs":
        assert datasets(cfg.parent) == [cfg.parent]


def test_an_erase_that_died_after_its_header_went_is_finished(rpm_host: RpmHost) -> None:
    h, cfg = rpm_host, rpm_host.host.cfg
    ok(h.put("-i", RPMS["1.0"]))
    ok(h.hook("pre-uninstall", "webapp", "1.0-1", "0"))
    ok(h.rpm("-e", "--justdb", "--noscripts", "container-webapp"))
    assert "'freight repair' will remove its image and machines" in cli(h, "list").stdout
    repaired = cli(h, "repair")
    assert repaired.returncode == 0, repaired.stderr
    assert registry(h).get(ImageRecord, "webapp") is None and registry(h).get(InstanceRecord, "webapp") is None
    assert not (cfg.images_dir / "webapp").exists() and not (cfg.machines_dir / "webapp").exists()
    assert cli(h, "purge", "webapp").returncode == 0  # the state an erase keeps
    assert leftovers(h) == []


def test_duplicates_are_reported_with_the_command_that_finishes_them(rpm_host: RpmHost) -> None:
    """The new header added, the old not yet erased: both versions listed; freight does not guess."""
    h = rpm_host
    ok(h.put("-i", RPMS["1.0"]))
    ok(h.hook("pre-install", "webapp", "1.1-1", "2"))
    ok(h.put("-i", RPMS["1.1"], "--justdb", "--noscripts", "--replacefiles"))
    assert h.installed() == ["container-webapp-1.0-1", "container-webapp-1.1-1"]
    listed = cli(h, "list").stdout
    assert "rpm's database lists 1.0-1 and 1.1-1; 'dnf remove --duplicates container-webapp' finishes it" in listed
    repaired = cli(h, "repair")
    assert repaired.returncode == 1 and "'dnf remove --duplicates container-webapp' finishes it" in repaired.stderr
    assert registry(h).get(ImageRecord, "webapp").txn == "install 1.1-1"  # untouched
    ok(h.rpm("-e", "--justdb", "--noscripts", "container-webapp-1.1-1"))
    ok(h.rpm("-e", "container-webapp"))
    assert cli(h, "purge", "webapp").returncode == 0
    assert leftovers(h) == []


@pytest.mark.parametrize(
    ("current", "listed", "action"),
    [
        (None, [], "remove"),
        ("1.0-1", [], "finish-erase"),
        ("1.0-1", ["1.0-1"], "rollback"),
        ("1.0-1", ["1.1-1"], "snapshot"),
        (None, ["1.0-1"], "reinstall"),
        ("1.0-1", ["1.0-1", "1.1-1"], "duplicates"),
    ],
)
def test_what_each_dead_transaction_needs(current: str | None, listed: list[str], action: str) -> None:
    image = ImageRecord(name="webapp", storage="zfs", current=current, txn="install 1.1-1")
    finding = diagnose(image, listed)
    assert finding is not None and finding.action == action
    unmarked = diagnose(ImageRecord(name="webapp", storage="zfs", current=current), listed)
    # no mark: nothing died, but for two versions listed (an old %postun that ended without its header dropped)
    assert unmarked is None if action != "duplicates" else unmarked.action == "duplicates"

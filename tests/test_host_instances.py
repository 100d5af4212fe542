"""Derivative instances, unpackaged instances and rollback, on both backends, with real rpm transactions.

A base container and a derivative that replaces its page are installed with
the real rpm (their real scriptlets call the hook); the instances are read
from the host's folders, as the machines would see them. systemd is offline.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from conftest import freight, write_manifest
from hostfixtures import datasets
from rpmhost import RpmHost, leftovers, ok, registry

from freight.common.run import run
from freight.host.registry import ImageRecord, InstanceRecord, StateRecord

pytestmark = pytest.mark.slow

DERIVATIVE = """\
name: webapp-prod
version: "{version}"
summary: the demo web server with the production page
license: MIT
base: webapp
base_version: ">= 1.0"
files:
  - {{src: site/page.html, dest: /srv/www/page.html}}
  - {{src: site/app.conf, dest: /etc/app.conf, mode: "0600"}}
run:
  environment: {{MODE: prod}}
  state: [{state}]
"""

# The README: rollback is well under a second of freight's work (0.3-0.8 s measured for the whole command);
# the bound leaves room for a loaded machine, and the README names it.
ROLLBACK_SECONDS = 1.5


@pytest.fixture(scope="session")
def prod_rpms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """container-webapp-prod 1.0, 1.1 and 1.2, derivatives of webapp whose pages differ; 1.2 keeps /srv/www as state."""
    out = {}
    for version in ("1.0", "1.1", "1.2"):
        work = tmp_path_factory.mktemp(f"prod-{version}")
        (work / "site").mkdir()
        (work / "site/page.html").write_text(f"prod page {version}\n")
        (work / "site/app.conf").write_text("mode = prod\n")
        state = "/var/lib/prod" + (", /srv/www" if version == "1.2" else "")
        result = freight("build", write_manifest(work, DERIVATIVE.format(version=version, state=state)), "-o", work / "out")
        assert result.returncode == 0, result.stderr
        out[version] = Path(result.last_line)
    return out


def cli(h: RpmHost, *args: str) -> tuple[int, str, str]:
    proc = freight(*args, env={"FREIGHT_HOST_CONF": str(h.host.conf), "SYSTEMD_OFFLINE": "1"})
    return proc.returncode, proc.stdout, proc.stderr


def page(h: RpmHost, instance: str, rel: str = "srv/www/page.html") -> str | None:
    path = h.host.cfg.machines_dir / instance / rel
    return path.read_text() if path.exists() else None


def listing(h: RpmHost) -> dict[str, dict]:
    code, out, err = cli(h, "list", "--json")
    assert code == 0, err
    return {i["name"]: i for i in json.loads(out)["instances"]}


def test_base_and_derivative_instances(rpm_host: RpmHost, webapp_rpms: dict[str, Path], prod_rpms: dict[str, Path]) -> None:
    h, cfg, zfs = rpm_host, rpm_host.host.cfg, rpm_host.host.cfg.storage == "zfs"
    state = cfg.state_dir

    # --- install: two machines from one image, different pages ------------------------------
    ok(h.put("-i", webapp_rpms["1.0"]))
    log = ok(h.put("-i", prod_rpms["1.0"]))
    assert "webapp-prod: made from webapp 1.0-1 with the overlay webapp-prod 1.0-1" in log
    assert page(h, "webapp") == "page 1.0\n" and page(h, "webapp-prod") == "prod page 1.0\n"
    assert page(h, "webapp-prod", "srv/www/old.html") == "only in 1.0\n"  # the rest is the base's
    conf = os.stat(cfg.machines_dir / "webapp-prod/etc/app.conf")
    assert conf.st_mode & 0o777 == 0o600
    token = os.stat(cfg.machines_dir / "webapp-prod/srv/private/token")  # owners as in the image
    assert (token.st_uid, token.st_gid) == (80, 80)
    record = registry(h).get(InstanceRecord, "webapp-prod")
    assert (record.image, record.snapshot, record.overlay, record.overlay_version, record.state) == (
        "webapp", "1.0-1", "webapp-prod", "1.0-1", ["/srv/data", "/var/lib/prod"]
    )
    assert registry(h).get(ImageRecord, "webapp-prod") is None and not (cfg.images_dir / "webapp-prod").exists()
    # its own settings, from the merged run: the base's command, state and limits, its environment and state
    settings = (cfg.nspawn_dir / "webapp-prod.nspawn").read_text()
    assert "/usr/bin/httpd" in settings and "MODE=prod" in settings
    assert f"{state}/webapp-prod/srv-data:/srv/data" in settings and f"{state}/webapp-prod/var-lib-prod:/var/lib/prod" in settings
    assert "MemoryMax=64M" in (cfg.units_dir / "freight-webapp\\x2dprod.slice.d/10-manifest.conf").read_text()  # on its slice
    assert "MODE=prod" not in (cfg.nspawn_dir / "webapp.nspawn").read_text()
    assert (state / "webapp-prod/srv-data/seed.txt").read_text() == "seeded by the image\n"
    # rpm refuses to remove the base because of the derivative's Requires (dnf's refusal is its plugin's: test_host_derivatives_e2e)
    assert not (cfg.protected_dir / "freight-webapp-prod.conf").exists()
    refused = h.rpm("--erase", "container-webapp")
    assert refused.returncode != 0 and "container-webapp >= 1.0 is needed by (installed) container-webapp-prod-1.0-1" in refused.stderr
    forced = h.rpm("--erase", "--nodeps", "container-webapp")  # and forced, the base's %preun says no
    assert forced.returncode != 0, forced.stderr
    assert "container-webapp-prod is still installed, and its machine webapp-prod is made from webapp" in forced.stderr
    assert h.rpm("-q", "container-webapp").returncode == 0 and page(h, "webapp-prod") == "prod page 1.0\n"
    if zfs:
        origin = run(["zfs", "get", "-H", "-o", "value", "origin", f"{cfg.parent}/machines/webapp-prod"]).stdout.strip()
        assert origin == f"{cfg.parent}/images/webapp@1.0-1"  # a clone, not a copy

    # --- writes stay in their instance -------------------------------------------------------
    (cfg.machines_dir / "webapp/srv/www/scratch.html").write_text("only in webapp\n")
    (state / "webapp/srv-data/kept.txt").write_text("webapp's state\n")
    (state / "webapp-prod/var-lib-prod/kept.txt").write_text("prod's state\n")
    assert page(h, "webapp-prod", "srv/www/scratch.html") is None
    assert not (cfg.images_dir / "webapp/srv/www/scratch.html").exists()
    assert (cfg.images_dir / "webapp/srv/www/page.html").read_text() == "page 1.0\n"
    # rpm -V of the image finds nothing but the owners only the container knows (see the README's Known limits)
    verify = h.rpm("-V", "--nodeps", "container-webapp").stdout.splitlines()
    assert verify and all(line.split()[0].strip(".UG") == "" for line in verify), verify

    # --- an upgrade of the base touches neither machine until it starts ----------------------
    ok(h.put("-U", webapp_rpms["1.1"]))
    assert page(h, "webapp") == "page 1.0\n" and page(h, "webapp-prod") == "prod page 1.0\n"
    assert page(h, "webapp", "srv/www/scratch.html") == "only in webapp\n"
    assert page(h, "webapp-prod", "srv/www/old.html") == "only in 1.0\n"
    info = listing(h)
    assert [(info[n]["image"], info[n]["overlay"], info[n]["version"], info[n]["pending"]) for n in ("webapp", "webapp-prod")] == [
        ("webapp", None, "1.0-1", "1.1-1"), ("webapp", "webapp-prod", "1.0-1", "1.1-1")
    ]
    code, text, _ = cli(h, "list")
    assert code == 0 and "webapp+webapp-prod" in text and "1.0-1 (1.1-1 at restart)" in text
    assert "/var/lib/extra" in (cfg.nspawn_dir / "webapp-prod.nspawn").read_text()  # 1.1's new state path, merged

    for name in ("webapp", "webapp-prod"):
        ok(h.hook("prepare-start", name))
    assert page(h, "webapp") == "page 1.1\n" and page(h, "webapp-prod") == "prod page 1.0\n"
    assert page(h, "webapp-prod", "srv/www/old.html") is None  # on 1.1's snapshot now
    assert page(h, "webapp", "srv/www/scratch.html") is None
    assert (cfg.machines_dir / "webapp-prod/etc/app.conf").stat().st_mode & 0o777 == 0o600
    assert (state / "webapp/srv-data/kept.txt").read_text() == "webapp's state\n"
    assert (state / "webapp-prod/var-lib-prod/kept.txt").read_text() == "prod's state\n"
    assert {n: i["pending"] for n, i in listing(h).items()} == {"webapp": None, "webapp-prod": None}

    # --- rollback: the previous snapshot, in seconds, pinned ---------------------------------
    started = time.monotonic()
    code, out, err = cli(h, "rollback", "webapp-prod")
    took = time.monotonic() - started
    assert code == 0, err
    assert took < ROLLBACK_SECONDS, f"rollback took {took:.2f} s; the README promises under {ROLLBACK_SECONDS} s"
    print(f"\nrollback on {cfg.storage}: {took:.2f} s (the whole command)")
    assert "webapp-prod: rolled back from webapp 1.1-1 to 1.0-1" in out
    assert "The package container-webapp stays at 1.1-1" in out
    assert "'dnf downgrade container-webapp-1.0-1', which reuses the kept snapshot" in out
    assert page(h, "webapp-prod", "srv/www/old.html") == "only in 1.0\n" and page(h, "webapp-prod") == "prod page 1.0\n"
    assert (state / "webapp-prod/var-lib-prod/kept.txt").read_text() == "prod's state\n"
    ok(h.hook("prepare-start", "webapp-prod"))  # a pinned instance stays where it was put
    assert page(h, "webapp-prod", "srv/www/old.html") == "only in 1.0\n"
    prod = listing(h)["webapp-prod"]
    assert (prod["version"], prod["pending"], prod["pinned"], prod["newer"]) == ("1.0-1", None, True, "1.1-1")
    code, text, _ = cli(h, "list")
    assert "1.0-1 (pinned by rollback; 1.1-1 is installed)" in text
    code, text, _ = cli(h, "status", "webapp-prod")
    assert code == 0 and "(image webapp, overlay webapp-prod 1.0-1," in text
    assert "1.0-1 (pinned by a rollback; 1.1-1 is installed: 'freight instance unpin webapp-prod')" in text
    code, out, _ = cli(h, "rollback", "webapp")
    assert code == 0 and page(h, "webapp") == "page 1.0\n"
    code, _, err = cli(h, "rollback", "webapp")
    assert code == 1 and "no older snapshot of webapp is kept" in err

    # unpin: the next start moves it forward again
    code, _, err = cli(h, "instance", "unpin", "webapp")
    assert code == 0, err
    ok(h.hook("prepare-start", "webapp"))
    assert page(h, "webapp") == "page 1.1\n"

    # --- the next package change ends the pin; a derivative upgrade brings its new overlay at the next start
    log = ok(h.put("-U", webapp_rpms["1.2"]))
    assert "webapp-prod: no longer pinned by its rollback" in log
    ok(h.put("-U", prod_rpms["1.1"]))
    assert page(h, "webapp-prod") == "prod page 1.0\n"
    ok(h.hook("prepare-start", "webapp-prod"))
    assert page(h, "webapp-prod") == "prod page 1.1\n"
    record = registry(h).get(InstanceRecord, "webapp-prod")
    assert (record.snapshot, record.overlay_version, record.pinned) == ("1.2-1", "1.1-1", False)
    assert (state / "webapp-prod/var-lib-prod/kept.txt").read_text() == "prod's state\n"

    # --- unpackaged instances ----------------------------------------------------------------
    code, _, err = cli(h, "instance", "create", "webapp", "scratch")
    assert code == 0, err
    code, _, err = cli(h, "instance", "create", "webapp-prod", "prod-copy")
    assert code == 0, err
    assert page(h, "scratch") == "page 1.2\n" and page(h, "prod-copy") == "prod page 1.1\n"
    (cfg.machines_dir / "scratch/srv/www/mine.html").write_text("scratch's\n")
    assert all(page(h, n, "srv/www/mine.html") is None for n in ("webapp", "webapp-prod", "prod-copy"))
    assert not (cfg.images_dir / "webapp/srv/www/mine.html").exists()
    assert (cfg.protected_dir / "freight-scratch.conf").read_text().splitlines()[1:] == ["container-webapp"]
    assert (cfg.protected_dir / "freight-prod-copy.conf").read_text().splitlines()[1:] == ["container-webapp", "container-webapp-prod"]
    assert registry(h).get(InstanceRecord, "prod-copy").overlay == "webapp-prod"
    code, _, err = cli(h, "instance", "create", "webapp", "scratch")
    assert code == 1 and "an instance named scratch exists already" in err
    code, _, err = cli(h, "instance", "create", "nothing", "x")
    assert code == 1 and "is container-nothing installed?" in err
    code, _, err = cli(h, "instance", "remove", "webapp-prod")
    assert code == 2 and "webapp-prod belongs to the package container-webapp-prod" in err
    for name in ("scratch", "prod-copy"):
        code, _, err = cli(h, "instance", "remove", name, "--purge")
        assert code == 0, err
        assert not (cfg.machines_dir / name).exists() and not (cfg.protected_dir / f"freight-{name}.conf").exists()
        assert registry(h).get(StateRecord, name) is None

    # --- removing the derivative removes only its instance -----------------------------------
    ok(h.rpm("-e", "container-webapp-prod"))
    assert not (cfg.machines_dir / "webapp-prod").exists() and not (cfg.nspawn_dir / "webapp-prod.nspawn").exists()
    assert not (cfg.protected_dir / "freight-webapp-prod.conf").exists()
    assert registry(h).get(InstanceRecord, "webapp-prod") is None
    assert registry(h).get(StateRecord, "webapp-prod") is not None  # kept, like any instance's state
    assert page(h, "webapp") == "page 1.1\n" and registry(h).get(InstanceRecord, "webapp") is not None
    assert (cfg.nspawn_dir / "webapp.nspawn").exists()

    ok(h.rpm("-e", "container-webapp"))
    for name in ("webapp", "webapp-prod"):
        assert cli(h, "purge", name)[0] == 0
    assert leftovers(h) == []
    if zfs:
        assert datasets(cfg.parent) == [cfg.parent]


def test_downgrade_after_a_rollback_reuses_the_snapshot_and_ends_the_pin(rpm_host: RpmHost, webapp_rpms: dict[str, Path]) -> None:
    h = rpm_host
    ok(h.put("-i", webapp_rpms["1.0"]))
    ok(h.put("-U", webapp_rpms["1.1"]))
    ok(h.hook("prepare-start", "webapp"))
    code, out, err = cli(h, "rollback", "webapp")
    assert code == 0 and "'dnf downgrade container-webapp-1.0-1'" in out, err
    assert registry(h).get(InstanceRecord, "webapp").pinned

    log = ok(h.put("-U", webapp_rpms["1.0"], "--oldpackage"))  # what dnf downgrade runs
    assert "reusing the kept snapshot of 1.0-1" in log
    record = registry(h).get(InstanceRecord, "webapp")
    assert (record.snapshot, record.pinned) == ("1.0-1", False)
    assert registry(h).get(ImageRecord, "webapp").current == "1.0-1"
    ok(h.hook("prepare-start", "webapp"))
    assert page(h, "webapp") == "page 1.0\n" and listing(h)["webapp"]["pending"] is None

    ok(h.rpm("-e", "container-webapp"))
    assert cli(h, "purge", "webapp")[0] == 0
    assert leftovers(h) == []


def test_a_state_path_new_in_a_derivative_upgrade_starts_as_the_instance_would_have_it(
    rpm_host: RpmHost, webapp_rpms: dict[str, Path], prod_rpms: dict[str, Path]
) -> None:
    h, state = rpm_host, rpm_host.host.cfg.state_dir
    ok(h.put("-i", webapp_rpms["1.0"]))
    ok(h.put("-i", prod_rpms["1.1"]))
    ok(h.put("-U", prod_rpms["1.2"]))  # keeps /srv/www from now on
    kept = state / "webapp-prod/srv-www"
    # the base's files there, with the overlay's over them: what the machine had at that path
    assert sorted(p.name for p in kept.iterdir()) == sorted(p.name for p in (h.host.cfg.machines_dir / "webapp-prod/srv/www").iterdir())
    assert (kept / "page.html").read_text() == "prod page 1.2\n" and (kept / "old.html").read_text() == "only in 1.0\n"
    ok(h.rpm("-e", "container-webapp-prod"))
    ok(h.rpm("-e", "container-webapp"))
    for name in ("webapp", "webapp-prod"):
        assert cli(h, "purge", name)[0] == 0
    assert leftovers(h) == []

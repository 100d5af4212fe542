"""Knowing when systemd cannot be asked, and what is done then (this machine has no systemd as PID 1).

The D-Bus calls themselves need a booted host: they are exercised by the
booted test host's integration tests, not here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hostfixtures import make_host

from freight.common.run import run
from freight.host.systemd import Systemd, addresses, offline_reason

ROOT = Path(__file__).resolve().parent.parent


def test_offline_without_run_systemd_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYSTEMD_OFFLINE", raising=False)
    reason = offline_reason(run_dir=tmp_path / "absent")
    assert reason is not None and "systemd is not running" in reason


def test_online_when_booted_and_not_chrooted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYSTEMD_OFFLINE", raising=False)
    assert offline_reason(run_dir=tmp_path, proc1_root=Path("/")) is None


def test_offline_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSTEMD_OFFLINE", "1")
    assert offline_reason(run_dir=tmp_path, proc1_root=Path("/")) == "SYSTEMD_OFFLINE=1 is set"


def test_offline_in_a_chroot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYSTEMD_OFFLINE", raising=False)
    assert offline_reason(run_dir=tmp_path, proc1_root=tmp_path) == "running in a chroot"


@pytest.mark.slow
def test_a_real_chroot_is_noticed(tmp_path: Path) -> None:
    """Run the check chrooted, as rpm runs scriptlets, under a PID 1 that is not.

    A new PID namespace gives the test a PID 1 whose root it may look at (this
    machine hides its real PID 1's root even from root).
    """
    root = tmp_path / "root"
    root.mkdir()
    for name, target in {"bin": "usr/bin", "lib": "usr/lib", "lib64": "usr/lib64", "sbin": "usr/sbin"}.items():
        (root / name).symlink_to(target)
    (root / "run/systemd/system").mkdir(parents=True)  # a chroot that even looks booted
    binds = ["/usr", "/etc", "/dev", str(ROOT)]
    script = " && ".join(
        [
            *(f"mkdir -p {root}{b} && mount --rbind {b} {root}{b}" for b in binds),
            f"mkdir {root}/proc && mount -t proc proc {root}/proc",
            f"chroot {root} /usr/bin/python3 -c 'import sys; sys.path.insert(0, \"{ROOT}\"); "
            "from freight.host.systemd import offline_reason; print(offline_reason())'",
        ]
    )
    proc = run(["unshare", "--mount", "--pid", "--fork", "--propagation", "private", "sh", "-c", script], env={"SYSTEMD_OFFLINE": ""}, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "running in a chroot"


def test_this_build_machine_is_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYSTEMD_OFFLINE", raising=False)
    if Path("/run/systemd/system").is_dir():
        pytest.skip("systemd runs here")
    assert offline_reason() is not None


def test_offline_enable_writes_the_links_systemctl_would(tmp_path: Path) -> None:
    host = make_host(tmp_path, "dir")
    sd = Systemd(host.cfg, offline="test")
    if not any(Path(d, "systemd-nspawn@.service").exists() for d in ("/usr/lib/systemd/system", "/lib/systemd/system")):
        pytest.skip("systemd-container is not installed")
    sd.enable("web")
    link = host.cfg.units_dir / "machines.target.wants/systemd-nspawn@web.service"
    assert link.is_symlink() and os.readlink(link).endswith("/systemd-nspawn@.service") and link.exists()
    assert (host.cfg.units_dir / "multi-user.target.wants/machines.target").is_symlink()
    assert sd.enabled_offline("web")
    sd.enable("web")  # twice is fine
    sd.disable("web")
    assert not link.is_symlink() and not sd.enabled_offline("web")
    assert not (host.cfg.units_dir / "machines.target.wants").exists()


def test_offline_skips_reload_and_refuses_start(tmp_path: Path) -> None:
    sd = Systemd(make_host(tmp_path, "dir").cfg, offline="no systemd here")
    assert sd.daemon_reload() is False
    assert sd.unit("web") is None and sd.machine("web") is None
    with pytest.raises(Exception, match="cannot start web: no systemd here"):
        sd.start("web")


def test_machined_addresses_as_text() -> None:
    assert addresses([(2, [10, 0, 0, 2]), (10, bytes.fromhex("fe80" + "00" * 12 + "0001")), (2, [1, 2])]) == ["10.0.0.2", "fe80::1"]

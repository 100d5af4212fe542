"""systemd control through pystemd (D-Bus), and knowing when there is no systemd to ask.

Everything goes over D-Bus (org.freedesktop.systemd1 and machine1) rather than
through systemctl's output, which is meant for people. Like systemctl in an
rpm scriptlet, freight does nothing and says little when systemd is not
running — in a chroot, an image build, or a container without systemd as
PID 1 — except enabling, which (as `systemctl enable` does offline) is only a
symlink and is written directly, so a machine enabled in an image build
starts when that image boots.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freight.common.errors import FreightError
from freight.host.config import HostConfig
from freight.host.nspawn import unit_name

log = logging.getLogger("freight.host.systemd")

RUN_DIR = Path("/run/systemd/system")
PROC1_ROOT = Path("/proc/1/root")
TEMPLATE_UNIT = "systemd-nspawn@.service"
MACHINES_TARGET = "machines.target"
UNIT_DIRS = (Path("/etc/systemd/system"), Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
JOB_TIMEOUT = 120.0


def offline_reason(run_dir: Path = RUN_DIR, proc1_root: Path = PROC1_ROOT) -> str | None:
    """Why systemd cannot be asked here, or None when it can (same tests as systemctl)."""
    if os.environ.get("SYSTEMD_OFFLINE") == "1":
        return "SYSTEMD_OFFLINE=1 is set"
    try:
        here, init = os.stat("/"), os.stat(proc1_root)
        if (here.st_dev, here.st_ino) != (init.st_dev, init.st_ino):
            return "running in a chroot"
    except FileNotFoundError:
        return "there is no /proc (a chroot?)"
    except PermissionError:
        pass  # PID 1's root is hidden from us (seen on the CI machine): as systemd does, assume no chroot
    if not run_dir.is_dir():
        return f"systemd is not running ({run_dir} does not exist)"
    return None


@dataclass
class UnitState:
    unit: str
    load: str  # loaded, not-found …
    active: str  # active, inactive, failed, activating …
    sub: str
    enabled: str  # enabled, disabled …
    result: str = ""
    main_pid: int = 0


@dataclass
class MachineInfo:
    name: str
    state: str
    leader: int
    addresses: list[str] = field(default_factory=list)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Systemd:
    """The running systemd of this host, or its absence.

    Online, every call is one D-Bus request (and a wait for its job);
    offline, start/stop/reload are skipped with a log line and enable/disable
    write or remove the symlinks `systemctl enable` would.
    """

    def __init__(self, cfg: HostConfig, offline: str | None = None) -> None:
        """OFFLINE forces offline mode with that reason; by default it is detected."""
        self.cfg = cfg
        self.offline = offline or offline_reason()

    # --- manager -----------------------------------------------------------------

    def _call(self, what: str, fn: Any) -> Any:
        from pystemd.dbusexc import DBusBaseError

        try:
            return fn()
        except DBusBaseError as exc:
            raise FreightError(f"systemd: {what} failed: {exc}") from None

    def _manager(self) -> Any:
        from pystemd.systemd1 import Manager

        return Manager()

    def daemon_reload(self) -> bool:
        if self.offline:
            log.info("not reloading systemd: %s", self.offline)
            return False

        def reload() -> None:
            with self._manager() as m:
                m.Manager.Reload()

        self._call("daemon-reload", reload)
        log.debug("systemd reloaded")
        return True

    def _job(self, verb: str, instance: str) -> None:
        """Queue START/STOP/RESTART of the machine's unit and wait for the job to finish."""
        unit = unit_name(instance)

        def call() -> None:
            with self._manager() as m:
                method = {"start": m.Manager.StartUnit, "stop": m.Manager.StopUnit, "restart": m.Manager.RestartUnit}[verb]
                job = method(unit.encode(), b"replace")
                deadline = time.monotonic() + JOB_TIMEOUT
                while any(j[4] == job for j in m.Manager.ListJobs()):
                    if time.monotonic() > deadline:
                        raise FreightError(f"systemd: {verb} {unit} did not finish within {JOB_TIMEOUT:.0f} s")
                    time.sleep(0.1)

        self._call(f"{verb} {unit}", call)
        state = self.unit(instance)
        wanted = "inactive" if verb == "stop" else "active"
        if state is not None and state.active != wanted and not (verb == "stop" and state.active == "failed"):
            raise FreightError(
                f"{unit} is {state.active} ({state.sub}, result {state.result or 'unknown'}) after {verb}; "
                f"see: journalctl -u {unit}"
            )

    def start(self, instance: str) -> None:
        self._online_only("start", instance)
        self._job("start", instance)

    def stop(self, instance: str) -> None:
        """Stop the machine; a stop asked for is not a failure, so the unit ends inactive, not failed
        (see reset_failed)."""
        self._online_only("stop", instance)
        self._job("stop", instance)
        self.reset_failed(instance)

    def restart(self, instance: str) -> None:
        self._online_only("restart", instance)
        self._job("restart", instance)

    def _online_only(self, verb: str, instance: str) -> None:
        if self.offline:
            raise FreightError(f"cannot {verb} {instance}: {self.offline}")

    def reset_failed(self, instance: str) -> None:
        """Forget a failed state, so a stopped or removed machine leaves no failed unit behind.

        A command container stops by SIGKILL (nspawn's default without an
        init), which systemd records as a failure of the unit.
        """
        if self.offline:
            return
        from pystemd.dbusexc import DBusBaseError

        try:
            with self._manager() as m:
                m.Manager.ResetFailedUnit(unit_name(instance).encode())
        except DBusBaseError as exc:
            log.debug("reset-failed %s: %s", unit_name(instance), exc)

    def enable(self, instance: str) -> None:
        """Enable the machine and machines.target, as `machinectl enable` does."""
        units = [unit_name(instance), MACHINES_TARGET]
        if self.offline:
            self._link(instance)
            return

        def call() -> None:
            with self._manager() as m:
                m.Manager.EnableUnitFiles([u.encode() for u in units], False, True)
                m.Manager.Reload()

        self._call(f"enable {units[0]}", call)

    def disable(self, instance: str) -> None:
        if self.offline:
            self._unlink(instance)
            return

        def call() -> None:
            with self._manager() as m:
                m.Manager.DisableUnitFiles([unit_name(instance).encode()], False)
                m.Manager.Reload()

        self._call(f"disable {unit_name(instance)}", call)

    # --- offline enablement ------------------------------------------------------

    def _wants_link(self, instance: str) -> Path:
        return self.cfg.units_dir / f"{MACHINES_TARGET}.wants" / unit_name(instance)

    def _link(self, instance: str) -> None:
        template = next((d / TEMPLATE_UNIT for d in UNIT_DIRS if (d / TEMPLATE_UNIT).exists()), None)
        if template is None:
            raise FreightError(f"cannot enable {instance}: {TEMPLATE_UNIT} is not installed (systemd-container)")
        links = [(self._wants_link(instance), template)]
        target = next((d / MACHINES_TARGET for d in UNIT_DIRS[1:] if (d / MACHINES_TARGET).exists()), None)
        if target is not None:
            links.append((self.cfg.units_dir / "multi-user.target.wants" / MACHINES_TARGET, target))
        for link, dest in links:
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(dest)
        log.info("enabled %s (offline: %s)", unit_name(instance), self.offline)

    def _unlink(self, instance: str) -> None:
        link = self._wants_link(instance)
        link.unlink(missing_ok=True)
        try:
            link.parent.rmdir()
        except OSError:
            pass

    # --- state -------------------------------------------------------------------

    def unit(self, instance: str) -> UnitState | None:
        """The machine unit's state, or None when systemd cannot be asked."""
        if self.offline:
            return None
        from pystemd.systemd1 import Unit

        def call() -> UnitState:
            with Unit(unit_name(instance).encode()) as u:
                service = getattr(u, "Service", None)
                return UnitState(
                    unit=unit_name(instance),
                    load=_text(u.Unit.LoadState),
                    active=_text(u.Unit.ActiveState),
                    sub=_text(u.Unit.SubState),
                    enabled=_text(u.Unit.UnitFileState) or "disabled",
                    result=_text(service.Result) if service is not None else "",
                    main_pid=int(service.MainPID) if service is not None else 0,
                )

        return self._call(f"reading the state of {unit_name(instance)}", call)

    def enabled_offline(self, instance: str) -> bool:
        return self._wants_link(instance).is_symlink()

    def machine(self, instance: str) -> MachineInfo | None:
        """The registered machine (systemd-machined), with its IP addresses; None if not running."""
        if self.offline:
            return None
        from pystemd.dbusexc import DBusBaseError
        from pystemd.machine1 import Machine, Manager

        try:
            with Machine(instance.encode()) as machine:
                state, leader = _text(machine.Machine.State), int(machine.Machine.Leader)
        except DBusBaseError as exc:
            log.debug("machine %s: %s", instance, exc)
            return None
        try:
            with Manager() as m:
                raw = m.Manager.GetMachineAddresses(instance.encode())
        except DBusBaseError as exc:
            # A machine on the host's network (`network: host`) has no addresses of its own:
            # machined answers NoPrivateNetworking, and the machine is still there.
            log.debug("machine %s: %s", instance, exc)
            raw = []
        return MachineInfo(name=instance, state=state, leader=leader, addresses=addresses(raw))


def addresses(raw: list[tuple[int, Any]]) -> list[str]:
    """machined's a(iay) address list as text: [(2, [10, 0, 0, 2])] -> ['10.0.0.2']."""
    out = []
    for _family, addr in raw:
        try:
            out.append(str(ipaddress.ip_address(bytes(addr))))
        except ValueError:
            continue
    return out

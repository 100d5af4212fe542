"""The few D-Bus calls the runtime commands make on their fast path, without pystemd's objects.

pystemd's objects (Manager, Unit, Machine) introspect each D-Bus object
first: a call and an XML parse each, which is most of what `freight exec
NAME true` would cost beyond its floor. The calls here go straight through
pystemd's connection and its signature helpers, with the interfaces and
property types written out.
"""

from __future__ import annotations

from typing import Any

from freight.common.errors import FreightError

SYSTEMD = b"org.freedesktop.systemd1"
SYSTEMD_PATH = b"/org/freedesktop/systemd1"
MANAGER = b"org.freedesktop.systemd1.Manager"
UNIT = b"org.freedesktop.systemd1.Unit"
SERVICE = b"org.freedesktop.systemd1.Service"
MACHINED = b"org.freedesktop.machine1"
MACHINED_PATH = b"/org/freedesktop/machine1"
# Transient-unit properties systemd takes that pystemd 0.10's table of D-Bus signatures lacks.
EXTRA_SIGNATURES = {b"PIDs": b"au", b"AddRef": b"b"}


class Bus:
    """One connection to the system bus; a unit started with AddRef lives while it is open."""

    def __init__(self) -> None:
        from pystemd.dbuslib import DBus

        self.dbus = DBus()
        self.dbus.open()

    def close(self) -> None:
        self.dbus.close()

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, dest: bytes, path: bytes, iface: bytes, method: bytes, args: list[Any]) -> Any:
        from pystemd.dbusexc import DBusBaseError

        try:
            return self.dbus.call_method(dest, path, iface, method, args).body
        except DBusBaseError as exc:
            raise FreightError(f"{method.decode()}: {exc.args[0] if exc.args else exc}") from None

    def start_transient(self, name: str, properties: dict[bytes, Any]) -> None:
        from pystemd.dbuslib import apply_signature
        from pystemd.systemd1 import unit_signatures

        for prop, signature in EXTRA_SIGNATURES.items():
            unit_signatures.KNOWN_UNIT_SIGNATURES.setdefault(prop, signature)
        args = apply_signature(b"ss", [name.encode(), b"fail"])
        args += unit_signatures.signature_array(properties)
        args += [(ord(b"a"), b"(sa(sv))"), (-1, None)]  # no auxiliary units
        self._call(SYSTEMD, SYSTEMD_PATH, MANAGER, b"StartTransientUnit", args)

    def kill(self, unit: str, whom: str, signal: int) -> None:
        from pystemd.dbuslib import apply_signature

        self._call(SYSTEMD, SYSTEMD_PATH, MANAGER, b"KillUnit", apply_signature(b"ssi", [unit.encode(), whom.encode(), signal]))

    def unit_property(self, unit: str, iface: bytes, name: bytes, rtype: bytes) -> Any:
        from pystemd.dbuslib import path_encode

        return self.dbus.get_property(SYSTEMD, path_encode(b"/org/freedesktop/systemd1/unit", unit.encode()), iface, name, rtype)

    def open_pty(self, machine: str) -> tuple[int, str]:
        """A new pty in MACHINE's own /dev/pts (machined's OpenMachinePTY): our copy of its master
        (taken while the reply that carries it lives) and the follower's path inside the machine."""
        import os

        from pystemd.dbuslib import apply_signature
        from pystemd.dbusexc import DBusBaseError

        try:
            reply = self.dbus.call_method(MACHINED, MACHINED_PATH, b"org.freedesktop.machine1.Manager", b"OpenMachinePTY",
                                          apply_signature(b"s", [machine.encode()]))
        except DBusBaseError as exc:
            raise FreightError(f"machined cannot open a pty in {machine}: {exc.args[0] if exc.args else exc}") from None
        fd, path = reply.body
        return os.dup(fd), path.decode()

    def leader(self, machine: str) -> int:
        """The running machine's PID 1 on the host, from machined; 0 when it is not registered or not running."""
        from pystemd.dbuslib import apply_signature
        from pystemd.dbusexc import DBusBaseError

        try:
            path = self._call(MACHINED, MACHINED_PATH, b"org.freedesktop.machine1.Manager", b"GetMachine",
                              apply_signature(b"s", [machine.encode()]))
            iface = b"org.freedesktop.machine1.Machine"
            if self.dbus.get_property(MACHINED, path, iface, b"State", b"s") != b"running":
                return 0
            return int(self.dbus.get_property(MACHINED, path, iface, b"Leader", b"u"))
        except (FreightError, DBusBaseError):
            return 0

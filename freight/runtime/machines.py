"""The machine a runtime command acts on: its record, its `run` settings and, when it runs, its leader.

Every runtime command starts here, so an unknown name and a stopped machine
are refused the same way everywhere, before anything is changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freight.common.errors import FreightError
from freight.host import instances
from freight.host.context import Host
from freight.host.registry import InstanceRecord


@dataclass(frozen=True)
class Target:
    host: Host
    record: InstanceRecord
    run: dict[str, Any]
    leader: int  # the machine's PID 1 on the host; 0 when it is not running

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def root(self) -> Path:
        """The machine's root as its own processes see it (its mounts, state binds and /tmp)."""
        return Path(f"/proc/{self.leader}/root")


def find(host: Host, name: str) -> Target:
    """NAME, running or not (an unknown name is one clear error)."""
    record = host.instance(name)
    leader = 0
    if not host.systemd.offline:
        from freight.runtime.bus import Bus

        with Bus() as bus:
            leader = bus.leader(name)
    return Target(host, record, instances.run_of(host, record.image, record.overlay), leader)


def running(host: Host, name: str, doing: str) -> Target:
    """NAME, which must be running to be DOING something in."""
    target = find(host, name)
    if not target.leader:
        if host.systemd.offline:
            raise FreightError(f"cannot {doing} {name}: {host.systemd.offline}")
        raise FreightError(f"{name} is not running: start it first with 'freight start {name}'")
    return target

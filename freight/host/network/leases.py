"""The host-local record of who has which address and which host port.

One JSON file (LIB_DIR/networks/leases.json) behind one lock of its own (a
flock on LIB_DIR itself, which outlives the record: the file and its folder go
with the last lease, so a host with no bridged machine keeps nothing), so
that parallel installs and `freight instance create`s each get an address
nobody else has, and a port nobody else publishes, without holding the
host's lock for it. An address is the instance's until the instance goes
(kept across restarts and upgrades: it is looked up by name first). The file
is written to a temporary name and renamed: a crash leaves the old record.

    {"addresses": {"default": {"web": "10.87.0.2"}}, "ports": {"web": ["8080:80/tcp"]}}
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from freight.common.errors import FreightError, UsageError
from freight.host.network.netconf import Network
from freight.model import ports as port_specs
from freight.model.ports import Port


@dataclass
class Leases:
    """The record as read: addresses by network and instance, published port specs by instance."""

    addresses: dict[str, dict[str, str]] = field(default_factory=dict)
    ports: dict[str, list[str]] = field(default_factory=dict)

    def address_of(self, network: str, instance: str) -> str | None:
        return self.addresses.get(network, {}).get(instance)

    def network_of(self, instance: str) -> str | None:
        return next((net for net, held in self.addresses.items() if instance in held), None)

    def allocate(self, network: Network, instance: str) -> ipaddress.IPv4Address:
        """INSTANCE's address on NETWORK: the one it has, else the lowest free one (the bridge has the first)."""
        held = self.addresses.setdefault(network.name, {})
        if instance in held:
            return ipaddress.IPv4Address(held[instance])
        taken = {ipaddress.IPv4Address(a) for a in held.values()} | {network.gateway}
        for address in network.subnet.hosts():
            if address not in taken:
                held[instance] = str(address)
                return address
        raise FreightError(
            f"the network {network.name} ({network.subnet}) has no free address for {instance}: all "
            f"{len(held)} are taken; remove a machine from it or give it a larger subnet in host.conf"
        )

    def claim_ports(self, instance: str, wanted: list[Port]) -> None:
        """INSTANCE publishes WANTED (and no longer what it had); refused, naming the machine, if another has one."""
        for other, specs in self.ports.items():
            if other == instance:
                continue
            for theirs in map(port_specs.parse, specs):
                for port in wanted:
                    if port.clashes(theirs):
                        raise UsageError(f"{instance}: the host port {port.proto} {port.host_port} ({port}) is published by the machine {other} already")
        if wanted:
            self.ports[instance] = [str(p) for p in wanted]
        else:
            self.ports.pop(instance, None)

    def release(self, instance: str) -> bool:
        """Forget INSTANCE's addresses and ports; whether it had any."""
        had = instance in self.ports
        self.ports.pop(instance, None)
        for held in self.addresses.values():
            had = held.pop(instance, None) is not None or had
        self.addresses = {net: held for net, held in self.addresses.items() if held}
        return had


def path_in(lib_dir: Path) -> Path:
    return lib_dir / "networks" / "leases.json"


def read(lib_dir: Path) -> Leases:
    """The record as it is now, without taking the lock (for reports and for a machine's start)."""
    path = path_in(lib_dir)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return Leases()
    except (OSError, ValueError) as exc:
        raise FreightError(f"{path}: unreadable address record ({exc}); move it away and retry") from None
    return Leases(addresses=data.get("addresses", {}), ports=data.get("ports", {}))


@contextmanager
def changing(lib_dir: Path) -> Iterator[Leases]:
    """The record, locked for this process; written back when the block ends without an error."""
    path = path_in(lib_dir)
    lib_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lib_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        leases = read(lib_dir)
        yield leases
        _save(path, leases)
    finally:
        os.close(fd)


def _save(path: Path, leases: Leases) -> None:
    if not leases.addresses and not leases.ports:
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()
        except OSError:
            pass  # not there, or not empty
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"addresses": leases.addresses, "ports": leases.ports}, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""An instance's address and published ports, taken when it is made (or checked in %pre) and given back when it goes."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from freight.common.errors import UsageError
from freight.host.config import HostConfig
from freight.host.network import leases, netconf
from freight.host.undo import Undo
from freight.model import ports as port_specs
from freight.model.runsettings import bridge_of

log = logging.getLogger("freight.host.network")


def claim(cfg: HostConfig, instance: str, run: dict[str, Any], undo: Undo) -> ipaddress.IPv4Address | None:
    """Give INSTANCE an address on the network RUN names and its ports; the UNDO gives back what was new.

    The same call on an instance that has them already keeps its address
    (stable across restarts and upgrades) and replaces its ports with RUN's.
    A machine not on a bridge gets no address; its ports are still claimed,
    since nspawn publishes them on the same host ports.
    """
    network = bridge_of(run)
    wanted = port_specs.parse_all(run.get("ports", []))
    if network is None and any(p.host_ip for p in wanted):
        raise UsageError(f"{instance}: a port with a host address ({wanted[0]}) needs network 'bridge'")
    net = netconf.find(cfg.path, network) if network else None
    with leases.changing(cfg.lib_dir) as record:
        before = ({n: held[instance] for n, held in record.addresses.items() if instance in held}, record.ports.get(instance))
        for name in before[0]:
            if net is None or name != net.name:
                record.addresses[name].pop(instance)  # moved to another network (an upgrade): the old address goes
        address = record.allocate(net, instance) if net else None
        record.claim_ports(instance, wanted)
    undo.add(f"give back what {instance} claimed", _restore, cfg, instance, *before)
    if address is not None:
        log.debug("%s: %s on the network %s", instance, address, net.name)
    return address


def _restore(cfg: HostConfig, instance: str, addresses: dict[str, str], ports: list[str] | None) -> None:
    with leases.changing(cfg.lib_dir) as record:
        record.release(instance)
        for name, address in addresses.items():
            record.addresses.setdefault(name, {})[instance] = address
        if ports:
            record.ports[instance] = ports


def release(cfg: HostConfig, instance: str) -> None:
    """INSTANCE is gone: its address and ports are free for others."""
    with leases.changing(cfg.lib_dir) as record:
        if record.release(instance):
            log.debug("%s: gave back its address and ports", instance)

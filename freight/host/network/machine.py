"""What a bridged machine's start and stop do to the host's network, and what its removal takes along.

`network-up` (ExecStartPre): the network's bridge, the machine's veth pair,
its name in the network's hosts file and name server, and freight's nftables
table rewritten; `network-attach` (ExecStartPost): its link at its leased
address inside the running machine; `network-down` (ExecStopPost) takes
the links and the name back, and the bridge and name server with the last
machine. Both only read the lease record for the address (given out when
the machine was made), so a restart or a reboot brings back the same one.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path
from typing import Any

from freight.common.errors import FreightError
from freight.host.config import HostConfig
from freight.host.network import claim, leases, links, names, netconf, rules
from freight.host.nspawn import Bridged
from freight.model.runsettings import bridge_of

log = logging.getLogger("freight.host.network")


def bridged(cfg: HostConfig, instance: str, run: dict[str, Any]) -> Bridged | None:
    """What the machine's settings say about its bridged network (None: not bridged)."""
    network = bridge_of(run)
    if network is None:
        return None
    net = netconf.find(cfg.path, network)
    return Bridged(network=net.name, interface=links.machine_side(instance), folder=names.folder(cfg.run_dir, net), inside=names.INSIDE)


def up(cfg: HostConfig, instance: str, run: dict[str, Any], root: Path) -> None:
    """Before nspawn starts INSTANCE (ROOT: its root): the bridge, the veth pair, its name, the rules."""
    found = _leased(cfg, instance, run)
    if found is None:
        return
    net, address = found
    names.link_in(root)
    links.ensure_bridge(net)
    links.plug(net, instance)
    names.publish(cfg.run_dir, net, instance, address)
    rules.apply(netconf.load(cfg.path), leases.read(cfg.lib_dir))


def attach(cfg: HostConfig, instance: str, run: dict[str, Any], leader: int) -> None:
    """Once INSTANCE runs (LEADER: its first process): its end of the pair configured inside it."""
    found = _leased(cfg, instance, run)
    if found is not None:
        net, address = found
        links.configure(net, instance, address, leader)


def _leased(cfg: HostConfig, instance: str, run: dict[str, Any]) -> tuple[netconf.Network, ipaddress.IPv4Address] | None:
    """INSTANCE's network and address (None: not bridged)."""
    network = bridge_of(run)
    if network is None:
        return None
    net = netconf.find(cfg.path, network)
    address = leases.read(cfg.lib_dir).address_of(net.name, instance)
    if address is None:
        raise FreightError(f"{instance} has no address on the network {net.name} (was it made before the network?): "
                           f"'freight instance remove' and create it again, or reinstall its package")
    return net, ipaddress.IPv4Address(address)


def down(cfg: HostConfig, instance: str) -> None:
    """After INSTANCE stopped: its links and name go; the bridge and name server too if it was the last."""
    record = leases.read(cfg.lib_dir)
    network = record.network_of(instance)
    links.unplug(instance)
    if network is None:
        return
    networks = netconf.load(cfg.path)
    net = networks.get(network)
    if net is None:
        return  # host.conf no longer names it: nothing of it is known to take down
    names.withdraw(cfg.run_dir, net, instance)
    if links.bridge_exists(net) and links.bridge_members(net) == 0:
        names.stop(cfg.run_dir, net)
        links.remove_bridge(net)
    rules.refresh(networks, record)


def forget(cfg: HostConfig, instance: str) -> None:
    """INSTANCE is gone: after its links, its address and ports are given back and their rules go."""
    record = leases.read(cfg.lib_dir)
    if record.network_of(instance) is None:
        claim.release(cfg, instance)  # ports of a machine on a veth link, at most: no rule of freight's
        return
    down(cfg, instance)
    claim.release(cfg, instance)
    rules.refresh(netconf.load(cfg.path), leases.read(cfg.lib_dir))

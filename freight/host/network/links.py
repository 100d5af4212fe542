"""The links of a bridged machine, made through netlink (pyroute2): the bridge and the veth pair.

Before nspawn starts, the pair is made in the host (`vf-…` joined to the
bridge, `vp-…` loose) and nspawn moves `vp-…` into the machine's own network
namespace (`Interface=`): nspawn makes that namespace itself, owned by the
machine's user namespace, which a namespace made beforehand would not be
(nspawn 252 cannot join one from a user-namespaced machine: "Failed to join
network namespace: Operation not permitted"). Once the machine runs, its end
is configured from the host through /proc/LEADER/ns/net: the machine's
address, the network's MTU and a default route through the bridge. It keeps
its name: nspawn moves it back out by that name when the machine stops, and
fails the unit if it cannot.
Deleting the host end deletes the pair.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from pathlib import Path

from pyroute2 import IPRoute, NetNS
from pyroute2.netlink.exceptions import NetlinkError

from freight.common.errors import FreightError
from freight.host.network.netconf import Network

log = logging.getLogger("freight.host.network.links")

def host_side(instance: str) -> str:
    """The host end of INSTANCE's veth pair: `vf-INSTANCE`, or a digest of the name where that is over 15 characters."""
    name = f"vf-{instance}"
    return name if len(name) <= 15 else "vf-" + hashlib.sha256(instance.encode()).hexdigest()[:12]


def machine_side(instance: str) -> str:
    """The machine's end of the pair, inside it too (nspawn's Interface= names it)."""
    return "vp-" + host_side(instance)[3:]


def ensure_bridge(net: Network) -> None:
    """NET's bridge, up, with the gateway address and MTU; made if missing, left as is if right."""
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=net.bridge)
        if not found:
            ipr.link("add", ifname=net.bridge, kind="bridge")
            found = ipr.link_lookup(ifname=net.bridge)
            log.info("network %s: made the bridge %s", net.name, net.bridge)
        index = found[0]
        ipr.link("set", index=index, mtu=net.mtu, state="up")
        have = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=index, family=2)}
        if str(net.gateway) not in have:
            ipr.addr("add", index=index, address=str(net.gateway), prefixlen=net.subnet.prefixlen)
    _sysctl(f"net/ipv4/conf/{net.bridge}/route_localnet", "1")  # published on 127.0.0.1: DNAT from loopback to the bridge
    _sysctl("net/ipv4/ip_forward", "1")


def remove_bridge(net: Network) -> None:
    with IPRoute() as ipr:
        for index in ipr.link_lookup(ifname=net.bridge):
            ipr.link("del", index=index)
            log.info("network %s: removed the bridge %s", net.name, net.bridge)


def mac_of(instance: str) -> str:
    """INSTANCE's own MAC address (locally administered, from its name): the same at every start, so the
    other machines' neighbour caches stay right across a restart instead of timing out on a new one."""
    digest = hashlib.sha256(f"freight:{instance}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (b"\x02" + digest[:5]))


def plug(net: Network, instance: str) -> None:
    """INSTANCE's veth pair, made afresh: the host end joined to NET's bridge and up, the machine's end for nspawn to move."""
    unplug(instance)
    outer, peer = host_side(instance), machine_side(instance)
    with IPRoute() as ipr:
        ipr.link("add", ifname=outer, kind="veth", peer=peer)
        try:
            (bridge,) = ipr.link_lookup(ifname=net.bridge)
            (out_index,) = ipr.link_lookup(ifname=outer)
            (peer_index,) = ipr.link_lookup(ifname=peer)
            ipr.link("set", index=peer_index, mtu=net.mtu, address=mac_of(instance))
            ipr.link("set", index=out_index, master=bridge, mtu=net.mtu, state="up")
        except BaseException:
            ipr.link("del", ifname=outer)
            raise


def configure(net: Network, instance: str, address: ipaddress.IPv4Address, leader: int) -> None:
    """Inside the running machine (its leader's namespace): its link at ADDRESS, up, with the default route."""
    with NetNS(f"/proc/{leader}/ns/net") as ns:
        (lo,) = ns.link_lookup(ifname="lo")
        ns.link("set", index=lo, state="up")
        found = ns.link_lookup(ifname=machine_side(instance))
        if not found:
            raise FreightError(f"{instance}: its link {machine_side(instance)} is not in the machine (did nspawn move it?)")
        (inner,) = found
        ns.link("set", index=inner, mtu=net.mtu)
        ns.addr("add", index=inner, address=str(address), prefixlen=net.subnet.prefixlen)
        ns.link("set", index=inner, state="up")
        ns.route("add", dst="0.0.0.0/0", gateway=str(net.gateway), oif=inner)
    log.info("%s: %s/%s on %s", instance, address, net.subnet.prefixlen, net.bridge)


def unplug(instance: str) -> None:
    """INSTANCE's veth pair gone (if it is there)."""
    with IPRoute() as ipr:
        for name in (host_side(instance), machine_side(instance)):
            for index in ipr.link_lookup(ifname=name):
                try:
                    ipr.link("del", index=index)
                except NetlinkError:
                    pass  # gone with its peer meanwhile


def bridge_exists(net: Network) -> bool:
    with IPRoute() as ipr:
        return bool(ipr.link_lookup(ifname=net.bridge))


def bridge_members(net: Network) -> int:
    """How many links are joined to NET's bridge (0 when it does not exist)."""
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=net.bridge)
        return len(ipr.get_links(master=found[0])) if found else 0


def _sysctl(key: str, value: str) -> None:
    Path("/proc/sys", key).write_text(value + "\n")

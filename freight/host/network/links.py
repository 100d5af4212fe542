"""The links of a bridged machine, made through netlink (pyroute2): the bridge, the namespace and the veth pair.

The machine's namespace is a named one (/run/netns/freight-INSTANCE), made
and configured before nspawn starts (it joins it with NetworkNamespacePath=):
its end of the veth pair is `host0` (nspawn's name for it) with the
machine's address, the network's MTU and a default route through the
bridge. Removing the namespace removes the pair with it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from pathlib import Path

from pyroute2 import IPRoute, NetNS, netns
from pyroute2.netlink.exceptions import NetlinkError

from freight.host.network.netconf import Network

log = logging.getLogger("freight.host.network.links")

NETNS_DIR = Path("/run/netns")
INNER = "host0"


def namespace(instance: str) -> str:
    """The name of INSTANCE's network namespace (and, in NETNS_DIR, its path)."""
    return f"freight-{instance}"


def host_side(instance: str) -> str:
    """The host end of INSTANCE's veth pair: `vf-INSTANCE`, or a digest of the name where that is over 15 characters."""
    name = f"vf-{instance}"
    return name if len(name) <= 15 else "vf-" + hashlib.sha256(instance.encode()).hexdigest()[:12]


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


def plug(net: Network, instance: str, address: ipaddress.IPv4Address) -> Path:
    """INSTANCE's namespace, with host0 at ADDRESS joined to NET's bridge; its path (made afresh each start)."""
    unplug(instance)
    name, outer = namespace(instance), host_side(instance)
    peer = "vp-" + outer[3:]
    netns.create(name)
    try:
        with IPRoute() as ipr:
            ipr.link("add", ifname=outer, kind="veth", peer=peer)
            (bridge,) = ipr.link_lookup(ifname=net.bridge)
            (out_index,) = ipr.link_lookup(ifname=outer)
            (peer_index,) = ipr.link_lookup(ifname=peer)
            ipr.link("set", index=out_index, master=bridge, mtu=net.mtu, state="up")
            ipr.link("set", index=peer_index, net_ns_fd=name)
        with NetNS(name) as ns:
            (lo,) = ns.link_lookup(ifname="lo")
            ns.link("set", index=lo, state="up")
            (inner,) = ns.link_lookup(ifname=peer)
            ns.link("set", index=inner, ifname=INNER, mtu=net.mtu)
            ns.addr("add", index=inner, address=str(address), prefixlen=net.subnet.prefixlen)
            ns.link("set", index=inner, state="up")
            ns.route("add", dst="0.0.0.0/0", gateway=str(net.gateway), oif=inner)
    except BaseException:
        unplug(instance)
        raise
    log.info("%s: %s/%s on %s", instance, address, net.subnet.prefixlen, net.bridge)
    return NETNS_DIR / name


def unplug(instance: str) -> None:
    """INSTANCE's namespace and veth pair gone (whichever exist)."""
    with IPRoute() as ipr:
        for index in ipr.link_lookup(ifname=host_side(instance)):
            try:
                ipr.link("del", index=index)
            except NetlinkError:
                pass  # gone with its peer's namespace meanwhile
    if namespace(instance) in netns.listnetns():
        netns.remove(namespace(instance))


def bridge_members(net: Network) -> int:
    """How many links are joined to NET's bridge (0 when it does not exist)."""
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=net.bridge)
        return len(ipr.get_links(master=found[0])) if found else 0


def _sysctl(key: str, value: str) -> None:
    Path("/proc/sys", key).write_text(value + "\n")

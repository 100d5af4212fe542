"""freight's own nftables table (`ip freight`): outbound NAT, published ports, networks kept apart.

The table is written whole from the record of addresses and ports (and
host.conf's networks) each time a machine starts, stops or goes, in one
`nft -f` transaction: it says exactly what is leased now, a half-applied
table never exists, and nothing else of the host's ruleset is touched. With
no machine left it is deleted.
"""

from __future__ import annotations

from freight.common.run import run
from freight.host.network.leases import Leases
from freight.host.network.netconf import Network
from freight.model import ports as port_specs

TABLE = "freight"


def render(networks: dict[str, Network], leases: Leases) -> str:
    """The `nft -f` script that replaces the table with what NETWORKS and LEASES say (deletes it when nothing is leased)."""
    script = f"table ip {TABLE}\ndelete table ip {TABLE}\n"
    used = [net for name, net in sorted(networks.items()) if leases.addresses.get(name)]
    if not used:
        return script
    dnat, postrouting, forward = [], [], []
    for net in used:
        for instance, address in sorted(leases.addresses[net.name].items()):
            for port in map(port_specs.parse, leases.ports.get(instance, [])):
                where = f"ip daddr {port.host_ip}" if port.host_ip else "fib daddr type local"
                dnat.append(f"{where} {port.proto} dport {port.host_port} dnat to {address}:{port.inner}")
        if net.nat:
            postrouting.append(f'ip saddr {net.subnet} ip daddr != {net.subnet} oifname != "{net.bridge}" masquerade')
        # a published 127.0.0.1 port: the answer must come back to the bridge, not to the machine's own loopback
        postrouting.append(f'ip saddr 127.0.0.0/8 oifname "{net.bridge}" masquerade')
    bridges = [net.bridge for _, net in sorted(networks.items())]
    forward += [f'iifname "{a}" oifname "{b}" drop' for a in bridges for b in bridges if a != b]
    chains = {
        "prerouting": ("type nat hook prerouting priority dstnat", dnat),
        "output": ("type nat hook output priority -100", dnat),
        "postrouting": ("type nat hook postrouting priority srcnat", postrouting),
        "forward": ("type filter hook forward priority filter", forward),
    }
    script += f"table ip {TABLE} {{\n"
    for chain, (hook, rules) in chains.items():
        script += f"\tchain {chain} {{\n\t\t{hook}; policy accept;\n" + "".join(f"\t\t{r}\n" for r in rules) + "\t}\n"
    return script + "}\n"


def apply(networks: dict[str, Network], leases: Leases) -> None:
    """Replace freight's table on this host (in one transaction)."""
    run(["nft", "-f", "-"], input=render(networks, leases))


def exists() -> bool:
    """Whether freight's table is in this host's ruleset (nft's exit code, no output read)."""
    return run(["nft", "list", "table", "ip", TABLE], check=False).returncode == 0


def refresh(networks: dict[str, Network], leases: Leases) -> None:
    """Rewrite the table if a machine's start made it: a stop or removal never creates one.

    So a machine that never ran (a host in a folder, a package installed with
    systemd offline) changes nothing of the host's ruleset when it goes.
    """
    if exists():
        apply(networks, leases)

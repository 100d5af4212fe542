"""`freight network list|inspect`: the networks host.conf declares, and who has which address and port.

They read host.conf and the lease record only (freight.host.network), so
they answer whether or not the machines run; `freight status NAME` and
`machinectl status NAME` show a running machine's address from inside it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from freight.commands import add


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add(sub, "network", common, description="Show the bridged networks of this host, their machines and addresses.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    v = verbs.add_parser("list", parents=[common], help="every network: bridge, subnet, NAT, machines",
                         description="Every network host.conf declares: its bridge, subnet, NAT and how many machines hold an address on it.")
    v.add_argument("--json", action="store_true", help="print JSON")
    v.set_defaults(func=_list)
    v = verbs.add_parser("inspect", parents=[common], help="one network: its machines, addresses and ports",
                         description="One network: its settings, each machine's address and the host ports it publishes.")
    v.add_argument("name", metavar="NETWORK", help="'default', or a name from host.conf's [network NAME]")
    v.add_argument("--json", action="store_true", help="print JSON")
    v.set_defaults(func=_inspect)


def _networks() -> list[dict[str, Any]]:
    from freight.host import config
    from freight.host.network import leases, netconf

    cfg = config.load()
    record = leases.read(cfg.lib_dir)
    return [
        {
            "name": net.name, "bridge": net.bridge, "subnet": str(net.subnet), "gateway": str(net.gateway),
            "nat": net.nat, "mtu": net.mtu,
            "machines": [{"name": name, "address": address, "ports": record.ports.get(name, [])}
                         for name, address in sorted(record.addresses.get(net.name, {}).items())],
        }
        for _, net in sorted(netconf.load(cfg.path).items())
    ]


def _list(args: argparse.Namespace) -> int:
    nets = _networks()
    if args.json:
        print(json.dumps(nets, indent=2))
        return 0
    print(f"{'NETWORK':<12} {'BRIDGE':<15} {'SUBNET':<18} {'NAT':<4} MACHINES")
    for n in nets:
        print(f"{n['name']:<12} {n['bridge']:<15} {n['subnet']:<18} {'yes' if n['nat'] else 'no':<4} {len(n['machines'])}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from freight.common.errors import UsageError

    found = [n for n in _networks() if n["name"] == args.name]
    if not found:
        raise UsageError(f"no network named {args.name}; 'freight network list' shows them")
    net = found[0]
    if args.json:
        print(json.dumps(net, indent=2))
        return 0
    print(f"{net['name']}: bridge {net['bridge']}, {net['subnet']} (the host is {net['gateway']}), "
          f"NAT {'on' if net['nat'] else 'off'}, MTU {net['mtu']}")
    for m in net["machines"]:
        print(f"  {m['name']:<20} {m['address']:<15} {' '.join(m['ports'])}")
    return 0

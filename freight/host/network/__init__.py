"""Bridged networks: a bridge per network, a veth pair per machine, addresses, names, NAT and published ports.

A machine with `run.network: bridge` (or `bridge:NAME`) gets a veth pair
freight makes just before it starts (`freight-host-hook network-up`, the
unit's ExecStartPre); nspawn moves the machine's end into the machine's own
namespace, and `network-attach` (ExecStartPost) configures it from the host:
nothing inside the image is needed (no DHCP client, no networkd, no `ip`).
The modules, one job each:

- `netconf`: the networks host.conf declares;
- `leases`: the host-local record of addresses and published ports (one file, one lock);
- `links`: the bridge and the veth pair, through netlink (pyroute2);
- `rules`: freight's own nftables table (NAT, published ports, isolation);
- `names`: one dnsmasq per network, its hosts folder and the machines' resolv.conf;
- `machine`: what a machine's start and stop do with all of these.
"""

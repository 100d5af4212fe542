"""The networks host.conf declares: the default one (`[network]`) and named ones (`[network NAME]`).

    [network]                 # run.network: bridge
    bridge = freight0
    subnet = 10.87.0.0/24
    nat = yes
    mtu = 1500

    [network backend]         # run.network: bridge:backend
    subnet = 10.87.1.0/24
    nat = no

Every key is optional for the default network; a named one needs its
subnet (two networks cannot share addresses). The host takes the subnet's
first address on the bridge; machines get the others.
"""

from __future__ import annotations

import configparser
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from freight.common.errors import FreightError, UsageError
from freight.model.runsettings import DEFAULT_BRIDGE

SECTION = "network"
DEFAULTS = {"bridge": "freight0", "subnet": "10.87.0.0/24", "nat": "yes", "mtu": "1500"}
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,9}$")
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_BOOLEANS = {"yes": True, "true": True, "on": True, "1": True, "no": False, "false": False, "off": False, "0": False}


@dataclass(frozen=True)
class Network:
    """One freight network: its bridge, subnet, whether it is NATed out, and its MTU."""

    name: str
    bridge: str
    subnet: ipaddress.IPv4Network
    nat: bool
    mtu: int

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The bridge's own address: the machines' default route and name server."""
        return self.subnet.network_address + 1


def load(path: Path) -> dict[str, Network]:
    """Every network in host.conf at PATH, by name ('default' always among them); UsageError naming the key."""
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"), default_section="\0none")
    try:
        text = path.read_text()
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise FreightError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        parser.read_string(text if re.search(r"^\s*\[", text, re.MULTILINE) else "", source=str(path))
    except configparser.Error as exc:
        raise UsageError(f"{path}: {exc.message}") from None
    found = {DEFAULT_BRIDGE: _network(path, DEFAULT_BRIDGE, dict(parser[SECTION]) if parser.has_section(SECTION) else {}, SECTION)}
    for section in parser.sections():
        kind, _, name = section.partition(" ")
        if kind != SECTION or not name:
            continue
        name = name.strip()
        if not _NAME_RE.match(name) or name == DEFAULT_BRIDGE:
            raise UsageError(f"{path}: [{section}]: a network name is a-z, 0-9 and '-', at most 10 characters, not 'default'")
        values = dict(parser[section])
        if "subnet" not in values:
            raise UsageError(f"{path}: [{section}]: subnet: a named network needs its own subnet, such as 10.87.1.0/24")
        found[name] = _network(path, name, {"bridge": f"fr-{name}", **values}, section)
    _check_apart(path, list(found.values()))
    return found


def _network(path: Path, name: str, values: dict[str, str], section: str) -> Network:
    unknown = sorted(set(values) - set(DEFAULTS))
    if unknown:
        raise UsageError(f"{path}: [{section}]: unknown key {unknown[0]!r}; expected one of: {', '.join(DEFAULTS)}")
    values = {**DEFAULTS, **values}
    where = f"{path}: [{section}]"
    try:
        subnet = ipaddress.IPv4Network(values["subnet"].strip())
    except ValueError:
        raise UsageError(f"{where}: subnet: expected an IPv4 network such as 10.87.0.0/24, got {values['subnet']!r}") from None
    if subnet.prefixlen > 29:
        raise UsageError(f"{where}: subnet: {subnet} is too small (at most /29: the bridge takes one address)")
    bridge = values["bridge"].strip()
    if not _IFNAME_RE.match(bridge):
        raise UsageError(f"{where}: bridge: expected an interface name of at most 15 letters, digits, '-', '_' or '.', got {bridge!r}")
    nat = _BOOLEANS.get(values["nat"].strip().lower())
    if nat is None:
        raise UsageError(f"{where}: nat: expected yes or no, got {values['nat']!r}")
    try:
        mtu = int(values["mtu"])
    except ValueError:
        mtu = 0
    if not 576 <= mtu <= 65535:
        raise UsageError(f"{where}: mtu: expected a whole number from 576 to 65535, got {values['mtu']!r}")
    return Network(name=name, bridge=bridge, subnet=subnet, nat=nat, mtu=mtu)


def _check_apart(path: Path, networks: list[Network]) -> None:
    """No two networks share a subnet's addresses or a bridge: each must be told apart on the host."""
    for i, net in enumerate(networks):
        for other in networks[:i]:
            if net.subnet.overlaps(other.subnet):
                raise UsageError(f"{path}: the subnets of the networks {other.name} ({other.subnet}) and {net.name} ({net.subnet}) overlap")
            if net.bridge == other.bridge:
                raise UsageError(f"{path}: the networks {other.name} and {net.name} both name the bridge {net.bridge}")


def find(path: Path, name: str) -> Network:
    """The network NAME; a UsageError listing the declared ones if host.conf has none of that name."""
    networks = load(path)
    if name not in networks:
        raise UsageError(f"no network named {name} in {path}; declared: {', '.join(sorted(networks))} (add a [network {name}] section)")
    return networks[name]

"""Published ports, as a manifest writes them: nspawn's form and docker's.

Both sides read them: the build refuses a port spec it cannot publish, the
host turns each into a rule (nspawn's `Port=` on a veth link, an nftables
DNAT on a bridge) and checks that no two machines claim the same host port.
So the parsing lives here, below both.

    80               tcp, host port 80 to container port 80
    tcp:8080:80      nspawn's form: PROTOCOL:HOSTPORT[:CONTAINERPORT]
    8080:80          docker's form: [HOSTIP:]HOSTPORT:CONTAINERPORT[/PROTOCOL]
    127.0.0.1:8443:443/tcp
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from freight.common.errors import UsageError

_NSPAWN = re.compile(r"^(?P<proto>tcp|udp):(?P<host>\d{1,5})(?::(?P<inner>\d{1,5}))?$")
_DOCKER = re.compile(r"^(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}):)?(?P<host>\d{1,5})(?::(?P<inner>\d{1,5}))?(?:/(?P<proto>tcp|udp))?$")

# What the manifest schema accepts; parse() then checks the numbers.
PATTERN = r"^(((tcp|udp):[0-9]{1,5}(:[0-9]{1,5})?)|(([0-9]{1,3}(\.[0-9]{1,3}){3}:)?[0-9]{1,5}(:[0-9]{1,5})?(/(tcp|udp))?))$"


@dataclass(frozen=True, order=True)
class Port:
    """One published port: PROTO traffic to HOST_IP (None: any of the host's) :HOST_PORT goes to the machine's INNER port."""

    proto: str
    host_port: int
    inner: int
    host_ip: str | None = None

    @property
    def key(self) -> str:
        """What two machines cannot both have: the protocol and host port (and address, if bound to one)."""
        return f"{self.proto}/{self.host_ip or '*'}:{self.host_port}"

    def nspawn(self) -> str:
        """nspawn's `Port=` value (it has no host address: see parse)."""
        return f"{self.proto}:{self.host_port}:{self.inner}"

    def __str__(self) -> str:
        return f"{self.host_ip + ':' if self.host_ip else ''}{self.host_port}:{self.inner}/{self.proto}"

    def clashes(self, other: Port) -> bool:
        """Both would take the same host port: the same protocol and port, on the same address or on any."""
        return (self.proto, self.host_port) == (other.proto, other.host_port) and (
            self.host_ip is None or other.host_ip is None or self.host_ip == other.host_ip
        )


def parse(spec: str | int) -> Port:
    """One port spec (see the module's forms); UsageError saying what was expected."""
    text = str(spec).strip()
    found = _NSPAWN.match(text) or _DOCKER.match(text)
    if not found:
        raise UsageError(f"port {text!r}: expected 'tcp:8080:80', '8080:80' or '127.0.0.1:8080:80/tcp'")
    host = int(found["host"])
    inner = int(found["inner"] or host)
    for number in (host, inner):
        if not 1 <= number <= 65535:
            raise UsageError(f"port {text!r}: {number} is not a port number (1 to 65535)")
    ip = found.groupdict().get("ip")
    if ip is not None:
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            raise UsageError(f"port {text!r}: {ip} is not an IPv4 address") from None
    return Port(proto=found["proto"] or "tcp", host_port=host, inner=inner, host_ip=ip)


def parse_all(specs: list[str | int]) -> list[Port]:
    """Every spec parsed; two that take the same host port are refused."""
    ports = [parse(s) for s in specs]
    for i, port in enumerate(ports):
        for other in ports[:i]:
            if port.clashes(other):
                raise UsageError(f"ports {other} and {port} both take {port.proto} port {port.host_port} of the host")
    return ports

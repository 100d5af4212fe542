"""Bridged networks end to end, in the booted test host (issue 17).

The host is booted with a private network namespace (freight.testhost), so
its bridges, namespaces and nftables table are its own: nothing here touches
this machine's network. Traffic goes only to the host's machines and to a
network namespace the test makes in the host to stand for another host
(`fr-out`, 192.0.2.2, with no route to the machines' subnet: a machine
reaching it proves the NAT). The containers are busybox (demo-base) with
httpd serving the demo page: no DHCP client, no networkd, no `ip` inside.

The default network is a /29 (the bridge and five machines) so that an
exhausted subnet is reached with a handful of machines; a second network,
`back`, is kept apart from it.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from e2ehost import CONF, REPO_ID, Published, add_signed_repo, demo_manifest, dnf, dnf_status, installed, lent, sh_status

if TYPE_CHECKING:
    from freight.testhost import TestHost

pytestmark = pytest.mark.slow

LEASES = "/var/lib/freight/networks/leases.json"
OUT = "fr-out"  # the namespace standing for another host
HOST_CONF = """\
    [host]
    storage = dir
    [network]
    subnet = {subnet}
    [network back]
    subnet = 10.87.9.0/24
    """


def manifest(folder: Path, demo: Path, name: str, run: str) -> Path:
    return demo_manifest(folder / name, demo, name, "busybox httpd on a bridged network", """\
        command: [/usr/bin/httpd, -f, -p, "80", -h, /srv/www]
        autostart: true
        """ + textwrap.dedent(run))


@pytest.fixture(scope="module")
def net_host(freight_host: TestHost, published: Published) -> Iterator[TestHost]:
    """The host with three bridged containers published (none installed), a /29 default network, and fr-out."""
    work = published.work / "net"
    # no `network:`: bridged is the default for what is built now
    published.publish(manifest(work, published.demo, "netweb", ""))
    published.publish(manifest(work, published.demo, "netpub", 'ports: ["8080:80", "127.0.0.1:8443:80/tcp"]\n'))
    published.publish(manifest(work, published.demo, "netback", "network: bridge:back\n"))
    host = freight_host
    with lent(host, REPO_ID, "netpool", "/var/tmp/netpool.img"):
        add_signed_repo(host, REPO_ID, published.repo)
        host.write_text(CONF, textwrap.dedent(HOST_CONF.format(subnet="10.87.0.0/29")))
        host.sh(f"""ip netns add {OUT}
            ip link add out0 type veth peer name out1 netns {OUT}
            ip addr add 192.0.2.1/24 dev out0; ip link set out0 up
            ip -n {OUT} addr add 192.0.2.2/24 dev out1; ip -n {OUT} link set out1 up; ip -n {OUT} link set lo up
            mkdir -p /srv/out; echo 'the other host' > /srv/out/index.html
            ip netns exec {OUT} busybox httpd -p 192.0.2.2:8000 -h /srv/out""")
        try:
            yield host
        finally:
            host.sh(f"for p in $(ip netns pids {OUT}); do kill $p; done; ip netns del {OUT}; ip link del out0 2>/dev/null || true")


def leader(host: TestHost, name: str) -> int:
    return int(host.run(["machinectl", "show", name, "--property=Leader", "--value"]).strip())


def running(host: TestHost, name: str, timeout: float = 30) -> int:
    """NAME's leader once machined says it runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if host.sh(f"machinectl show {name} --property=State --value 2>/dev/null || true").strip() == "running":
            return leader(host, name)
        time.sleep(0.3)
    raise AssertionError(f"{name} is not running: {host.sh(f'systemctl status systemd-nspawn@{name} --no-pager 2>&1 || true')}")


def get_in(host: TestHost, name: str, target: str, port: int = 80) -> tuple[int, str]:
    """An HTTP GET of TARGET:PORT from machine NAME, in all its namespaces (its own /etc/hosts and
    resolv.conf), with busybox nc: this busybox's wget crashes in any container, named or not."""
    request = r"printf 'GET / HTTP/1.0\r\n\r\n'"
    _, out = sh_status(host, f"{request} | nsenter -t {leader(host, name)} -a /usr/bin/busybox nc -w 3 {target} {port}")
    return (0 if " 200 OK" in out else 1), out


def eventually(host: TestHost, name: str, target: str, expect: str, port: int = 80, timeout: float = 20) -> str:
    deadline, out = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        code, out = get_in(host, name, target, port)
        if code == 0 and expect in out:
            return out
        time.sleep(0.3)
    raise AssertionError(f"{name} cannot fetch {target}:{port}: {out}")


def addresses(host: TestHost) -> dict[str, dict[str, str]]:
    text = host.sh(f"cat {LEASES} 2>/dev/null || echo '{{}}'")
    return json.loads(text).get("addresses", {})


def test_bridged_machines_names_nat_ports_isolation_and_cleanup(net_host: TestHost) -> None:
    host = net_host
    page = "<title>freight demo</title>"  # every demo-www version's page: an earlier module may have upgraded it

    # --- two machines on the default network: distinct addresses, reach each other by name ----------
    out = dnf(host, "install", "container-netweb")
    assert "error" not in out, out
    host.run(["freight", "instance", "create", "netweb", "web2"])
    host.run(["freight", "start", "web2"])
    first = running(host, "netweb")
    running(host, "web2")
    held = addresses(host)["default"]
    assert held["netweb"] != held["web2"], held
    assert "10.87.0." in host.run(["machinectl", "status", "web2"])  # machined sees the address in its namespace
    assert held["web2"] in json.loads(host.run(["freight", "status", "--json", "web2"]))["addresses"]
    shown = json.loads(host.run(["freight", "network", "inspect", "default", "--json"]))
    assert {m["name"]: m["address"] for m in shown["machines"]} == held, shown
    eventually(host, "netweb", "web2", page)
    eventually(host, "web2", "netweb.freight", page)

    # --- a third, started later, is reached by name from the first, which is not restarted ---------
    host.run(["freight", "instance", "create", "netweb", "web3"])
    host.run(["freight", "start", "web3"])
    running(host, "web3")
    eventually(host, "netweb", "web3", page)
    assert leader(host, "netweb") == first

    # --- out through NAT: fr-out has no route back to the machines' subnet -----------------------
    assert eventually(host, "web2", "192.0.2.2", "the other host", port=8000)
    table = host.run(["nft", "list", "table", "ip", "freight"])
    assert "ip saddr 10.87.0.0/29 ip daddr != 10.87.0.0/29" in table and "masquerade" in table, table

    # --- the same address after a restart --------------------------------------------------------
    host.run(["freight", "restart", "web2"])
    running(host, "web2")
    assert addresses(host)["default"]["web2"] == held["web2"]
    eventually(host, "netweb", "web2", page)

    # --- an exhausted subnet stops the install in %pre, and leaves nothing -----------------------
    host.run(["freight", "instance", "create", "netweb", "web4"])
    host.run(["freight", "instance", "create", "netweb", "web5"])
    code, out = dnf_status(host, "install", "container-netpub")
    assert code != 0 and "the network default (10.87.0.0/29) has no free address for netpub" in out, out
    assert installed(host, "container-netpub") is None and "netpub" not in addresses(host)["default"]
    host.run(["freight", "instance", "remove", "web4"])
    host.run(["freight", "instance", "remove", "web5"])

    # --- a published port: from the host (its own address, 127.0.0.1) and from another host -------
    dnf(host, "install", "container-netpub")
    running(host, "netpub")
    fetch = "for i in $(seq 50); do {} && exit 0; sleep 0.2; done; exit 1"
    assert page in host.sh(fetch.format("curl -fsS --max-time 2 http://192.0.2.1:8080/"))
    assert page in host.sh(fetch.format("curl -fsS --max-time 2 http://127.0.0.1:8443/"))
    assert page in host.sh(fetch.format(f"ip netns exec {OUT} curl -fsS --max-time 2 http://192.0.2.1:8080/"))
    code, out = sh_status(host, "freight instance create netpub pub2")
    assert code != 0 and "published by the machine netpub already" in out, out
    assert "pub2" not in addresses(host)["default"] and sh_status(host, "test -e /var/lib/machines/pub2")[0] != 0

    # --- another network is kept apart: its machine cannot reach the first network's, which can -----
    dnf(host, "install", "container-netback")
    running(host, "netback")
    assert addresses(host)["back"]["netback"].startswith("10.87.9.")
    assert eventually(host, "web2", held["netweb"], page)
    assert get_in(host, "netback", held["netweb"])[0] != 0
    assert get_in(host, "netback", "netweb")[0] != 0  # nor are its names known there

    # --- ten `freight instance create` at once get ten addresses ----------------------------------
    host.write_text(CONF, textwrap.dedent(HOST_CONF.format(subnet="10.87.0.0/24")))
    host.sh("for i in $(seq 10); do freight instance create netweb par$i & done; wait")
    par = {n: a for n, a in addresses(host)["default"].items() if n.startswith("par")}
    assert len(par) == 10 and len(set(par.values()) | set(held.values())) == 10 + len(set(held.values())), par
    host.sh("for i in $(seq 10); do freight instance remove par$i; done")

    # --- dnf remove leaves no link, rule, name server or lease -----------------------------------
    for name in ("web2", "web3"):
        host.run(["freight", "instance", "remove", name])
    dnf(host, "remove", "container-netweb", "container-netpub", "container-netback")
    assert host.sh("ip -o link show | grep -E 'freight0|fr-back|vf-' || true") == ""
    assert host.sh("ls /run/netns | grep freight- || true") == ""
    assert "freight" not in host.run(["nft", "list", "tables"])
    assert host.sh("systemctl list-units --all --plain --no-legend 'freight-dns-*' || true").strip() == ""
    assert addresses(host) == {}

"""Bridged networks, the pure parts: port specs, host.conf's networks, the lease record, the nftables table.

The lease record is also tested with ten real processes taking addresses at
once. What runs against the kernel (bridges, namespaces, nftables, dnsmasq)
is tested in the booted host (tests/test_network_e2e.py), never here: this
machine's own network and ruleset are not touched.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from freight.common.errors import FreightError, UsageError
from freight.host.network import claim, leases, netconf, rules
from freight.host.undo import Undo
from freight.model import ports
from freight.model.ports import Port
from freight.model.runsettings import bridge_of, merge_run, network_of


@pytest.mark.parametrize(
    "spec,expected",
    [
        (80, Port("tcp", 80, 80)),
        ("tcp:8080:80", Port("tcp", 8080, 80)),
        ("udp:53", Port("udp", 53, 53)),
        ("8080:80", Port("tcp", 8080, 80)),
        ("127.0.0.1:8443:443/tcp", Port("tcp", 8443, 443, "127.0.0.1")),
        ("5353:53/udp", Port("udp", 5353, 53)),
    ],
)
def test_port_forms(spec: str | int, expected: Port) -> None:
    assert ports.parse(spec) == expected


@pytest.mark.parametrize("spec,says", [("tcp:0:80", "0 is not a port"), ("sctp:80", "expected"), ("300.1.1.1:80:80", "not an IPv4"), ("80:80/icmp", "expected")])
def test_bad_port_specs(spec: str, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        ports.parse(spec)


def test_port_clashes() -> None:
    any_ip, local = ports.parse("8080:80"), ports.parse("127.0.0.1:8080:81")
    assert any_ip.clashes(local) and local.clashes(any_ip)
    assert not ports.parse("127.0.0.1:8080:80").clashes(ports.parse("10.0.0.1:8080:80"))
    assert not ports.parse("8080:80/udp").clashes(any_ip)
    with pytest.raises(UsageError, match="both take tcp port 8080"):
        ports.parse_all(["8080:80", "tcp:8080:81"])


def test_network_defaults_and_the_derivatives_ports() -> None:
    assert network_of({}) == "veth"  # a package built before bridges records none
    assert bridge_of({"network": "bridge"}) == "default" and bridge_of({"network": "bridge:back"}) == "back"
    assert bridge_of({"network": "veth"}) is None
    base = {"network": "bridge", "ports": ["8080:80"], "state": ["/a"]}
    assert merge_run(base, {"state": ["/b"]}) == {"network": "bridge", "state": ["/a", "/b"]}  # not the base's port
    assert merge_run(base, {"ports": ["8081:80"]})["ports"] == ["8081:80"]


def conf(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "host.conf"
    path.write_text("[host]\nstorage = dir\n" + textwrap.dedent(text))
    return path


def test_host_conf_networks(tmp_path: Path) -> None:
    path = conf(tmp_path, """\
        [network]
        subnet = 10.99.0.0/24   # the default network
        [network back]
        subnet = 10.99.1.0/28
        nat = no
        mtu = 1400
        """)
    nets = netconf.load(path)
    assert sorted(nets) == ["back", "default"]
    assert (nets["default"].bridge, str(nets["default"].gateway), nets["default"].nat) == ("freight0", "10.99.0.1", True)
    assert (nets["back"].bridge, nets["back"].nat, nets["back"].mtu) == ("fr-back", False, 1400)
    assert str(netconf.load(tmp_path / "missing.conf")["default"].subnet) == "10.87.0.0/24"
    with pytest.raises(UsageError, match="no network named front .*declared: back, default"):
        netconf.find(path, "front")


@pytest.mark.parametrize(
    "text,says",
    [
        ("[network]\nsubnet = 10.87.0.0/16\n[network b]\nsubnet = 10.87.3.0/24\n", "networks default \\(10.87.0.0/16\\) and b \\(10.87.3.0/24\\) overlap"),
        ("[network b]\nnat = no\n", "a named network needs its own subnet"),
        ("[network]\nsubnet = 10.87.0.7/24\n", "expected an IPv4 network"),
        ("[network]\nnat = maybe\n", "nat: expected yes or no"),
        ("[network]\nsubnets = 10.1.0.0/24\n", "unknown key 'subnets'"),
        ("[network Bad_Name]\nsubnet = 10.1.0.0/24\n", "a network name is"),
        ("[network]\nsubnet = 10.1.0.0/30\n", "too small"),
    ],
)
def test_bad_host_conf_networks(tmp_path: Path, text: str, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        netconf.load(conf(tmp_path, text))


def small(prefix: int = 29) -> netconf.Network:
    return netconf.Network("default", "freight0", ipaddress.IPv4Network(f"10.9.0.0/{prefix}"), True, 1500)


def test_addresses_are_stable_released_and_run_out() -> None:
    record = leases.Leases()
    net = small()  # 6 usable, the bridge takes .1
    got = [record.allocate(net, f"m{i}") for i in range(5)]
    assert [str(a) for a in got] == [f"10.9.0.{i}" for i in range(2, 7)]
    assert record.allocate(net, "m3") == got[3]  # its own again: a restart or upgrade
    with pytest.raises(FreightError, match="the network default \\(10.9.0.0/29\\) has no free address for m5"):
        record.allocate(net, "m5")
    assert record.release("m1")
    assert str(record.allocate(net, "m5")) == "10.9.0.3"


def test_port_taken_by_another_machine_is_named() -> None:
    record = leases.Leases()
    record.claim_ports("web", [ports.parse("8080:80")])
    with pytest.raises(UsageError, match="host port tcp 8080 .* is published by the machine web already"):
        record.claim_ports("web2", [ports.parse("127.0.0.1:8080:80")])
    record.claim_ports("web", [ports.parse("8081:80")])  # an upgrade replaces its own
    record.claim_ports("web2", [ports.parse("8080:80")])
    assert record.ports == {"web": ["8081:80/tcp"], "web2": ["8080:80/tcp"]}


class Cfg:
    """The two things claim() reads of a HostConfig."""

    def __init__(self, top: Path, conf_path: Path) -> None:
        self.lib_dir, self.path = top / "lib", conf_path


def test_claim_is_undone_on_failure(tmp_path: Path) -> None:
    cfg = Cfg(tmp_path, conf(tmp_path, "[network]\nsubnet = 10.9.0.0/29\n"))
    with pytest.raises(RuntimeError), Undo() as undo:
        assert str(claim.claim(cfg, "web", {"network": "bridge", "ports": ["8080:80"]}, undo)) == "10.9.0.2"
        raise RuntimeError("a later step failed")
    assert leases.read(cfg.lib_dir) == leases.Leases()
    with Undo() as undo:
        claim.claim(cfg, "web", {"network": "bridge"}, undo)
    claim.release(cfg, "web")
    assert leases.read(cfg.lib_dir) == leases.Leases()


def test_ten_processes_get_ten_addresses(tmp_path: Path) -> None:
    """Ten real processes claim at once (each sleeps while it holds the record, to widen any race)."""
    path = conf(tmp_path, "[network]\nsubnet = 10.9.0.0/24\n")
    code = textwrap.dedent(f"""\
        import sys, time
        from pathlib import Path
        from freight.host.network import leases, netconf
        net = netconf.load(Path({str(path)!r}))["default"]
        with leases.changing(Path({str(tmp_path / 'lib')!r})) as record:
            time.sleep(0.05)
            print(record.allocate(net, sys.argv[1]))
        """)
    procs = [subprocess.Popen([sys.executable, "-c", code, f"m{i}"], stdout=subprocess.PIPE, text=True) for i in range(10)]
    got = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert len(set(got)) == 10
    saved = json.loads(leases.path_in(tmp_path / "lib").read_text())["addresses"]["default"]
    assert sorted(saved.values()) == sorted(got)


def test_the_table_says_what_is_leased() -> None:
    nets = {"default": small(24), "back": netconf.Network("back", "fr-back", ipaddress.IPv4Network("10.9.1.0/24"), False, 1500)}
    record = leases.Leases(addresses={"default": {"web": "10.9.0.2"}, "back": {"db": "10.9.1.2"}},
                           ports={"web": ["8080:80/tcp", "127.0.0.1:8443:443/tcp"]})
    script = rules.render(nets, record)
    assert "fib daddr type local tcp dport 8080 dnat to 10.9.0.2:80" in script
    assert "ip daddr 127.0.0.1 tcp dport 8443 dnat to 10.9.0.2:443" in script
    assert 'ip saddr 10.9.0.0/24 ip daddr != 10.9.0.0/24 oifname != "freight0" masquerade' in script
    assert "ip saddr 10.9.1.0/24 ip daddr" not in script  # nat = no
    assert 'iifname "fr-back" oifname "freight0" drop' in script and 'iifname "freight0" oifname "fr-back" drop' in script
    assert rules.render(nets, leases.Leases()) == "table ip freight\ndelete table ip freight\n"  # nothing leased: no table
    if subprocess.run(["nft", "--version"], capture_output=True).returncode == 0:
        checked = subprocess.run(["unshare", "-n", "nft", "--check", "-f", "-"], input=script, capture_output=True, text=True)  # parsed, not applied
        assert checked.returncode == 0 or "Operation not permitted" in checked.stderr, checked.stderr


def test_a_machines_mac_is_its_own_and_stable() -> None:
    from freight.host.network import links

    assert links.mac_of("web") == links.mac_of("web") != links.mac_of("web2")
    assert links.mac_of("web").startswith("02:")  # locally administered, unicast
    assert links.host_side("a" * 40) != links.host_side("a" * 41) and len(links.host_side("a" * 40)) == 15

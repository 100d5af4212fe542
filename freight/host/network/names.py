"""Names on a network: one dnsmasq per network, answering for NAME and NAME.freight, and each machine's resolv.conf.

dnsmasq listens on the bridge's address only and reads its hosts folder
(`--hostsdir`), which it watches: a machine that starts later writes its
file there and is found by name at once by those already running, which are
not restarted. Other names go to the host's own resolvers. dnsmasq runs as a
transient systemd unit (`freight-dns-NETWORK.service`), so it is supervised
but not part of any machine's unit (stopping that machine must not take the
network's names along); the last machine to leave the network stops it.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path

from freight.common.run import run
from freight.host.network.netconf import Network

log = logging.getLogger("freight.host.network.names")

DOMAIN = "freight"


def unit(net: Network) -> str:
    return f"freight-dns-{net.name}.service"


def folder(run_dir: Path, net: Network) -> Path:
    """Where NET's hosts folder and the machines' resolv.conf live (under /run: a reboot starts afresh)."""
    return run_dir / "networks" / net.name


def resolv_conf(run_dir: Path, net: Network) -> Path:
    return folder(run_dir, net) / "resolv.conf"


def publish(run_dir: Path, net: Network, instance: str, address: ipaddress.IPv4Address) -> None:
    """INSTANCE answers to its name on NET from now on; NET's resolv.conf and name server are there."""
    top = folder(run_dir, net)
    (top / "hosts").mkdir(parents=True, exist_ok=True)
    _write(top, top / "resolv.conf", f"# freight network {net.name}\nnameserver {net.gateway}\nsearch {DOMAIN}\n")
    _write(top, top / "hosts" / instance, f"{address} {instance} {instance}.{DOMAIN}\n")
    if run(["systemctl", "is-active", "--quiet", unit(net)], check=False).returncode != 0:
        run(["systemctl", "reset-failed", unit(net)], check=False)
        run([
            "systemd-run", f"--unit={unit(net)}", f"--description=freight network {net.name}: names of its machines",
            "--property=After=network-pre.target", "--quiet",
            "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", f"--pid-file={top}/dnsmasq.pid",
            "--bind-interfaces", f"--interface={net.bridge}", "--except-interface=lo", f"--listen-address={net.gateway}",
            "--no-hosts", f"--hostsdir={top}/hosts", f"--local=/{DOMAIN}/", "--domain-needed", "--user=root",
        ])
        log.info("network %s: started its name server (%s)", net.name, unit(net))


def withdraw(run_dir: Path, net: Network, instance: str) -> None:
    """INSTANCE no longer answers to its name on NET."""
    (folder(run_dir, net) / "hosts" / instance).unlink(missing_ok=True)


def stop(run_dir: Path, net: Network) -> None:
    """NET has no machine running: its name server and folder go."""
    run(["systemctl", "stop", unit(net)], check=False)
    top = folder(run_dir, net)
    for path in sorted(top.rglob("*"), reverse=True) if top.is_dir() else []:
        path.rmdir() if path.is_dir() else path.unlink()
    if top.is_dir():
        top.rmdir()


def _write(top: Path, path: Path, text: str) -> None:
    """PATH written whole: dnsmasq reads a hosts file when it is renamed into place, never half of one."""
    tmp = top / f".{path.name}.tmp"
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)

"""Names on a network: a hosts file every machine sees, one dnsmasq per network, and the machines' resolv.conf.

Each network has a folder under the run folder, bound read-only into each of
its machines at /etc/freight-network, where the machine's /etc/hosts and
/etc/resolv.conf point. The folder's `hosts` names every running machine
(NAME and NAME.freight) and is replaced whole when one starts or stops; as
the folder, not the file, is bound, the machines already running see the new
one at once, without a restart. That is what a static busybox finds names
with: its libc cannot load a DNS resolver. Images with a full libc also ask
dnsmasq, which listens on the bridge's address only, reads the same names
from its `names/` folder (`--hostsdir`, which it watches), and passes other
names to the host's own resolvers. dnsmasq runs as a
transient systemd unit (`freight-dns-NETWORK.service`), so it is supervised
but not part of any machine's unit (stopping that machine must not take the
network's names along); the last machine to leave the network stops it.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from pathlib import Path

from freight.common.errors import FreightError
from freight.common.run import run
from freight.host.network.netconf import Network

log = logging.getLogger("freight.host.network.names")

DOMAIN = "freight"


def unit(net: Network) -> str:
    return f"freight-dns-{net.name}.service"


def folder(run_dir: Path, net: Network) -> Path:
    """Where NET's hosts folder and the machines' resolv.conf live (under /run: a reboot starts afresh)."""
    return run_dir / "networks" / net.name


INSIDE = "/etc/freight-network"  # where a machine sees its network's folder


def link_in(root: Path) -> None:
    """ROOT's /etc/hosts and /etc/resolv.conf point into the network's folder (the mount point made too).

    The machine's own files there are replaced in its root (a clone: the image
    keeps them), as podman and docker replace them with theirs.
    """
    etc = root / "etc"
    if etc.is_symlink():
        raise FreightError(f"{etc} is a symlink in the image: freight cannot give the machine its network's names")
    (root / INSIDE.lstrip("/")).mkdir(mode=0o755, parents=True, exist_ok=True)
    for leaf in ("hosts", "resolv.conf"):
        link, target = etc / leaf, f"{Path(INSIDE).name}/{leaf}"
        if link.is_symlink() and os.readlink(link) == target:
            continue
        if link.is_dir() and not link.is_symlink():
            raise FreightError(f"{link} is a folder in the image: freight cannot give the machine its network's {leaf}")
        link.unlink(missing_ok=True)
        link.symlink_to(target)


def publish(run_dir: Path, net: Network, instance: str, address: ipaddress.IPv4Address) -> None:
    """INSTANCE answers to its name on NET from now on; NET's resolv.conf and name server are there."""
    top = folder(run_dir, net)
    (top / "names").mkdir(parents=True, exist_ok=True)
    _write(top, top / "resolv.conf", f"# freight network {net.name}\nnameserver {net.gateway}\nsearch {DOMAIN}\n")
    _write(top, top / "names" / instance, f"{address} {instance} {instance}.{DOMAIN}\n")
    _gather(top)
    if run(["systemctl", "is-active", "--quiet", unit(net)], check=False).returncode != 0:
        run(["systemctl", "reset-failed", unit(net)], check=False)
        run([
            "systemd-run", f"--unit={unit(net)}", f"--description=freight network {net.name}: names of its machines",
            "--property=After=network-pre.target", "--quiet",
            "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", f"--pid-file={top}/dnsmasq.pid",
            "--bind-interfaces", f"--interface={net.bridge}", "--except-interface=lo", f"--listen-address={net.gateway}",
            "--no-hosts", f"--hostsdir={top}/names", f"--local=/{DOMAIN}/", "--domain-needed", "--user=root",
        ])
        log.info("network %s: started its name server (%s)", net.name, unit(net))


def withdraw(run_dir: Path, net: Network, instance: str) -> None:
    """INSTANCE no longer answers to its name on NET."""
    top = folder(run_dir, net)
    (top / "names" / instance).unlink(missing_ok=True)
    if top.is_dir():
        _gather(top)


def _gather(top: Path) -> None:
    """The network's hosts file: localhost, then every running machine's line."""
    lines = "".join(p.read_text() for p in sorted((top / "names").iterdir()) if not p.name.startswith("."))
    _write(top, top / "hosts", f"127.0.0.1 localhost\n::1 localhost\n{lines}")


def stop(run_dir: Path, net: Network) -> None:
    """NET has no machine running: its name server and folder go."""
    run(["systemctl", "stop", unit(net)], check=False)
    top = folder(run_dir, net)
    for path in sorted(top.rglob("*"), reverse=True) if top.is_dir() else []:
        path.rmdir() if path.is_dir() else path.unlink()
    if top.is_dir():
        top.rmdir()


def _write(top: Path, path: Path, text: str) -> None:
    """PATH written whole: dnsmasq and the machines read a file renamed into place, never half of one."""
    tmp = top / f".{path.name}.tmp"
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)

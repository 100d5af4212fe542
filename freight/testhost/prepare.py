"""What a boot copy of the test host's root gets before it boots.

These are the differences between a freshly debootstrapped Debian and a host
freight can be tested on, applied to each boot's own copy (never to the cached
tree), so changing them takes effect on the next boot without a new
debootstrap. Each one says why it is needed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from freight.common.run import run

log = logging.getLogger("freight.testhost.prepare")

HOSTNAME = "freight-testhost"

# Debian's rpm keeps its database in ~/.rpmdb unless told otherwise; the test
# host uses the path upstream rpm and Fedora use (rpm >= 4.16), the same one
# freight gives container images (freight.model.paths.RPM_DBPATH). A macros file in
# /etc/rpm is read by every rpm user on the host — rpm, rpmkeys, dnf and
# the rpm Python bindings alike — which an environment variable or
# ~/.rpmmacros (root's only) would not be.
RPM_MACROS = "%_dbpath /usr/lib/sysimage/rpm\n"

# The zfs-fuse init script makes its daemon immune to the OOM killer by
# writing -1000 to oom_score_adj. That needs CAP_SYS_RESOURCE, which this
# sandbox withholds even from root, so the script fails although the daemon
# runs. Started directly, the daemon did not fork (and the boot waited for it
# forever: the unit is ordered before sysinit.target), so the test host runs
# it in the foreground; `zfs mount -a` mounts existing pools as the script would.
ZFS_FUSE_DROPIN = """\
# freight test host: run the daemon without the init script (whose OOM tweak needs CAP_SYS_RESOURCE).
[Service]
Type=simple
ExecStart=
ExecStart=/sbin/zfs-fuse --no-daemon
ExecStartPost=-/sbin/zfs mount -a
ExecStop=
ExecStop=-/sbin/zfs unmount -a
"""

# dnf takes $releasever from the package that provides system-release, and
# no rpm package does on Debian; the test host is Debian 12.
DNF_RELEASEVER = "12\n"


def prepare(root: Path) -> None:
    """Fit the boot copy at ROOT for the tests (see the module's notes)."""
    _write(root / "etc/hostname", HOSTNAME + "\n")
    # An empty machine-id gives each boot a fresh one, as on a newly installed host.
    _write(root / "etc/machine-id", "")
    _write(root / "etc/rpm/macros.dbpath", RPM_MACROS)
    _write(root / "etc/systemd/system/zfs-fuse.service.d/freight-testhost.conf", ZFS_FUSE_DROPIN)
    _write(root / "etc/dnf/vars/releasever", DNF_RELEASEVER)
    (root / "etc/yum.repos.d").mkdir(parents=True, exist_ok=True)
    # There is no console to log in on (commands come in through nsenter), and
    # systemd-networkd gives nested machines' veth links their host side.
    run(["systemctl", f"--root={root}", "--quiet", "mask", "console-getty.service"])
    run(["systemctl", f"--root={root}", "--quiet", "enable", "systemd-networkd.service"])


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()  # never write through a link that points out of the root
    path.write_text(text)

"""An instance's systemd-nspawn settings and unit drop-in, from the manifest's `run`.

freight uses systemd's own `systemd-nspawn@.service` unchanged and says
everything about one machine in two generated files:

- `/etc/systemd/nspawn/INSTANCE.nspawn` — command or boot, environment, user,
  working directory, user namespace, read-only root, state binds, network and
  ports (the unit runs nspawn with `--settings=override`, so these win);
- `/etc/systemd/system/systemd-nspawn@INSTANCE.service.d/freight.conf` —
  what only a unit can say: ordering (`after`), the machine's own slice, the
  mounts to wait for, and the start-time hook;
- `/etc/systemd/system/freight-INSTANCE.slice.d/10-manifest.conf` — the
  manifest's limits (MemoryMax, CPUWeight, CPUQuota, TasksMax, IOWeight), on a
  slice of the machine's own that holds its payload and every process
  `freight exec` starts in it, so the limits bind them together. `freight set`
  adds drop-ins of its own beside it (see freight.host.slices).

Security defaults: a user namespace (`PrivateUsers=pick`) wherever the
instance's filesystem can shift UIDs, no host path bound except declared state,
a network of its own (a bridge, or for packages built before bridges a veth
link) unless the manifest asks for the host's, and nothing about
passwords (freight sets none).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freight.common.errors import FreightError
from freight.host.config import HostConfig
from freight.host.undo import Undo
from freight.model import limits as limit_words
from freight.model import ports as port_specs
from freight.model.runsettings import network_of

log = logging.getLogger("freight.host.nspawn")

DROPIN_NAME = "freight.conf"
SLICE_DROPIN_NAME = "10-manifest.conf"
# A machine with `run: {idle: true}`: the host's catatonit, bound read-only into the machine,
# runs as its PID 1 and only reaps (`-P`: no child of its own), so processes are exec'd into it later.
IDLE_INIT_HOST = Path("/usr/bin/catatonit")
IDLE_INIT = "/run/freight-init"


def unit_name(instance: str) -> str:
    return f"systemd-nspawn@{instance}.service"


def settings_path(cfg: HostConfig, instance: str) -> Path:
    return cfg.nspawn_dir / f"{instance}.nspawn"


def dropin_path(cfg: HostConfig, instance: str) -> Path:
    return cfg.units_dir / f"{unit_name(instance)}.d" / DROPIN_NAME


def escape(word: str) -> str:
    """WORD as one component of a unit name (`systemd-escape`): a '-' in a slice name means
    "child of", so `web-app` is written `web\\x2dapp` and its slice stays under freight.slice."""
    out = []
    for i, ch in enumerate(word):
        if ch.isascii() and (ch.isalnum() or ch in ":_" or (ch == "." and i > 0)):
            out.append(ch)
        else:
            out.append("".join(f"\\x{b:02x}" for b in ch.encode()))
    return "".join(out)


def slice_name(instance: str) -> str:
    """The machine's own slice, `freight-INSTANCE.slice` (under freight.slice)."""
    return f"freight-{escape(instance)}.slice"


def slice_dropin_dir(units_dir: Path, instance: str) -> Path:
    return units_dir / f"{slice_name(instance)}.d"


def slice_dropin_path(cfg: HostConfig, instance: str) -> Path:
    return slice_dropin_dir(cfg.units_dir, instance) / SLICE_DROPIN_NAME


def quote(word: str) -> str:
    """One word for nspawn's Parameters=/Environment=, which split on blanks and drop quotes.

    nspawn treats backslashes literally there, so a double quote cannot be
    escaped inside double quotes: it is closed, and the quote is written in
    single quotes instead (`say "hi"` -> `"say "'"'"hi"'"'""`).
    """
    return "'\"'".join(f'"{part}"' for part in word.split('"'))


def _bind_escape(path: str) -> str:
    """Bind= separates source, destination and options with ':'; a literal one is '\\:'."""
    return path.replace("\\", "\\\\").replace(":", "\\:")


def fs_type(path: Path) -> str:
    """The type of the filesystem PATH is on (`ext4`, `fuse.zfs` …), from /proc/self/mountinfo."""
    target = os.path.realpath(path)
    best, kind = "", "unknown"
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        mountpoint = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), left.split()[4])
        inside = target == mountpoint or target.startswith(mountpoint.rstrip("/") + "/")
        if inside and len(mountpoint) >= len(best):  # '>=': the last mount on a point is the visible one
            best, kind = mountpoint, right.split()[0]
    return kind


def private_users(run: dict[str, Any], root: Path) -> tuple[str, str | None]:
    """The PrivateUsers= value for an instance rooted at ROOT, and why if it is not what was asked.

    The default is `pick` (a UID range of its own). nspawn shifts the tree's
    UIDs into that range with an idmapped mount or by chowning it; a FUSE
    filesystem (zfs-fuse) supports neither, and nspawn fails with "Failed to
    adjust UID/GID shift", so there the instance runs without a user
    namespace, and the caller says so.
    """
    wanted = run.get("private_users", True)
    wanted = {"yes": True, "no": False}.get(wanted, wanted) if isinstance(wanted, str) else wanted  # nspawn's words
    if wanted is False:
        return "no", None
    if wanted == "identity":
        return "identity", None
    kind = fs_type(root)
    if kind == "fuse" or kind.startswith("fuse."):
        return "no", f"{root} is on {kind}, which cannot shift UIDs into a user namespace: running with PrivateUsers=no"
    return "pick", None


@dataclass(frozen=True)
class Bridged:
    """What a bridged machine's settings name: its end of the veth pair, the network's folder (hosts, resolv.conf) it binds."""

    network: str
    interface: str
    folder: Path
    inside: str


@dataclass
class Machine:
    """What the two files say about one instance."""

    instance: str
    image: str
    evr: str
    run: dict[str, Any]
    private_users: str
    state: dict[str, Path] = field(default_factory=dict)  # container path -> host directory
    root: Path | None = None
    zfs: bool = False
    bridge: Bridged | None = None

    def settings(self) -> str:
        run = self.run
        idle = bool(run.get("idle"))
        command = [IDLE_INIT, "-P"] if idle else (run.get("command") or [])
        boot = bool(run.get("boot", not command))
        shift = self.private_users == "pick"
        binds = [
            f"{_bind_escape(str(host))}:{_bind_escape(path)}" + (":idmap" if shift else "")
            for path, host in sorted(self.state.items())
        ]
        from freight.common.templates import render  # jinja2 only when writing: `freight exec` needs names only

        return render(
            "machine.nspawn.j2",
            q=quote,
            image=self.image,
            evr=self.evr,
            boot=boot,
            parameters=command,
            environment={k: str(v) for k, v in run.get("environment", {}).items()},
            user=None if idle else run.get("user"),  # the init reaps as root; execs default to the user
            init_bind=f"{IDLE_INIT_HOST}:{IDLE_INIT}" if idle else None,
            working_directory=run.get("working_directory"),
            private_users=self.private_users,
            read_only=bool(run.get("read_only", False)),
            binds=binds,
            network=network_of(run),
            ports=[p.nspawn() for p in port_specs.parse_all(run.get("ports", []))],
            bridge=self.bridge,
        )

    def dropin(self, hook: str) -> str:
        from freight.common.templates import render

        mounts = [str(self.root)] if self.root else []
        mounts += [str(host) for _, host in sorted(self.state.items())]
        return render(
            "machine-unit.conf.j2",
            instance=self.instance,
            image=self.image,
            evr=self.evr,
            zfs=self.zfs,
            mounts=mounts,
            after=self.run.get("after", []),
            hook=hook,
            slice=slice_name(self.instance),
            bridge=self.bridge,
        )

    def slice_dropin(self) -> str:
        """The manifest's limits on the machine's slice."""
        from freight.common.templates import render

        return render(
            "machine-slice.conf.j2",
            instance=self.instance,
            image=self.image,
            evr=self.evr,
            directives=limit_words.directives(limit_words.from_manifest(self.run.get("limits"))),
        )


def install(cfg: HostConfig, machine: Machine, undo: Undo) -> None:
    """Write the three files (each whole or not at all); on a later failure, put back what was there."""
    if machine.run.get("idle") and not IDLE_INIT_HOST.exists():
        raise FreightError(
            f"{machine.instance} runs idle ('run: {{idle: true}}'), which needs {IDLE_INIT_HOST} on this host: "
            "install the catatonit package"
        )
    _write(settings_path(cfg, machine.instance), machine.settings(), undo)
    _write(dropin_path(cfg, machine.instance), machine.dropin(cfg.hook), undo)
    _write(slice_dropin_path(cfg, machine.instance), machine.slice_dropin(), undo)


def remove(cfg: HostConfig, instance: str) -> None:
    settings_path(cfg, instance).unlink(missing_ok=True)
    dropin = dropin_path(cfg, instance)
    dropin.unlink(missing_ok=True)
    try:
        dropin.parent.rmdir()  # only if freight's was the last drop-in there
    except OSError:
        pass
    # the slice's drop-ins are all freight's: the manifest's and what `freight set` wrote
    for folder in (slice_dropin_dir(cfg.units_dir, instance), slice_dropin_dir(cfg.runtime_units_dir, instance)):
        for path in folder.glob("*.conf"):
            path.unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:
            pass


def _write(path: Path, text: str, undo: Undo) -> None:
    try:
        before: str | None = path.read_text()
    except FileNotFoundError:
        before = None
    made_dir = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.debug("wrote %s", path)
    if before is None:
        undo.add(f"remove {path}", _unlink, path, made_dir)
    else:
        undo.add(f"restore {path}", _restore, path, before)


def _unlink(path: Path, and_dir: bool) -> None:
    path.unlink(missing_ok=True)
    if and_dir:
        path.parent.rmdir()


def _restore(path: Path, text: str) -> None:
    path.write_text(text)

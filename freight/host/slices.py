"""A machine's own slice, `freight-NAME.slice`, and the limits on it: where each one comes from.

The slice holds the machine's payload and every process `freight exec`
starts in it, so limits set on it bind them together. They are written as
drop-ins of the slice and never through `systemctl set-property`, whose
runtime changes a `daemon-reload` undoes when a persistent control drop-in
exists (systemd issue 16592):

- `/etc/systemd/system/freight-NAME.slice.d/10-manifest.conf` — the
  manifest's limits, rewritten by the hook at every install and upgrade;
- `/etc/…/50-set.conf` — what `freight set` changed, kept across upgrades and
  restarts;
- `/run/…/60-set-runtime.conf` — what `freight set --runtime` changed, until
  the machine's next start (its ExecStartPre hook drops it).

Drop-ins apply in the order of their names, so a later source wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from freight.common.files import write_atomic
from freight.host import nspawn
from freight.host.config import HostConfig
from freight.model import limits

SET_NAME = "50-set.conf"
RUNTIME_NAME = "60-set-runtime.conf"


@dataclass(frozen=True)
class Source:
    label: str  # what `freight status` calls it
    path: Path


def sources(cfg: HostConfig, instance: str) -> list[Source]:
    """The slice's drop-ins freight writes, lowest priority first."""
    return [
        Source("manifest", nspawn.slice_dropin_path(cfg, instance)),
        Source("set", nspawn.slice_dropin_dir(cfg.units_dir, instance) / SET_NAME),
        Source("set --runtime", nspawn.slice_dropin_dir(cfg.runtime_units_dir, instance) / RUNTIME_NAME),
    ]


def _read(path: Path) -> dict[str, str]:
    try:
        return limits.read_dropin(path.read_text())
    except FileNotFoundError:
        return {}


def in_force(cfg: HostConfig, instance: str) -> dict[str, dict[str, str]]:
    """KEY -> {value, source} for every limit a drop-in of the slice says (the last one wins)."""
    out: dict[str, dict[str, str]] = {}
    for source in sources(cfg, instance):
        for key, value in _read(source.path).items():
            out[key] = {"value": value, "source": source.label}
    return {key: out[key] for key in limits.LIMITS if key in out}


def write_set(cfg: HostConfig, instance: str, values: dict[str, str], runtime: bool) -> tuple[Path, str | None]:
    """VALUES over what `freight set` (or `--runtime`) said before; the drop-in written and
    what it said before (None: there was none), to put back if systemd refuses the new one."""
    source = sources(cfg, instance)[2 if runtime else 1]
    try:
        before: str | None = source.path.read_text()
    except FileNotFoundError:
        before = None
    merged = _read(source.path) | values
    source.path.parent.mkdir(parents=True, exist_ok=True)
    until = "until the machine's next start" if runtime else "kept across restarts and upgrades"
    write_atomic(source.path, f"# Written by 'freight {source.label}' ({until}); do not edit.\n[Slice]\n"
                 + "".join(f"{line}\n" for line in limits.directives(merged)))
    return source.path, before


def put_back(path: Path, before: str | None) -> None:
    """Undo write_set."""
    if before is None:
        path.unlink(missing_ok=True)
    else:
        write_atomic(path, before)


def refused(instance: str, values: dict[str, str]) -> list[str]:
    """The KEY=VALUE of VALUES the running systemd did not take (read back over D-Bus from the slice)."""
    from pystemd.systemd1 import Unit

    with Unit(nspawn.slice_name(instance).encode()) as unit:
        return [
            f"{key}={value}"
            for key, value in values.items()
            if int(getattr(unit.Slice, limits.LIMITS[key].dbus)) != limits.LIMITS[key].as_dbus(value)
        ]


def drop_runtime(cfg: HostConfig, instance: str) -> bool:
    """Forget `freight set --runtime` at the machine's start; True if there was something to forget."""
    path = sources(cfg, instance)[2].path
    if not path.exists():
        return False
    path.unlink()
    try:
        path.parent.rmdir()
    except OSError:
        pass
    return True

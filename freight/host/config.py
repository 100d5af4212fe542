"""`/etc/freight/host.conf`: where this host keeps containers, and on what.

The file is small on purpose: which storage backend (`zfs`, `dir` or `auto`),
the parent dataset for ZFS, how many image snapshots to keep, and the
locations freight uses. The locations default to the real ones and exist as
keys so the test suite can point a whole host into a temporary folder; the
scriptlets run chrooted by rpm, so there is no "root prefix" to configure.

    [host]
    storage = auto
    parent = tank/freight
    keep_snapshots = 2
"""

from __future__ import annotations

import configparser
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from freight.common.errors import FreightError, UsageError
from freight.common.run import CommandError, run
from freight.model import paths
from freight.model.paths import MANIFEST_FILE

log = logging.getLogger("freight.host.config")

DEFAULT_PATH = Path("/etc/freight/host.conf")
SECTION = "host"
STORAGE_KINDS = ("zfs", "dir", "auto")

_LOCATIONS = {
    "images_dir": paths.IMAGES_DIR,  # where container packages put their images
    "machines_dir": "/var/lib/machines",
    "lib_dir": paths.LIB_DIR,
    "containers_dir": paths.META_DIR,
    "overlays_dir": paths.OVERLAYS_DIR,  # where derivative packages put their files
    "protected_dir": "/etc/dnf/protected.d",  # dnf refuses to remove the packages named here
    "nspawn_dir": "/etc/systemd/nspawn",
    "units_dir": "/etc/systemd/system",
    "runtime_units_dir": "/run/systemd/system",  # `freight set --runtime`: gone at the next boot
    "lock_file": "/run/lock/freight-host.lock",  # runtime only: an erase leaves no trace of it
    "run_dir": "/run/freight",  # runtime only: the networks' hosts folders and resolv.conf
}
_DEFAULTS = {
    "storage": "auto",
    "parent": "tank/freight",
    "keep_snapshots": "2",
    "hook": "/usr/bin/freight-host-hook",
    **_LOCATIONS,
}


@dataclass(frozen=True)
class HostConfig:
    """The host's settings; every path is absolute."""

    path: Path
    storage: str
    parent: str
    keep_snapshots: int
    hook: str
    images_dir: Path
    machines_dir: Path
    lib_dir: Path
    containers_dir: Path
    overlays_dir: Path
    protected_dir: Path
    nspawn_dir: Path
    units_dir: Path
    runtime_units_dir: Path
    lock_file: Path
    run_dir: Path

    @property
    def registry_dir(self) -> Path:
        return self.lib_dir / "registry"

    @property
    def snapshots_dir(self) -> Path:
        return self.lib_dir / "snapshots"

    @property
    def state_dir(self) -> Path:
        return self.lib_dir / "state"

    def meta_path(self, name: str) -> Path:
        """Where a container (or derivative) package put its metadata (see freight.build.write_metadata)."""
        return self.containers_dir / name

    def manifest_path(self, image: str) -> Path:
        return self.meta_path(image) / MANIFEST_FILE

    def overlay_path(self, derivative: str) -> Path:
        """Where a derivative package put its files (see freight.build.overlay)."""
        return self.overlays_dir / derivative

    def protected_path(self, instance: str) -> Path:
        """The dnf protected.d file that keeps an instance's base package installed."""
        return self.protected_dir / f"freight-{instance}.conf"


def config_path() -> Path:
    """`$FREIGHT_HOST_CONF` (for tests and odd hosts), else /etc/freight/host.conf."""
    return Path(os.environ.get("FREIGHT_HOST_CONF") or DEFAULT_PATH)


def load(path: Path | None = None) -> HostConfig:
    """Read host.conf; a missing file means all defaults (storage = auto)."""
    path = path or config_path()
    # `storage = zfs  # a note` is how people (and the README) write ini files: a `#` or `;`
    # after whitespace starts a comment, it is not part of the value.
    parser = configparser.ConfigParser(interpolation=None, empty_lines_in_values=False, inline_comment_prefixes=("#", ";"))
    try:
        text = path.read_text()
    except FileNotFoundError:
        log.debug("%s does not exist: using the defaults", path)
        text = ""
    except OSError as exc:
        raise FreightError(f"{path}: cannot read: {exc.strerror}") from None
    if not re.search(r"^\s*\[", text, re.MULTILINE):
        text = f"[{SECTION}]\n{text}"  # a file of plain `key = value` lines is fine too
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise UsageError(f"{path}: {exc.message}") from None
    if not parser.has_section(SECTION):
        raise UsageError(f"{path}: expected a [{SECTION}] section")
    values = dict(parser[SECTION])
    unknown = sorted(set(values) - set(_DEFAULTS))
    if unknown:
        raise UsageError(f"{path}: unknown key {unknown[0]!r}; expected one of: {', '.join(_DEFAULTS)}")
    values = {**_DEFAULTS, **values}

    storage = values["storage"].strip().lower()
    if storage not in STORAGE_KINDS:
        raise UsageError(f"{path}: storage: expected zfs, dir or auto, got {values['storage']!r}")
    try:
        keep = int(values["keep_snapshots"])
    except ValueError:
        keep = 0
    if keep < 1:
        raise UsageError(f"{path}: keep_snapshots: expected a whole number of at least 1, got {values['keep_snapshots']!r}")
    parent = values["parent"].strip().strip("/")
    if not parent or " " in parent or "@" in parent:
        raise UsageError(f"{path}: parent: expected a ZFS dataset name such as tank/freight, got {values['parent']!r}")
    locations = {}
    for key in _LOCATIONS:
        location = Path(values[key].strip())
        if not location.is_absolute():
            raise UsageError(f"{path}: {key}: expected an absolute path, got {values[key]!r}")
        locations[key] = location
    return HostConfig(path=path, storage=storage, parent=parent, keep_snapshots=keep, hook=values["hook"].strip(), **locations)


def choose_storage(cfg: HostConfig) -> str:
    """The backend for a new image: the configured one, or for `auto` zfs when it can work.

    `auto` picks zfs only when a `zfs` command exists and the parent dataset
    exists, so that a host without ZFS still works (on directories); the
    choice is logged because it decides where gigabytes go.
    """
    if cfg.storage != "auto":
        return cfg.storage
    if shutil.which("zfs") is None:
        log.info("storage: dir (auto: there is no zfs command)")
        return "dir"
    try:
        run(["zfs", "list", "-H", "-o", "name", cfg.parent])
    except CommandError as exc:
        reason = exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else f"zfs exited with {exc.returncode}"
        log.info("storage: dir (auto: ZFS parent dataset %s is not usable: %s)", cfg.parent, reason)
        return "dir"
    log.info("storage: zfs on %s (auto: the parent dataset exists)", cfg.parent)
    return "zfs"

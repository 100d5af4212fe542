"""One instance's life: made from an image snapshot, moved to a newer one, destroyed.

An instance is a machine: a root filesystem cloned (or copied) from a
snapshot of its image, the state paths its manifest declares (kept apart, so
they survive moves and erases), its .nspawn settings and unit drop-in, and a
record saying which snapshot it runs. Each function registers the inverse of
what it creates with the caller's Undo.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freight.common.errors import FreightError
from freight.common.run import run
from freight.host import nspawn
from freight.host.context import Host, state_paths
from freight.host.network import claim, machine as network
from freight.host.registry import InstanceRecord, StateRecord
from freight.host.storage import Storage
from freight.host.undo import Undo
from freight.model.owners import RecordedOwners
from freight.model.paths import RPM_DBPATH
from freight.model.runsettings import merge_run

log = logging.getLogger("freight.host.instances")


def create(
    host: Host, storage: Storage, image: str, evr: str, run_section: dict[str, Any], instance: str, undo: Undo, overlay: Overlay | None = None
) -> InstanceRecord:
    """Clone IMAGE@EVR to the instance (with OVERLAY laid over it), give it its state and settings, and record it."""
    if host.registry.get(InstanceRecord, instance) is not None or storage.instance_exists(instance):
        raise FreightError(f"an instance named {instance} exists already")
    record = InstanceRecord(name=instance, image=image, snapshot=evr, storage=storage.kind, parent=storage.parent)
    if overlay is not None:
        record.overlay, record.overlay_version = overlay.name, overlay.version
    root = make_root(host, storage, record, state_paths(run_section), undo)
    configure(host, storage, record, evr, run_section, seed_roots=[root], undo=undo)
    if not record.packaged:
        protect(host, record, undo)
    return record


def run_of(host: Host, image: str, overlay: str | None) -> dict[str, Any]:
    """The `run` section an instance runs with: its image's, with its derivative's merged over it."""
    base = host.manifest(image).get("run", {})
    return merge_run(base, host.manifest(overlay).get("run", {})) if overlay else base


def check_free(host: Host, storage: Storage, name: str) -> None:
    """Refuse a machine name that something freight did not make already uses."""
    settings = nspawn.settings_path(host.cfg, name)
    if storage.instance_exists(name) or settings.exists():
        found = storage.machine_dir(name) if storage.instance_exists(name) else settings
        raise FreightError(f"a machine named {name} exists already ({found}) and freight did not make it; move it away first")


@dataclass(frozen=True)
class Overlay:
    """A derivative's files as its installed package left them, and its version."""

    name: str
    version: str


def make_root(host: Host, storage: Storage, record: InstanceRecord, state: list[str], undo: Undo) -> Path:
    """The instance's root: a clone of its snapshot, its overlay laid over, mount points made.

    The overlay is copied with modes, times and capabilities kept; its files
    then get the owners its package recorded, by the instance's own users (a
    layer's overlay may bring users of its own), as the image's did.
    """
    root = storage.instance_create(record.image, record.snapshot, record.name)
    undo.add(f"destroy the instance {record.name}", storage.instance_destroy, record.name)
    if record.overlay is not None:
        _lay_over(host.cfg.overlay_path(record.overlay), root)
        RecordedOwners.load(host.cfg.meta_path(record.overlay)).apply(root)
    make_mountpoints(root, state)
    return root


def _bring_back(host: Host, storage: Storage, record: InstanceRecord) -> None:
    with Undo() as undo:
        make_root(host, storage, record, record.state, undo)


def _lay_over(overlay: Path, root: Path) -> None:
    if not overlay.is_dir():
        raise FreightError(f"the overlay {overlay} is missing: is its derivative package installed?")
    run(["cp", "-a", "--reflink=auto", "--", f"{overlay}/.", f"{root}/"])


def is_layer(overlay: Path) -> bool:
    """A layer's overlay carries the image's rpm database (with its packages added); a derivative of files does not."""
    return (overlay / RPM_DBPATH.lstrip("/")).is_dir()


def protect(host: Host, record: InstanceRecord, undo: Undo) -> None:
    """Name the packages an unpackaged instance runs on in dnf's protected.d, so `dnf remove` refuses them while it exists.

    Nothing requires them for an instance `freight instance create` made (of a
    derivative: the derivative too, whose overlay it is made with). Every dnf
    reads protected.d; freight-host's dnf plugin says the same with a better
    message. A derivative's package is not protected this way: see freight.host.guard.
    """
    path = host.cfg.protected_path(record.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    packages = [record.image] + ([record.overlay] if record.overlay else [])
    path.write_text(f"# freight: the instance {record.name} runs on these\n" + "".join(f"container-{p}\n" for p in packages))
    undo.add(f"remove {path}", path.unlink, True)


def configure(
    host: Host, storage: Storage, record: InstanceRecord, evr: str, run_section: dict[str, Any], seed_roots: Sequence[Path], undo: Undo
) -> None:
    """Give an instance the state paths and settings RUN_SECTION asks for, and save its record.

    Used at creation and when an upgrade brings a new `run` section: new state
    paths are created (seeded from SEED_ROOTS, later ones winning), existing
    ones are kept as they are.
    """
    paths = state_paths(run_section)
    binds = ensure_state(host, storage, record.name, paths, seed_roots, undo)
    root = storage.machine_dir(record.name)
    users, why = nspawn.private_users(run_section, root)
    if why:
        log.info("%s: %s", record.name, why)
    address = claim.claim(host.cfg, record.name, run_section, undo)
    bridge = network.bridged(host.cfg, record.name, run_section)
    if bridge is not None:
        log.info("%s: %s on the network %s", record.name, address, bridge.network)
    machine = nspawn.Machine(
        instance=record.name,
        image=record.image,
        evr=evr,
        run=run_section,
        private_users=users,
        state=binds,
        root=root,
        zfs=storage.kind == "zfs",
        bridge=bridge,
    )
    nspawn.install(host.cfg, machine, undo)
    before = host.registry.get(InstanceRecord, record.name)
    record.state = paths
    host.registry.put(record)
    if before is None:
        undo.add(f"forget the instance {record.name}", host.registry.drop, InstanceRecord, record.name)
    else:
        undo.add(f"restore the record of {record.name}", host.registry.put, before)


def ensure_state(host: Host, storage: Storage, instance: str, paths: list[str], seed_roots: Sequence[Path], undo: Undo) -> dict[str, Path]:
    """The host directory of each state path, creating (and seeding) the missing ones.

    A new state path starts with what the image has there, so a service finds
    its initial files; an existing one (kept from before an upgrade or a
    reinstall) is never touched.
    """
    binds: dict[str, Path] = {}
    before = host.registry.get(StateRecord, instance)
    if before is not None and before.storage == storage.kind:
        storage = host.storage_of(before)  # kept state stays where it was made, whatever host.conf says now
    created = []
    for path in paths:
        if path == "/":
            raise FreightError(f"{instance}: the state path '/' would hide the whole image; name a folder such as /var/lib/NAME")
        if storage.state_exists(instance, path):
            binds[path] = storage.state_dir(instance, path)
            log.info("%s: keeping the state of %s", instance, path)
            continue
        where = storage.state_create(instance, path)
        undo.add(f"remove the new state {instance}:{path}", storage.state_destroy, instance, path)
        for root in seed_roots:
            _seed(root, path, where, f"{instance}:{path}")
        binds[path] = where
        created.append(path)
    if created or (paths and before is None):
        known = sorted(set(before.paths if before else []) | set(paths))
        host.registry.put(StateRecord(instance=instance, storage=storage.kind, paths=known, parent=storage.parent))
        if before is None:
            undo.add(f"forget the state of {instance}", host.registry.drop, StateRecord, instance)
        else:
            undo.add(f"restore the state record of {instance}", host.registry.put, before)
    return binds


def upgrade_seeds(host: Host, storage: Storage, record: InstanceRecord) -> list[Path]:
    """Where a state path new in an upgrade gets its first files: the image as now installed, then a
    derivative's overlay; what the instance will have there at its next start."""
    return [storage.image_dir(record.image)] + ([host.cfg.overlay_path(record.overlay)] if record.overlay else [])


def _seed(root: Path, path: str, dest: Path, what: str) -> None:
    src = _folder(root, path, what)
    if src.is_dir():
        run(["cp", "-a", "--reflink=auto", "--", f"{src}/.", f"{dest}/"])


def inside(root: Path, path: str) -> Path:
    """ROOT/PATH, refusing a symlink on the way: the image's links point into the container, not the host."""
    where = root
    for part in Path(path).relative_to("/").parts:
        where = where / part
        if where.is_symlink():
            raise FreightError(f"{path} goes through the symlink {where} in the image; declare the real folder instead")
    return where


def _folder(root: Path, path: str, what: str) -> Path:
    """ROOT/PATH for a folder that may not exist yet, but must not be anything else."""
    where = inside(root, path)
    if where.exists() and not where.is_dir():
        raise FreightError(f"the state path {what} is not a directory in the image; state paths must be folders")
    return where


def make_mountpoints(root: Path, state: list[str]) -> None:
    """The folders nspawn mounts on (/run and the state paths) in a fresh instance root.

    nspawn creates missing mount points itself, except under a read-only root
    (`read_only: true`), where it fails; an instance root is writable from the
    host, so they are made here.
    """
    for path in ["/run", *state]:
        if path == "/run" and (root / "run").is_symlink():
            continue  # the image's own arrangement, which nspawn follows
        _folder(root, path, f"{root.name}:{path}").mkdir(mode=0o755, parents=True, exist_ok=True)


def move(host: Host, storage: Storage, record: InstanceRecord, evr: str, overlay_version: str | None = None) -> None:
    """Put a stopped instance on the image's snapshot EVR (and its overlay's current files); its state stays.

    Whatever was written in the instance outside its state paths is dropped:
    that is the contract of declaring state.
    """
    before = InstanceRecord(**vars(record) | {"state": list(record.state)})
    with Undo() as undo:
        storage.instance_destroy(record.name)
        undo.add(f"bring back {record.name} on {before.snapshot}", _bring_back, host, storage, before)
        record.snapshot = evr
        record.overlay_version = overlay_version or record.overlay_version
        make_root(host, storage, record, record.state, undo)
        host.registry.put(record)
    what = f" with the overlay {record.overlay} {record.overlay_version}" if record.overlay else ""
    log.info("%s: moved from %s %s to %s%s", record.name, record.image, before.snapshot, evr, what)


def destroy(host: Host, record: InstanceRecord, keep_state: bool = True) -> None:
    """Remove the instance, its settings and record; its state only when KEEP_STATE is false."""
    storage = host.storage_of(record)
    storage.instance_destroy(record.name)
    network.forget(host.cfg, record.name)
    nspawn.remove(host.cfg, record.name)
    host.registry.drop(InstanceRecord, record.name)
    host.cfg.protected_path(record.name).unlink(missing_ok=True)
    if not keep_state:
        purge_state(host, record.name)
    elif record.state:
        log.info("%s: kept its state (%s); 'freight purge %s' removes it", record.name, ", ".join(record.state), record.name)


def purge_state(host: Host, instance: str) -> bool:
    """Remove an instance's kept state for good; False if there was none."""
    state = host.registry.get(StateRecord, instance)
    if state is None:
        return False
    host.storage_of(state).state_destroy(instance)
    host.registry.drop(StateRecord, instance)
    log.info("%s: removed its state (%s)", instance, ", ".join(state.paths))
    return True

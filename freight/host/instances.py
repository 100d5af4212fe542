"""One instance's life: made from an image snapshot, moved to a newer one, destroyed.

An instance is a machine: a root filesystem cloned (or copied) from a
snapshot of its image, the state paths its manifest declares (kept apart, so
they survive moves and erases), its .nspawn settings and unit drop-in, and a
record saying which snapshot it runs. Each function registers the inverse of
what it creates with the caller's Undo.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from freight.errors import FreightError
from freight.host import nspawn
from freight.host.context import Host, state_paths
from freight.host.registry import InstanceRecord, StateRecord
from freight.host.storage import Storage
from freight.host.undo import Undo
from freight.run import run

log = logging.getLogger("freight.host.instances")


def create(host: Host, storage: Storage, image: str, evr: str, run_section: dict[str, Any], instance: str, undo: Undo) -> InstanceRecord:
    """Clone IMAGE@EVR to the instance, give it its state and settings, and record it."""
    if host.registry.get(InstanceRecord, instance) is not None or storage.instance_exists(instance):
        raise FreightError(f"an instance named {instance} exists already")
    root = storage.instance_create(image, evr, instance)
    undo.add(f"destroy the instance {instance}", storage.instance_destroy, instance)
    make_mountpoints(root, state_paths(run_section))
    record = InstanceRecord(name=instance, image=image, snapshot=evr, storage=storage.kind)
    configure(host, storage, record, evr, run_section, seed_root=root, undo=undo)
    return record


def configure(host: Host, storage: Storage, record: InstanceRecord, evr: str, run_section: dict[str, Any], seed_root: Path, undo: Undo) -> None:
    """Give an instance the state paths and settings RUN_SECTION asks for, and save its record.

    Used at creation and when an upgrade brings a new `run` section: new state
    paths are created (seeded from SEED_ROOT), existing ones are kept as they are.
    """
    paths = state_paths(run_section)
    binds = ensure_state(host, storage, record.name, paths, seed_root, undo)
    root = storage.machine_dir(record.name)
    users, why = nspawn.private_users(run_section, root)
    if why:
        log.info("%s: %s", record.name, why)
    machine = nspawn.Machine(
        instance=record.name,
        image=record.image,
        evr=evr,
        run=run_section,
        private_users=users,
        state=binds,
        root=root,
        zfs=storage.kind == "zfs",
    )
    nspawn.install(host.cfg, machine, undo)
    before = host.registry.get(InstanceRecord, record.name)
    record.state = paths
    host.registry.put(record)
    if before is None:
        undo.add(f"forget the instance {record.name}", host.registry.drop, InstanceRecord, record.name)
    else:
        undo.add(f"restore the record of {record.name}", host.registry.put, before)


def ensure_state(host: Host, storage: Storage, instance: str, paths: list[str], seed_root: Path, undo: Undo) -> dict[str, Path]:
    """The host directory of each state path, creating (and seeding) the missing ones.

    A new state path starts with what the image has there, so a service finds
    its initial files; an existing one (kept from before an upgrade or a
    reinstall) is never touched.
    """
    binds: dict[str, Path] = {}
    before = host.registry.get(StateRecord, instance)
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
        _seed(seed_root, path, where, f"{instance}:{path}")
        binds[path] = where
        created.append(path)
    if created or (paths and before is None):
        known = sorted(set(before.paths if before else []) | set(paths))
        host.registry.put(StateRecord(instance=instance, storage=storage.kind, paths=known))
        if before is None:
            undo.add(f"forget the state of {instance}", host.registry.drop, StateRecord, instance)
        else:
            undo.add(f"restore the state record of {instance}", host.registry.put, before)
    return binds


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


def move(host: Host, storage: Storage, record: InstanceRecord, evr: str) -> None:
    """Put a stopped instance on the image's snapshot EVR; its state stays where it is.

    Whatever was written in the instance outside its state paths is dropped:
    that is the contract of declaring state.
    """
    old = record.snapshot
    with Undo() as undo:
        storage.instance_destroy(record.name)
        undo.add(f"bring back {record.name} on {old}", storage.instance_create, record.image, old, record.name)
        root = storage.instance_create(record.image, evr, record.name)
        undo.add(f"remove {record.name} on {evr}", storage.instance_destroy, record.name)
        make_mountpoints(root, record.state)
        record.snapshot = evr
        host.registry.put(record)
    log.info("%s: moved from %s %s to %s", record.name, record.image, old, evr)


def destroy(host: Host, record: InstanceRecord, keep_state: bool = True) -> None:
    """Remove the instance, its settings and record; its state only when KEEP_STATE is false."""
    storage = host.storage(record.storage)
    storage.instance_destroy(record.name)
    nspawn.remove(host.cfg, record.name)
    host.registry.drop(InstanceRecord, record.name)
    if not keep_state:
        purge_state(host, record.name)
    elif record.state:
        log.info("%s: kept its state (%s); 'freight purge %s' removes it", record.name, ", ".join(record.state), record.name)


def purge_state(host: Host, instance: str) -> bool:
    """Remove an instance's kept state for good; False if there was none."""
    state = host.registry.get(StateRecord, instance)
    if state is None:
        return False
    host.storage(state.storage).state_destroy(instance)
    host.registry.drop(StateRecord, instance)
    log.info("%s: removed its state (%s)", instance, ", ".join(state.paths))
    return True

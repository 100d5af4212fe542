"""What an administrator does to instances besides dnf: make and remove unpackaged ones, roll back, unpin.

`freight instance create IMAGE NEWNAME` makes a machine of any installed image
(or derivative) that no package owns; `freight rollback` puts an instance back
on the image's previous snapshot in seconds, without touching the package.

A rolled-back instance is *pinned*: prepare-start, which otherwise moves an
instance onto its image's newest snapshot at every start, leaves it where it is.
The pin lasts until the next package change of its image or derivative (an
upgrade, a downgrade, a reinstall: the administrator acted through dnf), or
until `freight instance unpin NAME`.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass

from freight.common.errors import FreightError, UsageError
from freight.host import events, instances, rpmdb
from freight.host.context import Host
from freight.host.registry import ImageRecord, InstanceRecord
from freight.host.undo import Undo

log = logging.getLogger("freight.host.manage")

# A machine name systemd and ZFS both take (machinectl allows a hostname; ZFS no '+' or '~').
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def is_active(host: Host, instance: str) -> bool:
    state = host.systemd.unit(instance)
    return state is not None and state.active not in ("inactive", "failed")


def halt(host: Host, instance: str) -> None:
    """Stop (if running) and disable a machine about to be removed."""
    if is_active(host, instance):
        host.systemd.stop(instance)
        log.info("%s: stopped", instance)
    host.systemd.reset_failed(instance)
    host.systemd.disable(instance)


def create(host: Host, image: str, name: str) -> InstanceRecord:
    """A new, unpackaged instance NAME of IMAGE (a container image, or a derivative: its base with its overlay)."""
    if not _NAME.fullmatch(name):
        raise UsageError(f"{name!r} is not a machine name: use letters, digits, '_', '.' and '-', at most 64, starting with a letter or digit")
    with host.locked():
        if host.registry.get(InstanceRecord, name) is not None:
            raise FreightError(f"an instance named {name} exists already; 'freight list' shows them")
        overlay = None
        if host.registry.get(ImageRecord, image) is None:
            manifest = host.manifest(image)  # says clearly that nothing named IMAGE is installed
            if not manifest.get("base"):
                raise FreightError(f"container-{image} is installed but freight has no image of it (did its install fail?)")
            overlay = instances.Overlay(image, host.installed_evr(image))
            image = manifest["base"]
        record = host.image(image)
        if record.current is None:
            raise FreightError(f"the image {image} has no snapshot yet (did the install of container-{image} fail?)")
        storage = host.storage_of(record)
        instances.check_free(host, storage, name)
        run = instances.run_of(host, image, overlay.name if overlay else None)
        with Undo() as undo:
            made = instances.create(host, storage, image, record.current, run, name, undo, overlay=overlay)
            host.systemd.daemon_reload()
    return made


def remove(host: Host, name: str, purge: bool) -> None:
    """Remove an unpackaged instance; its state stays unless PURGE. A package's instance goes with its package."""
    with host.locked():
        record = host.instance(name)
        if record.packaged:
            package = f"container-{record.overlay or record.image}"
            raise UsageError(f"{name} belongs to the package {package}; remove it with 'dnf remove {package}'")
        halt(host, name)
        instances.destroy(host, record, keep_state=not purge)
        host.systemd.daemon_reload()


@dataclass(frozen=True)
class RolledBack:
    instance: str
    image: str
    before: str
    after: str
    package_version: str | None
    restarted: bool

    def explain(self) -> str:
        """What happened, and what did not: the package is where dnf left it."""
        package = f"container-{self.image}"
        started = "restarted on it" if self.restarted else "it runs on it from its next start"
        return (
            f"{self.instance}: rolled back from {self.image} {self.before} to {self.after} ({started}).\n"
            f"The package {package} stays at {self.package_version}: only this instance went back, and it stays on "
            f"{self.after} until the next package change or 'freight instance unpin {self.instance}'.\n"
            f"The durable way back is 'dnf downgrade {package}-{self.after}', which reuses the kept snapshot."
        )


def rollback(host: Host, name: str) -> RolledBack:
    """Restart NAME on the snapshot its image kept before the one it runs, and pin it there.

    Only the instance's root changes: its state paths are kept as they are
    (a rollback does not undo what the service wrote), and a derivative's
    overlay is the one its installed package has. A layer's instance is
    refused: its overlay is a diff against one exact base build.
    """
    with host.locked():
        record = host.instance(name)
        if record.overlay is not None and instances.is_layer(host.cfg.overlay_path(record.overlay)):
            raise FreightError(
                f"{name} is made with the layer {record.overlay}, a diff against one exact build of {record.image}: "
                f"it cannot run on another snapshot; go back with 'dnf downgrade container-{record.overlay} container-{record.image}'"
            )
        image = host.image(record.image)
        storage = host.storage_of(record)
        kept = image.snapshots[: image.snapshots.index(record.snapshot)] if record.snapshot in image.snapshots else []
        older = [evr for evr in kept if storage.snapshot_exists(record.image, evr)]
        if not older:
            raise FreightError(
                f"{name} runs {record.image} {record.snapshot}, and no older snapshot of {record.image} is kept "
                f"(keep_snapshots = {host.cfg.keep_snapshots} in {host.cfg.path}); 'dnf downgrade container-{record.image}' installs an older version"
            )
        before, running = record.snapshot, is_active(host, name)
        if running:
            host.systemd.stop(name)
        instances.move(host, storage, record, older[-1])
        record.pinned = True
        host.registry.put(record)
    if running:
        host.systemd.start(name)  # prepare-start leaves a pinned instance where it is
    events.record(name, f"rolled back from {before} to {older[-1]}")
    return RolledBack(name, record.image, before, older[-1], image.current, running)


def unpin(host: Host, name: str) -> InstanceRecord:
    """Let a rolled-back instance move to its image's newest snapshot again, at its next start."""
    with host.locked():
        record = host.instance(name)
        record.pinned = False
        host.registry.put(record)
    return record


def purge_half_made(host: Host, name: str) -> list[str]:
    """Remove the image NAME that no install finished (its %pre made it; a killed or failed
    transaction never got to %post) and that no package owns, with the machine a dying %post
    may have left of it and its state; what was removed, [] when NAME is no such image.

    rpm's lock is held throughout: an install still running is not half-made."""
    image = host.registry.get(ImageRecord, name)
    if image is None or image.current is not None:
        return []
    with rpmdb.held():
        if rpmdb.versions(f"container-{name}"):
            raise FreightError(
                f"container-{name} is installed but its install never finished; "
                f"'dnf reinstall container-{name}' finishes it, 'dnf remove container-{name}' removes it"
            )
        machines = remove_image(host, image, keep_state=False)
        log.info("%s: removed the half-made image and all it had", name)
        return [f"the half-made image {name}", *(f"the machine {m}" for m in machines)]


def remove_image(host: Host, image: ImageRecord, keep_state: bool) -> list[str]:
    """IMAGE with the machines its packages made of it, their settings and records, and what rpm
    unpacked beside it: all an erase removes (state only without KEEP_STATE); the machines' names."""
    machines = []
    for record in host.instances_of(image.name):
        halt(host, record.name)
        instances.destroy(host, record, keep_state=keep_state)
        machines.append(record.name)
    host.storage_of(image).image_destroy(image.name)
    host.registry.drop(ImageRecord, image.name)
    shutil.rmtree(host.cfg.containers_dir / image.name, ignore_errors=True)
    return machines

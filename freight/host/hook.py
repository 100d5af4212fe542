"""The installer hook: what a container RPM's scriptlets call, one phase per scriptlet.

    freight-host-hook pre-install    NAME VERSION-RELEASE COUNT   (%pre)
    freight-host-hook post-install   NAME VERSION-RELEASE COUNT   (%post)
    freight-host-hook pre-uninstall  NAME VERSION-RELEASE COUNT   (%preun)
    freight-host-hook post-uninstall NAME VERSION-RELEASE COUNT   (%postun)
    freight-host-hook prepare-start  INSTANCE                     (ExecStartPre of the machine)

COUNT is rpm's `$1`: how many versions of the package will be installed when
the transaction is over. So 1 in %pre/%post is a fresh install and 2 an
upgrade; 0 in %preun/%postun is an erase and 1 the old half of an upgrade.

An upgrade runs, in this order: the new %pre, the new files, the new %post,
the old %preun, the removal of the old version's files, the old %postun. The
image is only the new version after that last step, so that is where its
snapshot `@VERSION-RELEASE` is taken. A running instance is not touched: its
unit's ExecStartPre (`prepare-start`) moves it onto the newest snapshot the
next time it starts, keeping its state paths.

A failing phase rolls back what it had made, prints one `error:` line and
exits 1. rpm (4.18) stops an install only for a failed %pre and an erase only
for a failed %preun; a failed %post or %postun is a warning and the
transaction goes on. So %pre checks everything the later phases would trip
over (storage, parent dataset, folders, a machine of the same name) before
rpm writes a file.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from freight import log as flog
from freight.errors import FreightError, UsageError
from freight.host import instances, nspawn
from freight.host.config import choose_storage
from freight.host.context import Host
from freight.host.registry import ImageRecord, InstanceRecord
from freight.host.storage import Storage
from freight.host.undo import Undo
from freight.run import run
from freight.stage import RPM_DBPATH

log = logging.getLogger("freight.host.hook")


def pre_install(host: Host, name: str, evr: str, count: int) -> None:
    """Before rpm writes the files: check all that can be checked, then make the image's dataset.

    Only this phase can stop an install: rpm 4.18 merely warns when %post
    fails (the package stays installed and rpm exits 0), so whatever would
    make the later phases fail is looked for here.
    """
    image = host.registry.get(ImageRecord, name)
    storage = host.storage(image.storage if image else choose_storage(host.cfg))
    storage.check()
    _preflight(host, storage, name)
    if image is not None and storage.image_exists(name):
        if count < 2:
            log.info("%s: the image exists already (an earlier install did not finish?): reusing it", name)
        storage.image_set_writable(name, True)
        return
    with Undo() as undo:
        if storage.image_create(name):
            undo.add(f"destroy the image {name}", storage.image_destroy, name)
        storage.image_set_writable(name, True)
        host.registry.put(ImageRecord(name=name, storage=storage.kind))


def _preflight(host: Host, storage: Storage, name: str) -> None:
    """Refuse, before any file is written, what post-install would trip over."""
    cfg = host.cfg
    for folder in (cfg.images_dir, cfg.machines_dir, cfg.lib_dir, cfg.nspawn_dir, cfg.units_dir, cfg.lock_file.parent):
        _check_folder(folder)
    record = host.registry.get(InstanceRecord, name)
    if record is not None:
        if record.image != name:
            raise FreightError(f"the instance {name} exists already, made from the image {record.image}")
        return  # ours, from an earlier install: it is kept
    settings = nspawn.settings_path(cfg, name)
    if storage.instance_exists(name) or settings.exists():
        found = storage.machine_dir(name) if storage.instance_exists(name) else settings
        raise FreightError(f"a machine named {name} exists already ({found}) and freight did not make it; move it away first")


def _check_folder(folder: Path) -> None:
    """FOLDER is a folder, or can become one (its nearest existing ancestor is a folder)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise FreightError(f"{folder} cannot be a folder: {probe} is a file")


def post_install(host: Host, name: str, evr: str, count: int) -> None:
    """After the files: snapshot, default instance, settings, systemd (install); new settings (upgrade)."""
    image = host.image(name)
    storage = host.storage(image.storage)
    manifest = host.manifest(name)
    if manifest.get("base"):
        _derivative(host, storage, name, manifest["base"])
        return
    run = manifest.get("run", {})
    # An upgrade of a package whose first %post failed has nothing to upgrade: it installs.
    upgrade = count >= 2 and image.current is not None
    with Undo() as undo:
        undo.add("reload systemd", host.systemd.daemon_reload)
        if upgrade:
            _reconfigure(host, storage, name, evr, run, undo)
        else:
            _take_snapshot(host, storage, image, evr, undo)
            if host.registry.get(InstanceRecord, name) is None:
                instances.create(host, storage, name, evr, run, name, undo)
            else:
                log.info("%s: the instance exists already: keeping it", name)
        host.systemd.daemon_reload()
        if run.get("autostart"):
            host.systemd.enable(name)
            undo.add(f"disable {name}", host.systemd.disable, name)
            if not upgrade and not host.systemd.offline:
                host.systemd.start(name)
                undo.add(f"stop {name}", host.systemd.stop, name)
                log.info("%s: started", name)


def _derivative(host: Host, storage: Storage, name: str, base: str) -> None:
    """A derivative (an overlay on BASE): not an image. Take back what pre-install made for one.

    pre-install cannot tell (the manifest arrives with the files), so it made
    an image like for any container; a derivative's files went to its overlay
    folder instead, and its machine is made from BASE's snapshot with the
    overlay laid over it — which this freight-host does not do yet.
    """
    if storage.image_exists(name) and not any(storage.image_dir(name).iterdir()):
        storage.image_destroy(name)
    host.registry.drop(ImageRecord, name)
    log.warning("%s derives from %s: this freight-host makes no machines for derivatives yet; its files are installed, no machine was made", name, base)


def _reconfigure(host: Host, storage: Storage, name: str, evr: str, run: dict, undo: Undo) -> None:
    """An upgrade: the default instance gets the new version's settings and any new state path.

    It keeps running on its snapshot; the settings take effect at its next
    start, together with the new snapshot.
    """
    record = host.registry.get(InstanceRecord, name)
    if record is None:
        log.info("%s: there is no default instance to update", name)
        return
    instances.configure(host, storage, record, evr, run, seed_root=storage.image_dir(name), undo=undo)


def _take_snapshot(host: Host, storage: Storage, image: ImageRecord, evr: str, undo: Undo) -> None:
    """Snapshot the image as EVR (reusing a kept one, e.g. on a downgrade) and close it."""
    before = ImageRecord(**vars(image) | {"snapshots": list(image.snapshots)})
    if storage.snapshot_exists(image.name, evr):
        log.info("%s: reusing the kept snapshot of %s", image.name, evr)
    else:
        _give_owners(storage.image_dir(image.name))
        storage.snapshot_create(image.name, evr)
        undo.add(f"destroy the snapshot {image.name} {evr}", storage.snapshot_destroy, image.name, evr)
    image.current = evr
    if evr not in image.snapshots:
        image.snapshots.append(evr)
    host.registry.put(image)
    undo.add(f"restore the record of {image.name}", host.registry.put, before)
    storage.image_set_writable(image.name, False)
    undo.add(f"reopen the image {image.name}", storage.image_set_writable, image.name, True)


def _give_owners(root: Path) -> None:
    """Give the image's files the owners the container's own packages say.

    The host's rpm resolves owners by name with the host's /etc/passwd, so a
    file of a user only the container has (say `www`) was written as root.
    The image carries its own rpm database, which knows each file's owner;
    `rpm --root IMAGE --setugids -a` applies them, by the image's own users.
    """
    if not (root / RPM_DBPATH.lstrip("/")).is_dir():
        log.debug("%s has no rpm database of its own: owners stay as rpm wrote them", root)
        return
    run(["rpm", "--root", root, "--dbpath", RPM_DBPATH, "--setugids", "-a"])


def pre_uninstall(host: Host, name: str, evr: str, count: int) -> None:
    """Before an erase: stop and disable the image's machines (nothing on upgrade)."""
    if count >= 1:
        return
    image = host.registry.get(ImageRecord, name)
    if image is None:
        log.info("%s: freight has no record of this image: nothing to stop", name)
        return
    for record in host.instances_of(name):
        state = host.systemd.unit(record.name)
        if state is not None and state.active not in ("inactive", "failed"):
            host.systemd.stop(record.name)
            log.info("%s: stopped", record.name)
        host.systemd.reset_failed(record.name)
        host.systemd.disable(record.name)
    host.storage(image.storage).image_set_writable(name, True)  # rpm removes the files next


def post_uninstall(host: Host, name: str, evr: str, count: int) -> None:
    """After an erase: everything but kept state goes. After an upgrade: the new snapshot."""
    image = host.registry.get(ImageRecord, name)
    if image is None:
        log.info("%s: freight has no record of this image: nothing to remove", name)
        return
    storage = host.storage(image.storage)
    if count >= 1:
        new = host.installed_evr(name)
        with Undo() as undo:
            _take_snapshot(host, storage, image, new, undo)
        prune(host, storage, image)
        return
    for record in host.instances_of(name):
        instances.destroy(host, record, keep_state=True)
    storage.image_destroy(name)
    host.registry.drop(ImageRecord, name)
    host.systemd.daemon_reload()


def prepare_start(host: Host, instance: str) -> None:
    """Just before a machine starts: move it onto its image's current snapshot if it is behind."""
    record = host.instance(instance)
    if _target(host, record) == record.snapshot:
        return  # the common case, decided without the lock (the installing hook may hold it)
    with host.locked():
        record = host.instance(instance)
        target = _target(host, record)
        if target == record.snapshot:
            return
        image = host.image(record.image)
        storage = host.storage(record.storage)
        instances.move(host, storage, record, target)
        prune(host, storage, image)


def _target(host: Host, record: InstanceRecord) -> str:
    image = host.registry.get(ImageRecord, record.image)
    if image is None or image.current is None or image.current not in image.snapshots:
        return record.snapshot
    return image.current


def prune(host: Host, storage: Storage, image: ImageRecord) -> None:
    """Keep the newest `keep_snapshots` snapshots, and any an instance runs on."""
    in_use = {r.snapshot for r in host.instances_of(image.name)}
    keep = set(image.snapshots[-host.cfg.keep_snapshots :]) | in_use | {image.current}
    for evr in [s for s in image.snapshots if s not in keep]:
        if storage.snapshot_exists(image.name, evr):
            storage.snapshot_destroy(image.name, evr)
        image.snapshots.remove(evr)
        host.registry.put(image)
    waiting = sorted(in_use - set(image.snapshots[-host.cfg.keep_snapshots :]))
    if waiting:
        log.info("%s: kept the snapshots %s while instances run on them", image.name, ", ".join(waiting))


PHASES = {  # phase: (function, the scriptlet that calls it)
    "pre-install": (pre_install, "%pre"),
    "post-install": (post_install, "%post"),
    "pre-uninstall": (pre_uninstall, "%preun"),
    "post-uninstall": (post_uninstall, "%postun"),
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="freight-host-hook",
        description="The scriptlet hook of freight container packages (called by rpm, not by people).",
    )
    top.add_argument("-v", "--verbose", action="store_true", help="print every command")
    sub = top.add_subparsers(dest="phase", metavar="PHASE", required=True)
    for phase, (_, scriptlet) in PHASES.items():
        p = sub.add_parser(phase, help=f"what the {scriptlet.replace('%', '%%')} scriptlet does")
        p.add_argument("name", help="the container name (the package is container-NAME)")
        p.add_argument("evr", metavar="VERSION-RELEASE", help="the version of the package running the scriptlet")
        p.add_argument("count", type=int, help="rpm's $1: installed versions after the transaction")
    p = sub.add_parser("prepare-start", help="ExecStartPre of a machine: move it to the current snapshot")
    p.add_argument("instance")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    flog.setup(flog.VERBOSE if args.verbose else flog.NORMAL)
    try:
        host = Host.load()
        if args.phase == "prepare-start":
            prepare_start(host, args.instance)
            return 0
        if args.count < 0:
            raise UsageError(f"COUNT must be rpm's $1 (0 or more), got {args.count}")
        with host.locked():
            PHASES[args.phase][0](host, args.name, args.evr, args.count)
    except (FreightError, OSError) as exc:
        # One line rpm shows the administrator; OSError (a full disk, a file in the way) says enough itself.
        log.error("%s %s: %s", args.phase, getattr(args, "name", getattr(args, "instance", "")), exc)
        return exc.exit_code if isinstance(exc, FreightError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The installer hook: what a container RPM's scriptlets call, one phase per scriptlet.

    freight-host-hook pre-install    NAME VERSION-RELEASE COUNT [--file-capabilities]  (%pre)
    freight-host-hook post-install   NAME VERSION-RELEASE COUNT   (%post)
    freight-host-hook pre-uninstall  NAME VERSION-RELEASE COUNT   (%preun)
    freight-host-hook post-uninstall NAME VERSION-RELEASE COUNT   (%postun)
    freight-host-hook prepare-start  INSTANCE                     (ExecStartPre of the machine)
    freight-host-hook network-up     INSTANCE                     (ExecStartPre of a bridged machine)
    freight-host-hook network-attach INSTANCE                     (ExecStartPost of a bridged machine)
    freight-host-hook network-down   INSTANCE                     (ExecStopPost of a bridged machine)

COUNT is rpm's `$1`: how many versions of the package will be installed when
the transaction is over. So 1 in %pre/%post is a fresh install and 2 an
upgrade; 0 in %preun/%postun is an erase and 1 the old half of an upgrade.

An upgrade runs, in this order: the new %pre, the new files, the new %post,
the old %preun, the removal of the old version's files, the old %postun. The
image is only the new version after that last step, so that is where its
snapshot `@VERSION-RELEASE` is taken. A running instance is not touched: its
unit's ExecStartPre (`prepare-start`) moves it onto the newest snapshot the
next time it starts, keeping its state paths.

A derivative package (`base` in its manifest) makes no image: its %post makes
the instance NAME2 from the base's current snapshot with the derivative's
overlay laid over it and the two `run` sections merged; its erase removes only
that instance (and freight-host's dnf plugin, freight.host.guard, refuses to
let the base's removal take it along). prepare-start also
lays a derivative's new overlay over the newest snapshot after an upgrade of
either package, and leaves an instance pinned by `freight rollback` alone.

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
from dataclasses import replace
from pathlib import Path

from freight.common import log as flog
from freight.common.errors import FreightError, UsageError
from freight.host import events, images, instances, manage, pulledin, repair, slices
from freight.host.config import choose_storage
from freight.host.context import Host
from freight.host.network import claim, machine as network
from freight.host.registry import ImageRecord, InstanceRecord
from freight.host.storage import Storage
from freight.host.undo import Undo
from freight.model import capabilities, rpmbugs
from freight.model.runsettings import BUILT_NETWORK, merge_run
from freight.model.owners import RecordedOwners

log = logging.getLogger("freight.host.hook")


def pre_install(
    host: Host, name: str, evr: str, count: int, file_capabilities: bool = False, fifos: bool = False, size: int | None = None,
    run: dict | None = None, base: str | None = None,
) -> None:
    """Before rpm writes the files: check all that can be checked, then make the image's dataset.

    Only this phase can stop an install: rpm 4.18 merely warns when %post
    fails (the package stays installed and rpm exits 0), so whatever would
    make the later phases fail is looked for here; so is what would make rpm
    fail to unpack, which runs no scriptlet to take back what this one made:
    FILE_CAPABILITIES says the package's files carry some, which the image's
    filesystem must hold; FIFOS that its image holds named pipes, which some rpm
    versions never finish installing (freight.model.rpmbugs); SIZE the bytes of
    its image's files, which must fit where they go (rpm checks disk space before
    this runs, on the filesystem that holds the image's path before the image's
    dataset is there, so it cannot see the pool); RUN the network and ports its
    manifest asks for (with BASE's, for a derivative), whose address and host
    ports are taken here, so that an exhausted subnet or a port another machine
    publishes stops the install. Packages built before these options existed
    pass none and skip those checks.
    """
    if fifos and rpmbugs.hangs_on_fifos(version := rpmbugs.running_rpm()):
        raise FreightError(
            f"container-{name}'s image holds named pipes (FIFOs) and {rpmbugs.FIFO_HANG_WHY.format(version=version)}: "
            "upgrade rpm on this host, or rebuild the container with the FIFOs left out (the manifest's exclude_paths)"
        )
    image = host.registry.get(ImageRecord, name)
    if image is not None and image.txn is not None:
        # This is a new transaction: the one that marked the image died (freight.host.repair).
        host.storage_of(image).check()
        repair.repair(host, name)
        image = host.registry.get(ImageRecord, name)
    storage = host.storage_of(image) if image else host.storage(choose_storage(host.cfg))
    storage.check()
    if size is not None:
        _check_room(storage, name, size)
    _preflight(host, storage, name)
    with Undo() as undo:
        if run is not None:
            claim.claim(host.cfg, name, _network_run(host, run, base), undo)
        if image is not None and storage.image_exists(name):
            if count < 2:
                log.info("%s: the image exists already (an earlier install did not finish?): reusing it", name)
            undo.add(f"close the image {name} again", storage.image_set_writable, name, False)
        else:
            if storage.image_create(name):
                undo.add(f"destroy the image {name}", storage.image_destroy, name)
            host.registry.put(ImageRecord(name=name, storage=storage.kind, parent=storage.parent))
            if image is None:
                undo.add(f"forget the image {name}", host.registry.drop, ImageRecord, name)
            else:
                undo.add(f"restore the record of {name}", host.registry.put, image)
        storage.image_set_writable(name, True)
        _mark(host, name, f"install {evr}", undo)
        if file_capabilities and not capabilities.can_hold(storage.image_dir(name)):
            raise FreightError(
                f"container-{name} has files with capabilities, which the {storage.kind} storage here cannot hold "
                f"(no extended attributes in {storage.image_dir(name)}); install it where they can be held "
                "(OpenZFS, or the dir backend on ext4, xfs or btrfs)"
            )


def _network_run(host: Host, run: dict, base: str | None) -> dict:
    """The network and ports the machine will have: a derivative's own, else what its installed base says."""
    if base is None:
        return {"network": run.get("network", BUILT_NETWORK), "ports": run.get("ports", [])}
    base_run = host.manifest(base).get("run", {}) if host.cfg.manifest_path(base).exists() else {}
    return merge_run({"network": base_run["network"]} if "network" in base_run else {}, run)


def _mark(host: Host, name: str, txn: str, undo: Undo) -> None:
    """Note on the image's record that a transaction has opened it (see freight.host.repair)."""
    record = host.image(name)
    undo.add(f"restore the record of {name}", host.registry.put, replace(record, snapshots=list(record.snapshots)))
    record.txn = txn
    host.registry.put(record)


def _check_room(storage: Storage, name: str, size: int) -> None:
    where, available = storage.room(name)
    if size > available:
        raise FreightError(
            f"container-{name} needs {_megabytes(size)} for its image, but {where} has {_megabytes(available)} available: "
            "make room there, or set parent (or storage) in host.conf to where there is room"
        )


def _megabytes(n: int) -> str:
    return f"{n / 1e6:,.1f} MB ({n:,} bytes)"


def _preflight(host: Host, storage: Storage, name: str) -> None:
    """Refuse, before any file is written, what post-install would trip over."""
    cfg = host.cfg
    for folder in (cfg.images_dir, cfg.machines_dir, cfg.lib_dir, cfg.overlays_dir, cfg.protected_dir, cfg.nspawn_dir, cfg.units_dir, cfg.lock_file.parent):
        _check_folder(folder)
    record = host.registry.get(InstanceRecord, name)
    if record is not None:
        if name not in (record.image, record.overlay):
            raise FreightError(f"the instance {name} exists already, made from the image {record.image}")
        return  # ours, from an earlier install: it is kept
    instances.check_free(host, storage, name)


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
    manifest = host.manifest(name)
    if manifest.get("base"):
        _forget_image(host, image)
        _post_install_derivative(host, name, evr, manifest["base"])
        return
    storage = host.storage_of(image)
    run = manifest.get("run", {})
    # An upgrade of a package whose first %post failed has nothing to upgrade: it installs.
    upgrade = count >= 2 and image.current is not None
    with Undo() as undo:
        undo.add("reload systemd", host.systemd.daemon_reload)
        if upgrade:
            _reconfigure(host, storage, name, undo)
        else:
            images.take_snapshot(host, storage, image, evr, undo)
            if host.registry.get(InstanceRecord, name) is None:
                instances.create(host, storage, name, evr, run, name, undo)
            else:
                log.info("%s: the instance exists already: keeping it", name)
        _activate(host, name, run, fresh=not upgrade, undo=undo)
    events.record(name, f"{'upgraded to' if upgrade else 'installed'} container-{name} {evr}")


def _activate(host: Host, name: str, run: dict, fresh: bool, undo: Undo) -> None:
    """Reload systemd; with `autostart`, enable the machine, and start it when it is new; not a new
    machine dnf made only because another container needs this one's image (freight.host.pulledin)."""
    host.systemd.daemon_reload()
    if fresh and run.get("autostart") and pulledin.pulled_in(host.cfg, name):
        log.info("%s: installed as a dependency, so its machine is made but not enabled or started "
                 "('freight start %s' or 'freight enable %s' when it should run)", name, name, name)
        return
    if run.get("autostart"):
        host.systemd.enable(name)
        undo.add(f"disable {name}", host.systemd.disable, name)
        if fresh and not host.systemd.offline:
            host.systemd.start(name)
            undo.add(f"stop {name}", host.systemd.stop, name)
            log.info("%s: started", name)


def _forget_image(host: Host, image: ImageRecord) -> None:
    """A derivative is not an image: take back what pre-install made for one.

    pre-install cannot tell (the manifest arrives with the files), so it made
    an image like for any container; a derivative's files went to its overlay
    folder instead.
    """
    storage = host.storage_of(image)
    if storage.image_exists(image.name) and not any(storage.image_dir(image.name).iterdir()):
        storage.image_destroy(image.name)
    host.registry.drop(ImageRecord, image.name)


def _post_install_derivative(host: Host, name: str, evr: str, base: str) -> None:
    """The derivative's instance NAME: BASE's current snapshot with the overlay laid over, the runs merged.

    On an upgrade the instance keeps running as it is; its new settings are
    written, and prepare-start lays the new overlay over the newest snapshot
    at its next start.
    """
    image = host.image(base)
    if image.current is None:
        raise FreightError(f"{name} derives from {base}, whose image has no snapshot (did the install of container-{base} fail?)")
    storage = host.storage_of(image)
    run = instances.run_of(host, base, name)
    record = host.registry.get(InstanceRecord, name)
    with Undo() as undo:
        undo.add("reload systemd", host.systemd.daemon_reload)
        if record is None:
            instances.create(host, storage, base, image.current, run, name, undo, overlay=instances.Overlay(name, evr))
            log.info("%s: made from %s %s with the overlay %s %s", name, base, image.current, name, evr)
        else:
            images.unpin(host, [record], undo)
            instances.configure(host, storage, record, record.snapshot, run, instances.upgrade_seeds(host, storage, record), undo)
        _activate(host, name, run, fresh=record is None, undo=undo)


def _reconfigure(host: Host, storage: Storage, name: str, undo: Undo) -> None:
    """An upgrade: every instance of the image gets the new version's settings and any new state path.

    They keep running on their snapshots; the settings take effect at their
    next start, together with the new snapshot.
    """
    for record in host.instances_of(name):
        run = instances.run_of(host, name, record.overlay)
        instances.configure(host, storage, record, record.snapshot, run, instances.upgrade_seeds(host, storage, record), undo)


def pre_uninstall(host: Host, name: str, evr: str, count: int) -> None:
    """Before an erase: stop and disable the machines the package carries (nothing on upgrade)."""
    if count >= 1:
        return
    image = host.registry.get(ImageRecord, name)
    records = host.instances_of(name) if image else _of_derivative(host, name)
    if image is None and not records:
        log.info("%s: freight has no record of this image: nothing to stop", name)
        return
    if image is not None:
        _check_no_derivative_left(host, name, records)
    for record in records:
        manage.halt(host, record.name)
    if image is not None:
        with Undo() as undo:
            _mark(host, name, "erase", undo)
            host.storage_of(image).image_set_writable(name, True)  # rpm removes the files next


def _check_no_derivative_left(host: Host, name: str, records: list[InstanceRecord]) -> None:
    """Refuse to erase a base whose derivative stays installed (`rpm -e --nodeps`): its machine would lose its root.

    In any ordinary transaction the derivative goes first (it requires the
    base), so its package is gone by the time the base's %preun runs; a failed
    %preun makes rpm keep the base.
    """
    for record in records:
        if record.packaged and record.overlay and host.cfg.manifest_path(record.overlay).exists():
            raise FreightError(
                f"container-{record.overlay} is still installed, and its machine {record.name} is made from {name}: "
                f"remove container-{record.overlay} first"
            )


def _of_derivative(host: Host, name: str) -> list[InstanceRecord]:
    """The machines made with a derivative's overlay: its own, and those `freight instance create` made of it."""
    return [r for r in host.registry.all(InstanceRecord) if r.overlay == name]


def post_uninstall(host: Host, name: str, evr: str, count: int) -> None:
    """After an erase: everything but kept state goes. After an upgrade: the new snapshot."""
    image = host.registry.get(ImageRecord, name)
    if image is None:
        derived = _of_derivative(host, name) if count == 0 else []
        for record in derived:
            instances.destroy(host, record, keep_state=True)
        if derived:
            host.systemd.daemon_reload()
        else:
            log.info("%s: freight has no record of this image: nothing to remove", name)
        return
    storage = host.storage_of(image)
    if count >= 1:
        new = host.installed_evr(name)
        with Undo() as undo:
            images.take_snapshot(host, storage, image, new, undo)
        images.prune(host, storage, image)
        return
    manage.remove_image(host, image, keep_state=True)
    host.systemd.daemon_reload()


def prepare_start(host: Host, instance: str) -> None:
    """Just before a machine starts: move it onto its image's current snapshot and its overlay's installed version."""
    record = host.instance(instance)
    if slices.drop_runtime(host.cfg, instance):
        events.record(instance, "limits set with --runtime dropped at this start")
        host.systemd.daemon_reload()
    events.record(instance, "starting")
    image = host.registry.get(ImageRecord, record.image)
    if image is not None and image.txn is not None:
        repair.when_quiet(host, [record.image])  # not while rpm runs: that may be the marking transaction
    if _target(host, record) == (record.snapshot, record.overlay_version):
        return  # the common case, decided without the lock (the installing hook may hold it)
    with host.locked():
        record = host.instance(instance)
        target = _target(host, record)
        if target == (record.snapshot, record.overlay_version):
            return
        image = host.image(record.image)
        storage = host.storage_of(record)
        instances.move(host, storage, record, *target)
        images.prune(host, storage, image)


def network_up(host: Host, instance: str) -> None:
    """Just before a bridged machine starts (after prepare-start): its namespace, address, name and rules."""
    record = host.instance(instance)
    root = host.storage_of(record).machine_dir(instance)
    network.up(host.cfg, instance, instances.run_of(host, record.image, record.overlay), root)


def network_attach(host: Host, instance: str) -> None:
    """Just after a bridged machine started: host0's address and route, inside it."""
    record = host.instance(instance)
    machine = host.systemd.machine(instance)
    if machine is None:
        raise FreightError(f"{instance} is not running (machined does not know it): its network cannot be configured")
    network.attach(host.cfg, instance, instances.run_of(host, record.image, record.overlay), machine.leader)


def network_down(host: Host, instance: str) -> None:
    """After a bridged machine stopped: its links and name go (its address stays its own)."""
    network.down(host.cfg, instance)


def _target(host: Host, record: InstanceRecord) -> tuple[str, str | None]:
    """The snapshot and overlay version the instance should start on; a pinned one stays where it is."""
    if record.pinned:
        return record.snapshot, record.overlay_version
    image = host.registry.get(ImageRecord, record.image)
    snapshot = record.snapshot
    if image is not None and image.current is not None and image.current in image.snapshots:
        snapshot = image.current
    overlay_version = record.overlay_version
    if record.overlay is not None and host.cfg.manifest_path(record.overlay).exists():
        overlay_version = host.installed_evr(record.overlay)
    return snapshot, overlay_version


INSTANCE_PHASES = {  # phase: (function, what calls it)
    "prepare-start": (prepare_start, "ExecStartPre of a machine: move it to the current snapshot"),
    "network-up": (network_up, "ExecStartPre of a bridged machine: its bridge, links, name and rules"),
    "network-attach": (network_attach, "ExecStartPost of a bridged machine: its address and route, inside it"),
    "network-down": (network_down, "ExecStopPost of a bridged machine: its links and name go"),
}

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
        if phase == "pre-install":
            p.add_argument("--file-capabilities", action="store_true", help="the package's files carry capabilities: the image must hold them")
            p.add_argument("--fifos", action="store_true", help="the image holds named pipes: refused where rpm cannot install them")
            p.add_argument("--size", type=int, metavar="BYTES", help="the bytes of the image's files: refused where they cannot fit")
            p.add_argument("--network", metavar="NETWORK", help="the network the manifest names (bridged: an address is taken)")
            p.add_argument("--port", action="append", default=None, metavar="SPEC", help="a port the manifest publishes (repeated)")
            p.add_argument("--base", metavar="NAME", help="the container a derivative is made from")
    for phase, what in INSTANCE_PHASES.items():
        p = sub.add_parser(phase, help=what[1])
        p.add_argument("instance")
    return top


def _run_of_args(args: argparse.Namespace) -> dict | None:
    """What %pre said of the manifest's network and ports (None: a package built before it said any)."""
    if args.network is None and args.port is None and args.base is None:
        return None
    run: dict = {"network": args.network} if args.network else {}
    if args.port:
        run["ports"] = list(args.port)
    return run


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    flog.setup(flog.VERBOSE if args.verbose else flog.NORMAL)
    try:
        host = Host.load()
        if args.phase in INSTANCE_PHASES:
            INSTANCE_PHASES[args.phase][0](host, args.instance)
            return 0
        if args.count < 0:
            raise UsageError(f"COUNT must be rpm's $1 (0 or more), got {args.count}")
        with host.locked():
            extra = {"file_capabilities": args.file_capabilities, "fifos": args.fifos, "size": args.size,
                     "run": _run_of_args(args), "base": args.base} if args.phase == "pre-install" else {}
            PHASES[args.phase][0](host, args.name, args.evr, args.count, **extra)
    except (FreightError, OSError) as exc:
        # One line rpm shows the administrator; OSError (a full disk, a file in the way) says enough itself.
        log.error("%s %s: %s", args.phase, getattr(args, "name", getattr(args, "instance", "")), exc)
        return exc.exit_code if isinstance(exc, FreightError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

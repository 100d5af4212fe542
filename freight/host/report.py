"""What `freight list` and `freight status` say about images and instances, as plain data.

Kept apart from the command line so that the text and `--json` outputs are
two renderings of the same facts, and from systemd so a host without a
running systemd still gets every fact freight itself knows.
"""

from __future__ import annotations

from typing import Any

from freight.host import nspawn, repair, rpmdb, slices
from freight.host.context import Host
from freight.host.registry import ImageRecord, InstanceRecord, StateRecord


def image_info(host: Host, image: ImageRecord, installing: bool = False) -> dict[str, Any]:
    """One image; an image no install finished is half-made, unless INSTALLING (an rpm transaction
    runs); one a dead transaction left out of step says what repairs it."""
    unfinished = image.current is None
    finding = None if installing else repair.diagnose(image, rpmdb.versions(f"container-{image.name}"))
    return {
        "name": image.name,
        "package": f"container-{image.name}",
        "version": image.current,
        "half_made": unfinished and not installing,
        "installing": unfinished and installing,
        "interrupted": finding.explain() if finding else None,
        "storage": image.storage,
        "snapshots": list(image.snapshots),
        "instances": [r.name for r in host.instances_of(image.name)],
    }


def instance_info(host: Host, record: InstanceRecord, detail: bool = False) -> dict[str, Any]:
    """One instance: its version (and the one waiting for a restart), unit state, addresses."""
    image = host.registry.get(ImageRecord, record.image)
    newer = image.current if image and image.current and image.current != record.snapshot else None
    pending = None if record.pinned else newer  # a pinned instance does not move at its restart
    unit = host.systemd.unit(record.name)
    machine = host.systemd.machine(record.name) if unit is not None and unit.active == "active" else None
    if unit is not None:
        enabled = unit.enabled
    else:
        enabled = "enabled" if host.systemd.enabled_offline(record.name) else "disabled"
    info: dict[str, Any] = {
        "name": record.name,
        "image": record.image,
        "version": record.snapshot,
        "pending": pending,
        "pinned": record.pinned,
        "newer": newer,
        "overlay": record.overlay,
        "overlay_version": record.overlay_version,
        "packaged": record.packaged,
        "state": unit.active if unit else None,
        "sub_state": unit.sub if unit else None,
        "enabled": enabled,
        "storage": record.storage,
        "addresses": machine.addresses if machine else [],
    }
    if detail:
        storage = host.storage_of(record)
        info |= {
            "unit": nspawn.unit_name(record.name),
            "result": unit.result if unit else None,
            "main_pid": unit.main_pid if unit else None,
            "leader": machine.leader if machine else None,
            "location": storage.describe_instance(record.name),
            "root": str(storage.machine_dir(record.name)),
            "state_paths": {p: str(storage.state_dir(record.name, p)) for p in record.state},
            "settings": str(nspawn.settings_path(host.cfg, record.name)),
            "dropin": str(nspawn.dropin_path(host.cfg, record.name)),
            "slice": nspawn.slice_name(record.name),
            "limits": slices.in_force(host.cfg, record.name),
            "systemd": host.systemd.offline or "running",
        }
    return info


def host_info(host: Host) -> dict[str, Any]:
    instances = host.registry.all(InstanceRecord)
    live = {r.name for r in instances}
    images = host.registry.all(ImageRecord)
    installing = any(i.current is None or i.txn for i in images) and rpmdb.transaction_running()
    return {
        "images": [image_info(host, i, installing) for i in images],
        "instances": [instance_info(host, r) for r in instances],
        "kept_state": [
            {"instance": s.instance, "storage": s.storage, "paths": s.paths}
            for s in host.registry.all(StateRecord)
            if s.instance not in live
        ],
        "systemd": host.systemd.offline or "running",
    }

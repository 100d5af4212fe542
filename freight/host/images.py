"""An image's snapshots, the truth of what rpm last finished: taking one where a transaction ends, pruning.

Shared by the hook's phases and by freight.host.repair, which finishes an
upgrade whose last phase never ran.
"""

from __future__ import annotations

import logging

from freight.host.context import Host
from freight.host.registry import ImageRecord, InstanceRecord
from freight.host.storage import Storage
from freight.host.undo import Undo
from freight.model.owners import RecordedOwners

log = logging.getLogger("freight.host.images")


def unpin(host: Host, records: list[InstanceRecord], undo: Undo) -> None:
    """A package change ends a rollback's pin (see freight.host.manage)."""
    for record in records:
        if record.pinned:
            undo.add(f"pin {record.name} again", host.registry.put, InstanceRecord(**vars(record)))
            record.pinned = False
            host.registry.put(record)
            log.info("%s: no longer pinned by its rollback: it moves at its next start", record.name)


def take_snapshot(host: Host, storage: Storage, image: ImageRecord, evr: str, undo: Undo) -> None:
    """Snapshot the image as EVR (reusing a kept one, e.g. on a downgrade) and close it: the
    transaction that opened it is over for the image (its mark is cleared)."""
    before = ImageRecord(**vars(image) | {"snapshots": list(image.snapshots)})
    if storage.snapshot_exists(image.name, evr):
        log.info("%s: reusing the kept snapshot of %s", image.name, evr)
    else:
        RecordedOwners.load(host.cfg.meta_path(image.name)).apply(storage.image_dir(image.name))
        storage.snapshot_create(image.name, evr)
        undo.add(f"destroy the snapshot {image.name} {evr}", storage.snapshot_destroy, image.name, evr)
    if image.current != evr:
        unpin(host, host.instances_of(image.name), undo)
    image.current = evr
    image.txn = None
    if evr not in image.snapshots:
        image.snapshots.append(evr)
    host.registry.put(image)
    undo.add(f"restore the record of {image.name}", host.registry.put, before)
    storage.image_set_writable(image.name, False)
    undo.add(f"reopen the image {image.name}", storage.image_set_writable, image.name, True)


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

"""Putting an image back in step with rpm's database after a transaction on it died.

The hook marks the image's record when a transaction opens the image (%pre,
or %preun of an erase) and clears the mark where the transaction ends for it
(the snapshot taken by %post, or by the old version's %postun in an upgrade;
an erase's %postun takes the record away). A mark found later means rpm or dnf
was killed, failed to unpack, or lost power in between. zfs-fuse has neither
the `written` property nor `zfs diff`, so the mark, not the data, says so.

What rpm's database lists of container-NAME then tells what happened:

    listed           image has          died                               repair
    nothing          no snapshot        install, before its header         remove what %pre (and %post) made
    nothing          a snapshot         erase, whose %postun failed or     finish the erase (state kept)
                                        was killed (rpm drops the header
                                        after %postun)
    its snapshot's   a snapshot         upgrade or erase, before the       roll the image back to that snapshot
                                        header changed
    another one      a snapshot         upgrade, whose old %postun (the    snapshot the listed version (finish)
                                        snapshot) failed or was killed
    one              no snapshot        install, after its header,         none: 'dnf reinstall' finishes it
                                        before %post finished
    two or more      -                  upgrade, between the new header    none: 'dnf remove --duplicates' erases
                                        and the old one's erase            the old one, whose %postun finishes it

A repair runs only while no rpm transaction runs (it takes rpm's lock, or is
itself in the next transaction's %pre) and under the host's lock; read-only
commands only report. Machines are never touched: they run clones of
snapshots, which a rollback of the image to its newest snapshot leaves alone.
On dir storage the same is done with the snapshot copies.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass

from freight.common.errors import FreightError
from freight.host import images, manage, rpmdb
from freight.host.context import Host
from freight.host.registry import ImageRecord
from freight.host.undo import Undo

log = logging.getLogger("freight.host.repair")


@dataclass(frozen=True)
class Finding:
    image: str
    txn: str  # what the transaction that died was doing
    listed: tuple[str, ...]  # the versions rpm's database lists
    action: str  # remove | finish-erase | rollback | snapshot | reinstall | duplicates
    to: str | None = None  # the version the image is put back to, or snapshotted as

    @property
    def repairable(self) -> bool:
        return self.action not in ("reinstall", "duplicates")

    def explain(self, done: bool = False) -> str:
        """What died and what repairs it; DONE: that the repair was made."""
        package = f"container-{self.image}"
        died = f"an rpm transaction ({self.txn}) on {package} did not finish"
        why, what = {
            "remove": ("no package owns the image it began", "remove it"),
            "finish-erase": ("rpm had removed the package", "remove its image and machines (their state is kept)"),
            "rollback": (f"rpm's database lists {self.to}", f"roll the image back to its snapshot of {self.to}"),
            "snapshot": (f"rpm's database lists {self.to}, whose files are all there", f"take its snapshot of {self.to}"),
            "reinstall": ("its files are there but not its machine", f"'dnf reinstall {package}'"),
            "duplicates": (f"rpm's database lists {' and '.join(self.listed)}", f"'dnf remove --duplicates {package}'"),
        }[self.action]
        if not self.repairable:
            return f"{died}: {why}; {what} finishes it"
        return f"{died}: {why}; " + (f"done: {what}" if done else f"'freight repair' will {what}")


def diagnose(image: ImageRecord, listed: list[str]) -> Finding | None:
    """What to do about IMAGE, given the versions rpm lists; None when no transaction died on it.

    Two versions listed are always a transaction that died, even with the mark cleared: an
    upgrade killed while the old version's %postun ran lets that phase end (it snapshots the
    new version and clears the mark) but never drops the old header."""

    def found(action: str, to: str | None = None) -> Finding:
        return Finding(image.name, image.txn or "upgrade", tuple(listed), action, to)

    if len(listed) > 1:
        return found("duplicates")
    if image.txn is None:
        return None
    if not listed:
        return found("remove" if image.current is None else "finish-erase")
    if image.current is None:
        return found("reinstall")
    if listed[0] == image.current:
        return found("rollback", image.current)
    return found("snapshot", listed[0])


def findings(host: Host) -> list[Finding]:
    """Every image a dead transaction left out of step (a look: nothing changes)."""
    out = []
    for image in host.registry.all(ImageRecord):
        finding = diagnose(image, rpmdb.versions(f"container-{image.name}"))
        if finding is not None:
            out.append(finding)
    return out


def repair(host: Host, name: str) -> Finding | None:
    """Put the image NAME back in step with rpm's database; the caller holds the host's lock and
    knows no rpm transaction runs but, perhaps, the one whose %pre calls this."""
    image = host.registry.get(ImageRecord, name)
    finding = diagnose(image, rpmdb.versions(f"container-{name}")) if image else None
    if image is None or finding is None:
        return None
    storage = host.storage_of(image)
    if finding.action == "rollback":
        assert finding.to is not None
        storage.image_rollback(name, finding.to)
        storage.image_set_writable(name, False)
        image.txn = None
        host.registry.put(image)
    elif finding.action == "snapshot":
        assert finding.to is not None
        with Undo() as undo:
            images.take_snapshot(host, storage, image, finding.to, undo)
        images.prune(host, storage, image)
    elif finding.action in ("remove", "finish-erase"):
        manage.remove_image(host, image, keep_state=True)
        host.systemd.daemon_reload()
    if finding.repairable:
        log.warning("%s", finding.explain(done=True))
    return finding


def when_quiet(host: Host, names: list[str] | None = None) -> list[Finding]:
    """Repair NAMES (default: every marked image) if no rpm transaction runs now; one that runs
    may be the very transaction that marked them, so then nothing is done."""
    marked = [i.name for i in host.registry.all(ImageRecord) if i.txn and (names is None or i.name in names)]
    if not marked:
        return []
    with ExitStack() as stack:
        try:
            stack.enter_context(rpmdb.held())
        except FreightError as exc:
            log.info("not repairing %s now: %s", ", ".join(marked), exc)
            return []
        stack.enter_context(host.locked())
        return [f for f in (repair(host, name) for name in marked) if f is not None]
    return []  # not reached: for the type checker

"""The lock file: the exact package set a manifest resolved to.

`manifest.lock` sits beside `manifest.yaml`. It pins every package by NEVRA
and checksum (a layer's lock also pins the base container package it was
built on), records what the manifest asked for when it was resolved (so a
changed manifest is noticed rather than silently built from a stale set), the
repositories' metadata digests, and `source_date_epoch`, the newest build time
among the locked packages, to which every timestamp in the RPM is clamped
(or to the newest file time those packages record, if later: a packaged file
keeps its package's time; see stage.newest_file_time).

It also keeps a history: one entry per container VERSION-RELEASE built from
it (serial, the build's source date, the packages changed, the advisories
and CVEs brought in), from which the RPM's %changelog is written, so
`rpm -q --changelog` answers for a container as it does for any package.
Only the lock can keep it: a rebuild's RPM is made afresh each time.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.error import URLError

from freight.common.errors import FreightError, UsageError
from freight.common.files import write_atomic
from freight.model import naming

if TYPE_CHECKING:
    from freight.manifest.load import Manifest, Repo

@dataclass
class LockedPackage:
    name: str
    epoch: int
    version: str
    release: str
    arch: str
    repo: str
    checksum: str  # "sha256:HEX", as the repository metadata states it
    buildtime: int

    @property
    def nevra(self) -> str:
        return f"{self.name}-{self.evr}.{self.arch}"

    @property
    def evr(self) -> str:
        return naming.evr(self.epoch, self.version, self.release)


@dataclass
class HistoryEntry:
    """One container VERSION-RELEASE built from this lock: what its %changelog entry says."""

    serial: int
    evr: str  # the container's VERSION-RELEASE
    date: int  # the build's source_date_epoch (never older than the entry before it)
    changes: list[str]  # 'demo-www 1.0-1 -> 1.1-1', 'added …', 'removed …', or what a first lock holds
    fixes: list[dict[str, Any]] = field(default_factory=list)  # the advisories brought in, as Lock.fixes


def package_changes(before: list[LockedPackage] | None, after: list[LockedPackage]) -> list[str]:
    """What moving from BEFORE to AFTER changed, one line per package (None: a first lock)."""
    if before is None:
        return [f"first lock: {len(after)} packages"]
    old = {(p.name, p.arch): p for p in before}
    new = {(p.name, p.arch): p for p in after}
    lines = []
    for key in sorted(old.keys() | new.keys()):
        was, now = old.get(key), new.get(key)
        if was is None:
            lines.append(f"added {now.name} {now.evr}")
        elif now is None:
            lines.append(f"removed {was.name} {was.evr}")
        elif was.evr != now.evr:
            lines.append(f"{now.name} {was.evr} -> {now.evr}")
    return lines or ["packages unchanged"]


LOCK_FORMAT = 1


@dataclass
class Lock:
    inputs: dict[str, Any]
    repos: dict[str, str]  # repository name -> sha256 of its repomd.xml when locked
    packages: list[LockedPackage]
    # How many times --update-lock changed the package set: the container's
    # release gets it as a suffix, so every such rebuild is an upgrade for hosts.
    serial: int = 0
    # A layer's base: the exact container package its packages were installed on.
    base: LockedPackage | None = None
    # The advisories the last --update-lock brought in (see freight.outdated.fixed_between):
    # publish turns them into an advisory for the container package itself.
    fixes: list[dict[str, Any]] = field(default_factory=list)
    # The manifest's VERSION-RELEASE whose rebuilds the serial counts: a new one starts again at 0
    # (None in a lock written before freight recorded it: its serial counts for the manifest as it is).
    serial_of: str | None = None
    history: list[HistoryEntry] = field(default_factory=list)  # oldest first

    def release(self, manifest_release: str) -> str:
        """The container's release: the manifest's, plus `.SERIAL` once the lock was updated."""
        return naming.release(manifest_release, self.serial)

    def _moved(self, version_release: str) -> bool:
        return self.serial_of not in (None, version_release)

    def counting(self, version_release: str) -> Lock:
        """This lock for a manifest now at VERSION_RELEASE. A new version needs no suffix to be an
        upgrade, so its rebuilds are counted afresh, and the advisories of the last update were the
        previous version's."""
        if self._moved(version_release):
            return replace(self, serial=0, serial_of=version_release, fixes=[])
        return replace(self, serial_of=version_release)

    def updated(
        self,
        inputs: dict[str, Any],
        repos: dict[str, str],
        packages: list[LockedPackage],
        version_release: str,
        base: LockedPackage | None = None,
        fixes: Callable[[], list[dict[str, Any]]] = list,
    ) -> Lock:
        """The lock --update-lock writes for a manifest at VERSION_RELEASE. When the packages (or the
        base) changed, FIXES() says which advisories the change brought in, and the serial moves on,
        unless the version moved already (see counting)."""
        counted = self.counting(version_release)
        new = replace(counted, inputs=inputs, repos=repos, packages=packages, base=base)
        if [asdict(p) for p in new.pinned] != [asdict(p) for p in self.pinned]:
            new.fixes = fixes()
            if not self._moved(version_release):
                new.serial += 1
        return new

    def with_history(self, evr: str, date: int, previous: Lock | None) -> Lock:
        """This lock with an entry for the build of the container's EVR at DATE (the build's source
        date), changed from PREVIOUS (the lock on disk before; None for a first lock); unchanged
        when its newest entry is EVR's already, as for a rebuild of an unchanged lock."""
        if self.history and self.history[-1].evr == evr:
            return self
        date = max([date] + [h.date for h in self.history])  # rpm wants a %changelog newest first
        changed = previous is None or [asdict(p) for p in previous.pinned] != [asdict(p) for p in self.pinned]
        # A lock written before freight kept a history starts it with what it holds.
        first = previous is None or (not self.history and not changed)
        entry = HistoryEntry(
            serial=self.serial,
            evr=evr,
            date=date,
            changes=package_changes(None if first else previous.pinned, self.pinned),
            fixes=list(self.fixes) if changed else [],
        )
        return replace(self, history=[*self.history, entry])

    @property
    def pinned(self) -> list[LockedPackage]:
        """Every package the lock pins: the installed ones, and a layer's base."""
        return self.packages + ([self.base] if self.base else [])

    @property
    def source_date_epoch(self) -> int:
        """The newest build time among the pinned packages (a layer may add none, but has its base)."""
        return max(p.buildtime for p in self.pinned)

    def to_json(self) -> str:
        doc = {
            "format": LOCK_FORMAT,
            "serial": self.serial,
            "inputs": self.inputs,
            "repos": self.repos,
            "source_date_epoch": self.source_date_epoch,
            "packages": [asdict(p) for p in self.packages],
        }
        if self.base is not None:
            doc["base"] = asdict(self.base)
        if self.fixes:
            doc["fixes"] = self.fixes
        if self.serial_of is not None:
            doc["serial_of"] = self.serial_of
        if self.history:
            doc["history"] = [asdict(h) for h in self.history]
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def read(path: Path) -> Lock | None:
    """The lock at PATH, None when there is none; a broken lock is a usage error."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable lock file ({exc}); delete it or run with --update-lock") from None
    try:
        if doc["format"] != LOCK_FORMAT:
            raise UsageError(f"{path}: lock format {doc['format']} is not supported (expected {LOCK_FORMAT})")
        return Lock(
            inputs=doc["inputs"],
            repos=doc["repos"],
            packages=[LockedPackage(**p) for p in doc["packages"]],
            serial=int(doc.get("serial", 0)),
            base=LockedPackage(**doc["base"]) if doc.get("base") else None,
            fixes=list(doc.get("fixes", [])),
            serial_of=doc.get("serial_of"),
            history=[HistoryEntry(**h) for h in doc.get("history", [])],
        )
    except (KeyError, TypeError) as exc:
        raise UsageError(f"{path}: malformed lock file (missing {exc}); run with --update-lock") from None


def write(path: Path, lock: Lock) -> None:
    """Write atomically: a reader sees the old lock or the new one, never half of one."""
    write_atomic(path, lock.to_json())


def check_matches(manifest: Manifest, lock: Lock) -> None:
    """Refuse a lock that was resolved for different manifest inputs, saying what changed."""
    now = manifest.resolution_inputs()
    changes = []
    for key in sorted(set(now) | set(lock.inputs)):
        old, new = lock.inputs.get(key), now.get(key)
        if old == new:
            continue
        if isinstance(old, list) and isinstance(new, list) and all(isinstance(x, str) for x in old + new):
            added = [x for x in new if x not in old]
            removed = [x for x in old if x not in new]
            parts = ([f"added {', '.join(added)}"] if added else []) + ([f"removed {', '.join(removed)}"] if removed else [])
            changes.append(f"{key}: {'; '.join(parts)}")
        else:
            changes.append(f"{key}: {json.dumps(old)} -> {json.dumps(new)}")
    if changes:
        raise UsageError(
            f"{manifest.lock_path} does not match {manifest.path}:\n  "
            + "\n  ".join(changes)
            + f"\nRun 'freight build --update-lock {manifest.path}' to resolve the packages again."
        )


def repomd_digest(repo: Repo) -> str:
    """sha256 of the repository's repomd.xml: cheap to fetch, and it changes whenever the metadata does."""
    url = repo.baseurl.rstrip("/") + "/repodata/repomd.xml"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return hashlib.sha256(response.read()).hexdigest()
    except (URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FreightError(f"repository '{repo.name}' is unreachable: {url}: {reason}") from None

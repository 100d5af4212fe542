"""What freight remembers about a host's images, instances and kept state.

Small JSON files under `LIB_DIR/registry/` (LIB_DIR is /var/lib/freight). They
exist because the storage alone cannot answer everything the hook needs: which
backend an image went to (host.conf may change later), in which order its
snapshots were taken (ZFS creation times have one-second resolution), which
snapshot an instance was made from, which state survives an erase, and under
which ZFS parent each was made (host.conf's parent may change; what is
installed stays where it was made and is found there). Each
file is written to a temporary name and renamed, so a crash never leaves half
a record.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TypeVar

from freight.common.errors import FreightError


@dataclass
class ImageRecord:
    """An installed container image: its backend, installed version and snapshots."""

    name: str
    storage: str
    current: str | None = None  # VERSION-RELEASE new instances start from
    parent: str | None = None  # the ZFS parent dataset it was made under (None: dir, or made before this was kept)
    # What an rpm transaction is doing to the image ("install 1.1-1", "erase"), from the %pre or %preun
    # that opened it until the phase that ends the transaction for it; set later, the transaction died.
    txn: str | None = None
    snapshots: list[str] = field(default_factory=list)  # VERSION-RELEASE, oldest first

    kind = "images"


@dataclass
class InstanceRecord:
    """A machine made from an image snapshot."""

    name: str
    image: str
    snapshot: str  # the VERSION-RELEASE its root filesystem was cloned from
    storage: str
    parent: str | None = None  # the ZFS parent dataset of its clone, its image's
    state: list[str] = field(default_factory=list)  # container paths bound from kept state
    overlay: str | None = None  # the derivative whose overlay is laid over the snapshot
    overlay_version: str | None = None  # the derivative's VERSION-RELEASE that overlay came from
    pinned: bool = False  # rolled back: stays on its snapshot until the next package change

    kind = "instances"

    @property
    def packaged(self) -> bool:
        """Made by a package's hook (the image's default instance or a derivative's), not by `freight instance create`."""
        return self.name in (self.image, self.overlay)


@dataclass
class StateRecord:
    """An instance's persistent paths; kept after the instance is gone, until purged."""

    instance: str
    storage: str
    paths: list[str] = field(default_factory=list)
    parent: str | None = None  # the ZFS parent dataset its state datasets were made under

    kind = "state"

    @property
    def name(self) -> str:
        return self.instance


Record = TypeVar("Record", ImageRecord, InstanceRecord, StateRecord)


class Registry:
    """Load, save, list and drop records of one host."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, cls: type[Record], name: str) -> Path:
        return self.root / cls.kind / f"{name}.json"

    def get(self, cls: type[Record], name: str) -> Record | None:
        path = self._path(cls, name)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise FreightError(f"{path}: unreadable freight record ({exc}); move it away and retry") from None
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def put(self, record: Record) -> None:
        path = self._path(type(record), record.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(asdict(record), f, indent=2, sort_keys=True)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def drop(self, cls: type[Record], name: str) -> None:
        path = self._path(cls, name)
        path.unlink(missing_ok=True)
        for folder in (path.parent, self.root):  # the last record takes its folders along
            try:
                folder.rmdir()
            except OSError:
                break

    def all(self, cls: type[Record]) -> list[Record]:
        folder = self.root / cls.kind
        names = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        return [r for r in (self.get(cls, n) for n in names) if r is not None]

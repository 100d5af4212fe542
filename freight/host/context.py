"""One host as the hook and the host commands see it: settings, records, systemd, storage."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from freight.common.errors import FreightError
from freight.host import config
from freight.host.config import HostConfig
from freight.host.registry import ImageRecord, InstanceRecord, Registry, StateRecord
from freight.host.storage import Storage, open_storage
from freight.host.systemd import Systemd
from freight.model import naming
from freight.model.paths import LOCK_FILE


@dataclass
class Host:
    cfg: HostConfig
    registry: Registry
    systemd: Systemd

    @classmethod
    def load(cls, cfg: HostConfig | None = None, systemd: Systemd | None = None) -> Host:
        cfg = cfg or config.load()
        return cls(cfg=cfg, registry=Registry(cfg.registry_dir), systemd=systemd or Systemd(cfg))

    def storage(self, kind: str) -> Storage:
        """KIND's backend for what is made now, where host.conf says."""
        return open_storage(self.cfg, kind)

    def storage_of(self, record: ImageRecord | InstanceRecord | StateRecord) -> Storage:
        """The backend RECORD's datasets live on, where they were made."""
        return open_storage(self.cfg, record.storage, record.parent)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One hook phase or host command changes this host at a time (rpm's lock covers only rpm)."""
        self.cfg.lock_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.cfg.lock_file, "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def manifest(self, image: str) -> dict[str, Any]:
        """The manifest the installed container-IMAGE package carries (as JSON)."""
        path = self.cfg.manifest_path(image)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise FreightError(f"{path} is missing: is container-{image} installed?") from None
        except (OSError, ValueError) as exc:
            raise FreightError(f"{path}: unreadable manifest ({exc})") from None
        if data.get("name") != image:
            raise FreightError(f"{path} describes {data.get('name')!r}, not {image!r}")
        return data

    def installed_evr(self, image: str) -> str:
        """VERSION-RELEASE of the installed container-IMAGE package, from the metadata it carries.

        A rebuild after `freight build --update-lock` carries the lock's serial in
        its release (1.0-1.1), which the manifest alone does not say: the lock
        beside it does (as `freight verify` reads it too).
        """
        manifest = self.manifest(image)
        lock_path = self.cfg.manifest_path(image).with_name(LOCK_FILE)
        try:
            serial = int(json.loads(lock_path.read_text()).get("serial", 0))
        except FileNotFoundError:
            serial = 0  # an overlay package carries no lock
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise FreightError(f"{lock_path}: unreadable lock ({exc})") from None
        return f"{manifest['version']}-{naming.release(str(manifest['release']), serial)}"

    def image(self, name: str) -> ImageRecord:
        record = self.registry.get(ImageRecord, name)
        if record is None:
            raise FreightError(f"no freight image named {name} on this host (is container-{name} installed?)")
        return record

    def instance(self, name: str) -> InstanceRecord:
        record = self.registry.get(InstanceRecord, name)
        if record is None:
            raise FreightError(f"no freight instance named {name} on this host; 'freight list' shows them")
        return record

    def instances_of(self, image: str) -> list[InstanceRecord]:
        return [r for r in self.registry.all(InstanceRecord) if r.image == image]


def state_paths(run: dict[str, Any]) -> list[str]:
    return sorted(set(run.get("state", [])))

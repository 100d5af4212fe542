"""The containers installed on a host, as its rpm database and host.conf describe them.

Both host-side questions (`freight outdated --host`, `freight verify --installed`)
start here. A ROOT other than `/` reads a host that lives below a folder (a
scratch installroot in the tests, a host's disk mounted elsewhere): its rpm
database (`rpm --root ROOT`, with the `%_dbpath` the rpm configuration names),
its `etc/freight/host.conf` (or `$FREIGHT_HOST_CONF`) and its image locations,
all taken below ROOT.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from freight.common.errors import FreightError, UsageError

if TYPE_CHECKING:
    from freight.host.config import HostConfig
from freight.model import naming

CONTAINER_PROVIDE = "freight-container"


@dataclass
class InstalledContainer:
    """One installed `container-NAME` package, from the host's rpm database."""

    name: str  # the container's name (NAME of freight-container(NAME))
    package: str  # container-NAME
    epoch: int
    version: str
    release: str
    arch: str
    bundled: dict[str, str] = field(default_factory=dict)  # bundled(PKG) = EVR provides

    @property
    def evr(self) -> str:
        return naming.evr(self.epoch, self.version, self.release)

    @property
    def nevra(self) -> str:
        return f"{self.package}-{self.evr}.{self.arch}"


@dataclass(frozen=True)
class HostView:
    """A host's root folder and its host.conf; every location is resolved below the root."""

    root: Path
    config: HostConfig

    @classmethod
    def open(cls, root: Path | None = None) -> HostView:
        """The host at ROOT. host.conf's reader is freight-host's (every container package
        requires freight-host), so freight alone can still build without it."""
        try:
            from freight.host import config as host_config
        except ImportError as exc:
            raise FreightError(f"this command needs freight-host, which is not installed here ({exc})") from None
        root = (root or Path("/")).resolve()
        if not root.is_dir():
            raise UsageError(f"{root}: no such folder (--root names a host's root directory)")
        explicit = os.environ.get("FREIGHT_HOST_CONF")
        path = Path(explicit) if explicit else root / host_config.DEFAULT_PATH.relative_to("/")
        return cls(root, host_config.load(path))

    def below(self, path: Path) -> Path:
        """PATH (a location on the host) as seen from here."""
        return self.root / path.relative_to("/")

    def image_dir(self, name: str) -> Path:
        return self.below(self.config.images_dir / name)

    def meta_file(self, name: str, leaf: str) -> Path:
        """A file the container package installed beside its image (manifest.json, lock.json)."""
        return self.below(self.config.containers_dir / name / leaf)

    def meta_text(self, name: str, leaf: str) -> str | None:
        """The text of a file the container package installed beside its image, None when it has none."""
        path = self.meta_file(name, leaf)
        try:
            return path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise FreightError(f"{path}: cannot read the container's {leaf}: {exc.strerror}") from None

    def read_meta(self, name: str, leaf: str) -> dict[str, Any] | None:
        text = self.meta_text(name, leaf)
        try:
            return None if text is None else json.loads(text)
        except ValueError as exc:
            raise FreightError(f"{self.meta_file(name, leaf)}: cannot read the container's {leaf}: {exc}") from None

    def transaction_set(self) -> Any:
        """An rpm transaction set on the host's database; a missing database is an error
        (rpm would quietly create an empty one, and report nothing installed)."""
        import rpm

        dbpath = self.below(Path(rpm.expandMacro("%{_dbpath}")))
        if not dbpath.is_dir():
            raise FreightError(f"there is no rpm database at {dbpath} (rpm's %_dbpath below {self.root})")
        ts = rpm.TransactionSet(str(self.root))
        ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES | rpm._RPMVSF_NODIGESTS)  # reading, not installing
        return ts

    def containers(self) -> list[InstalledContainer]:
        """Every installed package that provides freight-container(NAME), sorted by name.

        Read with the rpm bindings (what `rpm -q --whatprovides 'freight-container(*)'`
        would list): every header is looked at, since rpm's index cannot match a
        provide by prefix."""
        import rpm

        ts = self.transaction_set()
        found = []
        try:
            for hdr in ts.dbMatch():
                names = hdr[rpm.RPMTAG_PROVIDENAME] or []
                own = [n for n in names if n.startswith(f"{CONTAINER_PROVIDE}(") and n.endswith(")")]
                if not own:
                    continue
                found.append(
                    InstalledContainer(
                        name=own[0][len(CONTAINER_PROVIDE) + 1 : -1],
                        package=hdr[rpm.RPMTAG_NAME],
                        epoch=int(hdr[rpm.RPMTAG_EPOCH] or 0),
                        version=hdr[rpm.RPMTAG_VERSION],
                        release=hdr[rpm.RPMTAG_RELEASE],
                        arch=hdr[rpm.RPMTAG_ARCH],
                        bundled=_bundled(hdr),
                    )
                )
        except rpm.error as exc:
            raise FreightError(f"cannot read the rpm database below {self.root}: {exc}") from None
        finally:
            ts.closeDB()
        return sorted(found, key=lambda c: c.name)

    def container(self, name: str) -> InstalledContainer:
        for c in self.containers():
            if name in (c.name, c.package):
                return c
        raise UsageError(f"no installed package provides {CONTAINER_PROVIDE}({name}) (rpm database below {self.root})")

    def file_owners(self, package: str) -> dict[str, tuple[str, str]]:
        """The owner and group names the host's database records for each file of PACKAGE."""
        import rpm

        ts = self.transaction_set()
        try:
            for hdr in ts.dbMatch("name", package):
                return {f.name: (f.user, f.group) for f in rpm.files(hdr)}
        finally:
            ts.closeDB()
        return {}


def _bundled(hdr: Any) -> dict[str, str]:
    import rpm

    out = {}
    for dep in rpm.ds(hdr, "provides"):
        name, version = dep.N(), dep.EVR()
        if name.startswith("bundled(") and name.endswith(")") and version:
            out[name[len("bundled(") : -1]] = version
    return out

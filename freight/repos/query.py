"""Questions asked of repository metadata through dnf's sack: newer versions,
advisories, and who bundles what. Nothing but metadata is downloaded.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from freight.model import naming
from freight.repos.dnfsetup import DnfRequest, open_base

_ADVISORY_TYPES = {"security", "bugfix", "enhancement", "newpackage"}


@dataclass(frozen=True)
class AdvisoryInfo:
    id: str
    type: str
    severity: str
    cves: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "severity": self.severity, "cves": list(self.cves)}

    def describe(self) -> str:
        severity = f" ({self.severity})" if self.severity and self.severity != "None" else ""
        cves = f": {', '.join(self.cves)}" if self.cves else ""
        return f"{self.type}{severity}{cves} [{self.id}]"


@contextmanager
def sack(request: DnfRequest) -> Iterator[Any]:
    """A dnf Base with REQUEST's repositories loaded, over an empty installroot of its own."""
    with tempfile.TemporaryDirectory(prefix="freight-query-") as root:
        request.root = root
        with open_base(request) as base:
            yield base


def advisories_of(pkg: Any) -> list[AdvisoryInfo]:
    """The advisories that ship exactly PKG."""
    import hawkey

    out = []
    for adv in pkg.get_advisories(hawkey.EQ):
        kind = _type_name(adv.type)
        cves = tuple(sorted(ref.id for ref in adv.references if ref.type == hawkey.REFERENCE_CVE))
        out.append(AdvisoryInfo(id=adv.id, type=kind, severity=str(adv.severity or ""), cves=cves))
    return sorted(out, key=lambda a: a.id)


def _type_name(value: int) -> str:
    import hawkey

    names = {
        hawkey.ADVISORY_SECURITY: "security",
        hawkey.ADVISORY_BUGFIX: "bugfix",
        hawkey.ADVISORY_ENHANCEMENT: "enhancement",
        hawkey.ADVISORY_NEWPACKAGE: "newpackage",
    }
    return names.get(value, "unknown")


def evr(pkg: Any) -> str:
    return naming.evr(pkg.epoch, pkg.version, pkg.release)


def bundled(pkg: Any) -> dict[str, str]:
    """PKG's `bundled(NAME) = EVR` provides, as NAME -> EVR."""
    out = {}
    for reldep in pkg.provides:
        text = str(reldep)
        if text.startswith("bundled(") and ") = " in text:
            name, version = text[len("bundled(") :].split(") = ", 1)
            out[name] = version
    return out


@dataclass
class OutdatedPackage:
    name: str
    arch: str
    locked: str
    available: str
    advisories: list[AdvisoryInfo] = field(default_factory=list)

    @property
    def security(self) -> bool:
        return any(a.type == "security" for a in self.advisories)


def version_key(pkg: Any) -> Any:
    """Sorts dnf packages by EVR as rpm compares them."""
    import functools

    import rpm

    return functools.cmp_to_key(rpm.labelCompare)((str(pkg.epoch), pkg.version, pkg.release))

"""What a container bundles, as its SBOM lists it: each package's header facts and who requires whom.

The lock says which packages a container holds (NEVRA, checksum, repository);
an SBOM also wants what only the packages' headers say: license, vendor,
source RPM, and which of the other bundled packages each one requires. A
build reads them from the staging root's own rpm database, right after dnf
filled it (in the staging child, where rpm finds that database); `freight
sbom MANIFEST` reads them from the repositories' metadata instead, through
dnf's sack. Both give the same `Facts`, so one writer serves both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from freight.common.errors import FreightError
from freight.manifest.lock import LockedPackage


@dataclass(frozen=True)
class Facts:
    """What a package's header says of it, beyond its NEVRA."""

    license: str
    vendor: str
    sourcerpm: str
    requires: tuple[str, ...]  # names of the other packages of the same set it requires, sorted


@dataclass(frozen=True)
class Component:
    """One bundled package, as an SBOM lists it."""

    package: LockedPackage
    facts: Facts
    repo_url: str | None  # the repository's base URL, when the manifest names a remote one

    def to_json(self) -> dict[str, Any]:
        return {"package": asdict(self.package), "facts": asdict(self.facts), "repo_url": self.repo_url}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Component:
        facts = dict(doc["facts"], requires=tuple(doc["facts"]["requires"]))
        return cls(LockedPackage(**doc["package"]), Facts(**facts), doc["repo_url"])


def nevra_of(name: str, epoch: int | None, version: str, release: str, arch: str) -> str:
    return LockedPackage(name, int(epoch or 0), version, release, arch, "", "", 0).nevra


def from_rpmdb(root: Path) -> dict[str, Facts]:
    """Every package in ROOT's rpm database, by NEVRA (read where rpm's `_dbpath` names it)."""
    import rpm

    ts = rpm.TransactionSet(str(root))
    ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES | rpm._RPMVSF_NODIGESTS)
    try:
        headers = list(ts.dbMatch())

        def providers(requirement: str) -> set[str]:
            index = "basenames" if requirement.startswith("/") else "providename"
            return {str(h[rpm.RPMTAG_NAME]) for h in ts.dbMatch(index, requirement)}

        out = {}
        for hdr in headers:
            name = str(hdr[rpm.RPMTAG_NAME])
            wanted = {r for r in hdr[rpm.RPMTAG_REQUIRENAME] or [] if not r.startswith("rpmlib(")}
            required = set().union(*(providers(r) for r in wanted)) - {name}
            nevra = nevra_of(name, hdr[rpm.RPMTAG_EPOCH], hdr[rpm.RPMTAG_VERSION], hdr[rpm.RPMTAG_RELEASE], hdr[rpm.RPMTAG_ARCH])
            out[nevra] = Facts(
                license=str(hdr[rpm.RPMTAG_LICENSE] or ""),
                vendor=str(hdr[rpm.RPMTAG_VENDOR] or ""),
                sourcerpm=str(hdr[rpm.RPMTAG_SOURCERPM] or ""),
                requires=tuple(sorted(required)),
            )
        return out
    finally:
        ts.closeDB()


def from_sack(base: Any, locked: list[LockedPackage]) -> dict[str, Facts]:
    """The LOCKED packages' facts from the repositories' metadata, by NEVRA."""
    available = base.sack.query().available()
    found = available.filter(nevra_strict=[p.nevra for p in locked]) if locked else available.filter(empty=True)
    out = {}
    for pkg in found:
        required: set[str] = set()
        for reldep in pkg.requires:
            text = str(reldep)
            if text.startswith("rpmlib("):
                continue
            providers = found.filter(file=text) if text.startswith("/") else found.filter(provides=reldep)
            required |= {p.name for p in providers}
        out[nevra_of(pkg.name, pkg.epoch, pkg.version, pkg.release, pkg.arch)] = Facts(
            license=pkg.license or "",
            vendor=getattr(pkg, "vendor", "") or "",
            sourcerpm=pkg.sourcerpm or "",
            requires=tuple(sorted(required - {pkg.name})),
        )
    return out


def components(locked: list[LockedPackage], facts: dict[str, Facts], repo_urls: dict[str, str]) -> list[Component]:
    """LOCKED with their FACTS; a package the facts miss is an error, not a gap in the SBOM."""
    missing = [p.nevra for p in locked if p.nevra not in facts]
    if missing:
        raise FreightError(f"no package header found for {', '.join(missing)}: cannot list it in the SBOM")
    return [Component(p, facts[p.nevra], repo_urls.get(p.repo)) for p in sorted(locked, key=lambda p: (p.name, p.arch))]

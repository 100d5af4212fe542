"""Advisories (updateinfo) written with createrepo_c's Python API.

dnf's security workflow (`dnf updateinfo list --security`, `dnf upgrade
--security`) reads a repository's updateinfo. freight writes it for container
packages whose rebuild fixes bundled packages, and the tests use it to give
their library repositories real advisories.
"""

from __future__ import annotations

import datetime
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import createrepo_c as cr


@dataclass(frozen=True)
class AdvisoryPackage:
    name: str
    epoch: int
    version: str
    release: str
    arch: str
    filename: str


@dataclass
class Advisory:
    id: str
    type: str  # security, bugfix, enhancement
    title: str
    severity: str = ""
    description: str = ""
    cves: list[str] = field(default_factory=list)
    packages: list[AdvisoryPackage] = field(default_factory=list)
    issued: datetime.datetime = field(default_factory=lambda: datetime.datetime(1970, 1, 1))
    origin: str = "freight"

    def record(self) -> cr.UpdateRecord:
        rec = cr.UpdateRecord()
        rec.id = self.id
        rec.type = self.type
        rec.title = self.title
        rec.severity = self.severity
        rec.description = self.description or self.title
        rec.summary = self.title
        rec.status = "final"
        rec.version = "1"
        rec.fromstr = self.origin
        rec.issued_date = self.issued
        rec.updated_date = self.issued
        for cve in self.cves:
            ref = cr.UpdateReference()
            ref.type = "cve"
            ref.id = cve
            ref.title = cve
            ref.href = f"https://www.cve.org/CVERecord?id={cve}"
            rec.append_reference(ref)
        collection = cr.UpdateCollection()
        collection.shortname = "freight"
        collection.name = "freight containers"
        for pkg in self.packages:
            item = cr.UpdateCollectionPackage()
            item.name, item.epoch, item.version, item.release = pkg.name, str(pkg.epoch), pkg.version, pkg.release
            item.arch, item.filename, item.src = pkg.arch, pkg.filename, ""
            collection.append(item)
        rec.append_collection(collection)
        return rec


def write_xml(path: Path, advisories: list[Advisory]) -> None:
    """updateinfo.xml(.gz/.zst by PATH's suffix) holding ADVISORIES."""
    out = cr.UpdateInfoXmlFile(str(path))
    for advisory in advisories:
        out.add_chunk(cr.xml_dump_updaterecord(advisory.record()))
    out.close()


SEVERITIES = ["", "None", "Low", "Moderate", "Important", "Critical"]
_TYPES = ["enhancement", "newpackage", "bugfix", "security"]
# The `from` of the advisories publish makes for container packages (and remakes at every publish).
PUBLISHED = "freight-publish"


def container_advisory(pkg: cr.Package, fixes: list[dict[str, Any]]) -> Advisory:
    """The advisory for a container package whose lock update brought in FIXES:
    dnf's security workflow then sees the container itself as a security update."""
    kind = max((f.get("type", "bugfix") for f in fixes), key=lambda t: _TYPES.index(t) if t in _TYPES else 0)
    severity = max((f.get("severity", "") for f in fixes), key=lambda s: SEVERITIES.index(s) if s in SEVERITIES else 0)
    cves = sorted({cve for f in fixes for cve in f.get("cves", [])})
    moved = sorted({f"{f['package']} {f['to']}" for f in fixes})
    lines = [f"- {f['package']} {f['from']} -> {f['to']}: {f['type']} {f['id']}" + (f" ({', '.join(f['cves'])})" if f.get("cves") else "") for f in fixes]
    return Advisory(
        id=f"FREIGHT-{pkg.name}-{pkg.version}-{pkg.release}",
        type=kind,
        severity="" if severity == "None" else severity,
        title=f"{pkg.name} {pkg.version}-{pkg.release}: rebuilt with {', '.join(moved)}",
        description="This container was rebuilt with fixed packages:\n" + "\n".join(lines),
        cves=cves,
        packages=[AdvisoryPackage(pkg.name, int(pkg.epoch or 0), pkg.version, pkg.release, pkg.arch, Path(pkg.location_href).name)],
        issued=datetime.datetime.fromtimestamp(pkg.time_build, datetime.timezone.utc).replace(tzinfo=None),
        origin=PUBLISHED,
    )


def write_merged(path: Path, previous: Path | None, advisories: list[Advisory]) -> None:
    """updateinfo at PATH: the records of PREVIOUS that freight did not write, and ADVISORIES.

    The records publish made are made anew from the packages each time, so a
    pruned container takes its advisory with it; any other record stays untouched."""
    out = cr.UpdateInfoXmlFile(str(path))
    if previous is not None:
        for record in cr.UpdateInfo(str(previous)).updates:
            if record.fromstr != PUBLISHED:
                out.add_chunk(cr.xml_dump_updaterecord(record))
    for advisory in advisories:
        out.add_chunk(cr.xml_dump_updaterecord(advisory.record()))
    out.close()


def add_to_repo(repo: Path, advisories: list[Advisory]) -> None:
    """Put ADVISORIES into REPO's metadata, replacing any updateinfo it had (as modifyrepo_c does).

    For repositories freight does not publish (a distribution's, in the tests and
    the demo); `freight publish` makes its own. repomd.xml is replaced atomically."""
    repodata = repo / "repodata"
    repomd_path = repodata / "repomd.xml"
    repomd = cr.Repomd(str(repomd_path))
    old = [r.location_href for r in repomd.records if r.type == "updateinfo"]
    xml = repodata / "updateinfo.xml.gz"
    write_xml(xml, advisories)
    record = cr.RepomdRecord("updateinfo", str(xml))
    record.fill(cr.SHA256)
    record.rename_file()
    repomd.set_record(record)
    fd, tmp = tempfile.mkstemp(prefix=".repomd.", dir=repodata)
    with os.fdopen(fd, "w") as f:
        f.write(repomd.xml_dump())
    os.chmod(tmp, 0o644)
    os.replace(tmp, repomd_path)
    for href in old:
        if href != record.location_href:
            (repo / href).unlink(missing_ok=True)


def read_repo(repo: Path) -> list[cr.UpdateRecord]:
    """The advisories in REPO's metadata (none when it has no updateinfo)."""
    repomd = cr.Repomd(str(repo / "repodata" / "repomd.xml"))
    for record in repomd.records:
        if record.type == "updateinfo":
            return list(cr.UpdateInfo(str(repo / record.location_href)).updates)
    return []

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
        rec.fromstr = "freight"
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


def add_to_repo(repo: Path, advisories: list[Advisory]) -> None:
    """Put ADVISORIES into REPO's metadata, replacing any updateinfo it had (as modifyrepo_c does).

    repomd.xml is replaced atomically; a reader sees the old or the new metadata."""
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

"""A container's software bill of materials, as SPDX 2.3 and CycloneDX 1.6 JSON.

Scanners (Trivy, Grype, Dependency-Track) read either. The documents are
written with the formats' own libraries (spdx-tools, cyclonedx-python-lib)
and checked by their validators before they are used, so a mistake here is a
build error rather than an SBOM a scanner rejects later.

Both are deterministic: their time is the build's source date, and their
identity (SPDX document namespace, CycloneDX serial number) is derived from
the container's NEVRA and the lock it was built from. Two builds of one lock
carry the same SBOM, which `freight rebuild --verify` relies on.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from freight import __version__
from pathlib import Path
from urllib.parse import urlparse

from freight.build.components import Component, Facts, components, from_sack
from freight.common.errors import FreightError, UsageError
from freight.manifest.load import Manifest
from freight.manifest.lock import Lock, LockedPackage
from freight.model import paths

FORMATS = ("spdx", "cyclonedx")
# The namespace freight's SBOM identities are derived in (uuid5 of it and the container's NEVRA and lock).
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://freight.invalid/sbom")


@dataclass(frozen=True)
class Base:
    """The container a layer or derivative is built on: pinned (a layer) or named with a constraint."""

    name: str
    version: str | None  # EVR for a pinned base
    arch: str | None = None
    checksum: str | None = None

    @classmethod
    def pinned(cls, pkg: LockedPackage) -> Base:
        return cls(pkg.name, pkg.evr, pkg.arch, pkg.checksum)


@dataclass(frozen=True)
class Subject:
    """The container package the SBOM describes."""

    name: str  # container-NAME
    version: str
    release: str
    arch: str
    summary: str
    created: int  # the build's source date (seconds since the epoch)
    identity: str  # what the document's identity is derived from (the lock, or the manifest)
    components: tuple[Component, ...]
    base: Base | None = None

    @property
    def evr(self) -> str:
        return f"{self.version}-{self.release}"

    @property
    def nevra(self) -> str:
        return f"{self.name}-{self.evr}.{self.arch}"

    @property
    def uuid(self) -> uuid.UUID:
        digest = hashlib.sha256(self.identity.encode()).hexdigest()
        return uuid.uuid5(_ID_NAMESPACE, f"{self.nevra}:{digest}")

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.created, tz=timezone.utc)


def subject_of(manifest: Manifest, the_lock: Lock | None, release: str, arch: str, created: int, facts: dict[str, Facts]) -> Subject:
    """What the SBOM of MANIFEST's container says: THE_LOCK's packages with their FACTS (a derivative
    of files only has no lock: its SBOM names only its base)."""
    if the_lock is None:
        base = Base(f"container-{manifest.base}", manifest.data.get("base_version")) if manifest.base else None
        return Subject(manifest.package_name, manifest.version, release, arch, manifest.data["summary"], created, manifest.to_json(), (), base)
    return Subject(
        name=manifest.package_name,
        version=manifest.version,
        release=release,
        arch=arch,
        summary=manifest.data["summary"],
        created=created,
        identity=the_lock.to_json(),
        components=tuple(components(the_lock.packages, facts, _remote_urls(manifest))),
        base=Base.pinned(the_lock.base) if the_lock.base else None,
    )


def for_manifest(manifest: Manifest) -> Subject:
    """The SBOM a build of MANIFEST's lock carries, with the packages' facts from the repositories'
    metadata (no staging root). Its time is the lock's source date: a build that clamps to a later
    file time dates its own SBOM later, and says the same otherwise."""
    from freight.build.options import host_arch
    from freight.build.stage import request_for
    from freight.manifest import lock
    from freight.repos.query import sack

    if manifest.base is not None and not manifest.packages:
        created = max(int(manifest.path.stat().st_mtime), *(int(f.src.stat().st_mtime) for f in manifest.files if f.src.exists()))
        return subject_of(manifest, None, manifest.release, "noarch", created, {})
    the_lock = lock.read(manifest.lock_path)
    if the_lock is None:
        raise UsageError(f"{manifest.path}: no lock file ({manifest.lock_path.name}); build it once first, or run 'freight build --update-lock'")
    the_lock = the_lock.counting(f"{manifest.version}-{manifest.release}")
    with sack(request_for(manifest, Path("/nonexistent"), gpgcheck=False)) as base:
        facts = from_sack(base, the_lock.packages)
    arch = the_lock.base.arch if the_lock.base else manifest.data.get("arch") or host_arch()
    return subject_of(manifest, the_lock, the_lock.release(manifest.release), arch, the_lock.source_date_epoch, facts)


def _remote_urls(manifest: Manifest) -> dict[str, str]:
    """The repositories' URLs as the manifest writes them, where they are remote: a local path would
    make the SBOM depend on the folder the build ran in."""
    return {r["name"]: r["baseurl"] for r in manifest.data["repos"] if urlparse(r["baseurl"]).scheme in ("http", "https", "ftp")}


def write_files(meta: Path, subject: Subject) -> None:
    """Every format's SBOM into the container's metadata folder META, where the host finds it."""
    _require_libraries()
    for fmt, leaf in paths.SBOM_FILES.items():
        (meta / leaf).write_text(write(subject, fmt))


def _require_libraries() -> None:
    """The SBOM libraries are the build side's only dependencies outside Debian: name them plainly."""
    import importlib.util

    missing = [dist for module, dist in (("spdx_tools", "spdx-tools"), ("cyclonedx", "cyclonedx-python-lib")) if importlib.util.find_spec(module) is None]
    if missing:
        raise FreightError(
            f"writing the container's SBOM needs {' and '.join(missing)}, which are not installed "
            "(Fedora: dnf install python3-spdx-tools python3-cyclonedx-python-lib; elsewhere: pip install them, "
            "as make setup does from tools/requirements.txt)"
        )


def write(subject: Subject, fmt: str) -> str:
    """SUBJECT's SBOM in FMT (spdx or cyclonedx) as validated JSON text."""
    _require_libraries()
    if fmt == "spdx":
        return _spdx(subject)
    if fmt == "cyclonedx":
        return _cyclonedx(subject)
    raise ValueError(fmt)


def purl(name: str, evr: str | None, arch: str | None, vendor: str = "", repo: str = "") -> str:
    """A package URL for an RPM (purl-spec's rpm type: the vendor as namespace, epoch and arch as qualifiers)."""
    from packageurl import PackageURL

    epoch, _, version = (evr or "").rpartition(":") if evr and ":" in evr else ("", "", evr or "")
    qualifiers = {k: v for k, v in (("arch", arch), ("epoch", epoch), ("repository_id", repo)) if v}
    namespace = vendor.split()[0].lower() if vendor.strip() else None
    return PackageURL(type="rpm", namespace=namespace, name=name, version=version or None, qualifiers=qualifiers).to_string()


def _sha256(checksum: str | None) -> str | None:
    if checksum and checksum.startswith("sha256:"):
        return checksum.removeprefix("sha256:")
    return None


# --- SPDX 2.3 ----------------------------------------------------------------


def _spdx_id(kind: str, *parts: str) -> str:
    return "SPDXRef-" + kind + "-" + "-".join(re.sub(r"[^A-Za-z0-9.]+", "-", p) for p in parts)


def _spdx(subject: Subject) -> str:
    from spdx_tools.spdx.model import (
        Actor,
        ActorType,
        Checksum,
        ChecksumAlgorithm,
        CreationInfo,
        Document,
        ExternalPackageRef,
        ExternalPackageRefCategory,
        ExtractedLicensingInfo,
        Package,
        PackagePurpose,
        Relationship,
        RelationshipType,
        SpdxNoAssertion,
    )
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
    from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

    extracted: dict[str, ExtractedLicensingInfo] = {}

    def license_of(text: str) -> Any:
        if not text.strip():
            return SpdxNoAssertion()
        expression = _spdx_expression(text)
        if expression is not None:
            return expression
        # Not an SPDX expression (rpm's License: is free text): keep it as a LicenseRef with its text.
        ref = "LicenseRef-" + re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")
        extracted.setdefault(ref, ExtractedLicensingInfo(license_id=ref, extracted_text=text, license_name=text))
        return _spdx_expression(ref)

    def ref(purl_text: str) -> list[ExternalPackageRef]:
        return [ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", purl_text)]

    root_id = _spdx_id("Container", subject.name)
    packages = [
        Package(
            spdx_id=root_id,
            name=subject.name,
            version=subject.evr,
            download_location=SpdxNoAssertion(),
            files_analyzed=False,
            summary=subject.summary or None,
            primary_package_purpose=PackagePurpose.CONTAINER,
            external_references=ref(purl(subject.name, subject.evr, subject.arch)),
            built_date=subject.time,
        )
    ]
    relationships = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, root_id)]
    ids = {}
    for c in subject.components:
        p = c.package
        spdx_id = _spdx_id("RPM", p.name, p.arch)
        ids[p.name] = spdx_id
        sha = _sha256(p.checksum)
        packages.append(
            Package(
                spdx_id=spdx_id,
                name=p.name,
                version=p.evr,
                download_location=_download_location(c.repo_url),
                files_analyzed=False,
                supplier=Actor(ActorType.ORGANIZATION, c.facts.vendor) if c.facts.vendor else SpdxNoAssertion(),
                checksums=[Checksum(ChecksumAlgorithm.SHA256, sha)] if sha else [],
                license_declared=license_of(c.facts.license),
                license_concluded=SpdxNoAssertion(),
                copyright_text=SpdxNoAssertion(),
                source_info=f"built from the source RPM {c.facts.sourcerpm}; from repository {p.repo}" if c.facts.sourcerpm else f"from repository {p.repo}",
                external_references=ref(purl(p.name, p.evr, p.arch, c.facts.vendor, p.repo)),
            )
        )
        relationships.append(Relationship(root_id, RelationshipType.CONTAINS, spdx_id))
    for c in subject.components:
        for required in c.facts.requires:
            if required in ids:
                relationships.append(Relationship(ids[c.package.name], RelationshipType.DEPENDS_ON, ids[required]))
    if subject.base is not None:
        base_id = _spdx_id("Base", subject.base.name)
        sha = _sha256(subject.base.checksum)
        packages.append(
            Package(
                spdx_id=base_id,
                name=subject.base.name,
                version=subject.base.version,
                download_location=SpdxNoAssertion(),
                files_analyzed=False,
                checksums=[Checksum(ChecksumAlgorithm.SHA256, sha)] if sha else [],
                primary_package_purpose=PackagePurpose.CONTAINER,
                external_references=ref(purl(subject.base.name, subject.base.version, subject.base.arch)),
            )
        )
        relationships.append(Relationship(root_id, RelationshipType.DESCENDANT_OF, base_id))

    document = Document(
        creation_info=CreationInfo(
            spdx_version="SPDX-2.3",
            spdx_id="SPDXRef-DOCUMENT",
            name=subject.nevra,
            document_namespace=f"https://freight.invalid/spdx/{subject.nevra}-{subject.uuid}",
            creators=[Actor(ActorType.TOOL, f"freight-{__version__}")],
            created=subject.time,
        ),
        packages=packages,
        relationships=relationships,
        extracted_licensing_info=sorted(extracted.values(), key=lambda e: e.license_id),
    )
    problems = validate_full_spdx_document(document)
    if problems:
        raise FreightError(f"the SPDX document for {subject.nevra} is not valid: " + "; ".join(p.validation_message for p in problems[:5]))
    out = io.StringIO()
    write_document_to_stream(document, out, validate=False)
    return _canonical(out.getvalue())


def _download_location(url: str | None) -> Any:
    """The repository's URL where SPDX accepts it as a download location (a named host, not a file path)."""
    from spdx_tools.spdx.model import SpdxNoAssertion
    from spdx_tools.spdx.validation.uri_validators import validate_download_location

    return url if url and not validate_download_location(url) else SpdxNoAssertion()


@functools.cache
def _licensing() -> Any:
    """The SPDX license list as license-expression knows it (slow to load: once per process)."""
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


@functools.cache
def _spdx_expression(text: str) -> Any:
    """TEXT as an SPDX license expression, None when it is not one (unknown ids included)."""
    from license_expression import ExpressionError

    licensing = _licensing()
    try:
        info = licensing.validate(text, strict=True)
    except ExpressionError:
        return None
    if info.errors and not all(_is_license_ref(s) for s in info.invalid_symbols):
        return None
    try:
        return licensing.parse(text)
    except ExpressionError:
        return None


def _is_license_ref(symbol: str) -> bool:
    return symbol.startswith("LicenseRef-")


# --- CycloneDX 1.6 -----------------------------------------------------------


def _cyclonedx(subject: Subject) -> str:
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component as CdxComponent
    from cyclonedx.model.component import ComponentType, Pedigree
    from cyclonedx.model.contact import OrganizationalEntity
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
    from cyclonedx.model.tool import ToolRepository
    from cyclonedx.output.json import JsonV1Dot6
    from cyclonedx.validation.json import JsonStrictValidator
    from cyclonedx.schema import SchemaVersion
    from packageurl import PackageURL

    def licenses(text: str) -> list[Any]:
        if not text.strip():
            return []
        if _spdx_expression(text) is not None:
            return [LicenseExpression(text)]
        return [DisjunctiveLicense(name=text)]

    def hashes(checksum: str | None) -> list[HashType]:
        sha = _sha256(checksum)
        return [HashType(alg=HashAlgorithm.SHA_256, content=sha)] if sha else []

    base = None
    if subject.base is not None:
        base_purl = purl(subject.base.name, subject.base.version, subject.base.arch)
        base = CdxComponent(
            name=subject.base.name,
            version=subject.base.version,
            type=ComponentType.CONTAINER,
            bom_ref=base_purl,
            purl=PackageURL.from_string(base_purl),
            hashes=hashes(subject.base.checksum),
        )
    root_purl = purl(subject.name, subject.evr, subject.arch)
    root = CdxComponent(
        name=subject.name,
        version=subject.evr,
        type=ComponentType.CONTAINER,
        bom_ref=root_purl,
        purl=PackageURL.from_string(root_purl),
        description=subject.summary or None,
        pedigree=Pedigree(ancestors=[base]) if base is not None else None,
    )
    by_name = {}
    parts = []
    for c in subject.components:
        p = c.package
        text = purl(p.name, p.evr, p.arch, c.facts.vendor, p.repo)
        part = CdxComponent(
            name=p.name,
            version=p.evr,
            type=ComponentType.LIBRARY,
            bom_ref=text,
            purl=PackageURL.from_string(text),
            supplier=OrganizationalEntity(name=c.facts.vendor) if c.facts.vendor else None,
            licenses=licenses(c.facts.license),
            hashes=hashes(p.checksum),
            properties=[
                Property(name=n, value=v)
                for n, v in (("rpm:arch", p.arch), ("rpm:sourcerpm", c.facts.sourcerpm), ("rpm:repository", p.repo), ("rpm:repository_url", c.repo_url or ""))
                if v
            ],
        )
        by_name[p.name] = part
        parts.append(part)
    bom = Bom(
        serial_number=subject.uuid,
        metadata=BomMetaData(
            component=root,
            timestamp=subject.time,
            tools=ToolRepository(components=[CdxComponent(name="freight", version=__version__, type=ComponentType.APPLICATION)]),
        ),
        components=parts,
    )
    bom.register_dependency(root, parts)
    for c in subject.components:
        bom.register_dependency(by_name[c.package.name], [by_name[r] for r in c.facts.requires if r in by_name])
    text = JsonV1Dot6(bom).output_as_string(indent=None)
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise FreightError(f"the CycloneDX document for {subject.nevra} is not valid: {error}")
    return _canonical(text)


def _canonical(text: str) -> str:
    """One spelling of the JSON (sorted keys, two-space indent), whatever the libraries' versions order."""
    return json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"

"""Which locked packages have newer versions, and which of those are security fixes.

A lock pins a container's packages, so the container never changes under a
user's feet; this is the other half: knowing when to rebuild. Exit codes follow
`dnf check-update`: 0 nothing to do, 100 a rebuild is due.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from freight.build.stage import request_for
from freight.common.errors import UsageError
from freight.manifest import lock
from freight.manifest.load import Manifest
from freight.manifest.load import load as load_manifest
from freight.repos.query import OutdatedPackage, advisories_of, evr, sack, version_key


@dataclass
class ContainerReport:
    manifest: Path
    container: str
    packages: list[OutdatedPackage]
    runs_on: str | None = None  # a derivative of files only: the base whose packages it runs on
    base_manifest: Path | None = None  # the base's manifest, when it was found (and reported on too)

    def to_json(self) -> dict[str, Any]:
        derivative = {} if self.runs_on is None else {
            "runs_on": self.runs_on,
            "base_manifest": str(self.base_manifest) if self.base_manifest else None,
        }
        return {
            "manifest": str(self.manifest),
            "container": self.container,
            **derivative,
            "packages": [
                {
                    "name": p.name,
                    "arch": p.arch,
                    "locked": p.locked,
                    "available": p.available,
                    "security": p.security,
                    "advisories": [a.to_json() for a in p.advisories],
                }
                for p in self.packages
            ],
        }


def check_all(manifests: list[Manifest]) -> list[ContainerReport]:
    """A report per manifest; a derivative of files only is answered for the base it runs on.

    Such a derivative bundles no package and has no lock: its machines run on its
    base's image, so what can be outdated is the base's. The base's manifest is
    one named beside it, else BASE/manifest.yaml in the folder beside the
    derivative's (as examples/webapp and examples/webapp-prod); it is reported once."""
    named = {m.name: m for m in manifests if m.base is None or m.packages}
    reports: list[ContainerReport] = []
    done: set[Path] = set()
    for manifest in manifests:
        if manifest.base is None or manifest.packages:
            if manifest.path not in done:
                reports.append(check(manifest))
                done.add(manifest.path)
            continue
        base = named.get(manifest.base)
        beside = manifest.path.parent.parent / manifest.base / "manifest.yaml"
        if base is None and beside.is_file():
            base = load_manifest(beside)
            if base.name != manifest.base:
                base = None
        reports.append(ContainerReport(manifest.path, manifest.package_name, [], runs_on=manifest.base, base_manifest=base.path if base else None))
        if base is not None and base.path not in done:
            reports.append(check(base))
            done.add(base.path)
    return reports


def check(manifest: Manifest) -> ContainerReport:
    """Compare MANIFEST's lock with the newest packages in its repositories."""
    current = lock.read(manifest.lock_path)
    if current is None:
        raise UsageError(f"{manifest.path}: no lock file ({manifest.lock_path.name}); build it once first")
    found = []
    with sack(request_for(manifest, Path("/nonexistent"), gpgcheck=False)) as base:
        available = base.sack.query().available()
        for pkg in current.packages:
            newer = available.filter(name=pkg.name, arch=pkg.arch, evr__gt=pkg.evr)
            if not newer:
                continue
            advisories = sorted({a for candidate in newer for a in advisories_of(candidate)}, key=lambda a: a.id)
            newest = max(newer, key=version_key)
            found.append(OutdatedPackage(pkg.name, pkg.arch, pkg.evr, evr(newest), advisories))
    return ContainerReport(manifest.path, manifest.package_name, found)


def _shown(path: Path | None) -> Path | None:
    """PATH as the user most likely named it: relative to the current folder when below it
    (manifests are held resolved; `--json` keeps the full path)."""
    if path is None or not path.is_relative_to(Path.cwd()):
        return path
    return path.relative_to(Path.cwd())


def render(reports: list[ContainerReport]) -> str:
    lines = []
    for report in reports:
        shown = _shown(report.manifest)
        if report.runs_on is not None:
            where = (
                f"its base's packages: see {_shown(report.base_manifest)}"
                if report.base_manifest
                else f"name {report.runs_on}'s manifest too to check the packages it runs on"
            )
            lines.append(f"{report.container} ({shown}): a derivative of files only, it runs on {report.runs_on}; {where}")
            continue
        if not report.packages:
            lines.append(f"{report.container} ({shown}): up to date")
            continue
        security = sum(p.security for p in report.packages)
        lines.append(
            f"{report.container} ({shown}): {len(report.packages)} outdated"
            + (f", {security} with security fixes" if security else "")
        )
        width = max(len(p.name) for p in report.packages)
        for p in report.packages:
            notes = "; ".join(a.describe() for a in p.advisories)
            lines.append(f"  {p.name:<{width}}  {p.locked} -> {p.available}" + (f"  {notes}" if notes else ""))
    return "\n".join(lines)

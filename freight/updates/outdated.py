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
from freight.repos.query import OutdatedPackage, advisories_of, evr, sack, version_key


@dataclass
class ContainerReport:
    manifest: Path
    container: str
    packages: list[OutdatedPackage]

    def to_json(self) -> dict[str, Any]:
        return {
            "manifest": str(self.manifest),
            "container": self.container,
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


def render(reports: list[ContainerReport]) -> str:
    lines = []
    for report in reports:
        if not report.packages:
            lines.append(f"{report.container} ({report.manifest}): up to date")
            continue
        security = sum(p.security for p in report.packages)
        lines.append(
            f"{report.container} ({report.manifest}): {len(report.packages)} outdated"
            + (f", {security} with security fixes" if security else "")
        )
        width = max(len(p.name) for p in report.packages)
        for p in report.packages:
            notes = "; ".join(a.describe() for a in p.advisories)
            lines.append(f"  {p.name:<{width}}  {p.locked} -> {p.available}" + (f"  {notes}" if notes else ""))
    return "\n".join(lines)

"""The advisories a rebuild brings in: what `--update-lock` records in the lock.

When a new lock moves packages to newer versions, the advisories that shipped
those versions become the container's own advisory at publish time, so hosts
see a container update as a security fix when it is one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from freight.build.stage import request_for
from freight.manifest.load import Manifest
from freight.manifest.lock import LockedPackage
from freight.repos.query import advisories_of, sack


def fixed_between(manifest: Manifest, old: list[LockedPackage], new: list[LockedPackage]) -> list[dict[str, Any]]:
    """The advisories that moving from the OLD locked packages to the NEW ones brings in:
    those shipping a version of a package after its old one, up to its new one."""
    before = {(p.name, p.arch): p for p in old}
    moved = [(before[(p.name, p.arch)], p) for p in new if (p.name, p.arch) in before and before[(p.name, p.arch)].evr != p.evr]
    if not moved:
        return []
    fixes = []
    with sack(request_for(manifest, Path("/nonexistent"), gpgcheck=False)) as base:
        available = base.sack.query().available()
        for was, now in moved:
            shipped = available.filter(name=now.name, arch=now.arch, evr__gt=was.evr, evr__lte=now.evr)
            for advisory in sorted({a for pkg in shipped for a in advisories_of(pkg)}, key=lambda a: a.id):
                fixes.append({**advisory.to_json(), "package": now.name, "from": was.evr, "to": now.evr})
    return fixes

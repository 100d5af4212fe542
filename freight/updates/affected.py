"""Which container packages bundle a vulnerable package, from metadata alone.

Every container RPM provides `bundled(PKG) = EVR` for each package inside, so
"who carries openssl-libs older than 3.0.8" is a provides query that plain dnf
answers too: `dnf repoquery --whatprovides 'bundled(openssl-libs) < 3.0.8'`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from freight.common.errors import FreightError, UsageError
from freight.repos.dnfsetup import DnfRequest
from freight.repos.query import AdvisoryInfo, advisories_of, bundled, evr, sack
from freight.trust.rpmfile import CONTAINER_PROVIDE

_CVE_RE = re.compile(r"^CVE-[0-9]{4}-[0-9]{4,}$")


@dataclass
class Hit:
    container: str  # NEVRA of the container package
    repo: str
    package: str
    bundled: str  # the EVR inside
    fixed_in: str | None = None
    advisory: AdvisoryInfo | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"container": self.container, "repo": self.repo, "package": self.package, "bundled": self.bundled}
        if self.fixed_in:
            out["fixed_in"] = self.fixed_in
        if self.advisory:
            out["advisory"] = self.advisory.id
            out["cves"] = list(self.advisory.cves)
        return out

    def describe(self) -> str:
        why = f"  fixed in {self.fixed_in} by {self.advisory.describe()}" if self.advisory else ""
        return f"{self.container}  bundles {self.package} {self.bundled}{why}  [{self.repo}]"


def cve_id(text: str) -> str:
    """TEXT as advisories write a CVE id (CVE-YYYY-NNNN, upper case), or a usage error."""
    cve = text.strip().upper()
    if not _CVE_RE.match(cve):
        raise UsageError(f"--cve: expected a CVE id such as CVE-2024-12345, got {text!r}")
    return cve


def _is_container(pkg: Any) -> bool:
    return any(str(reldep).startswith(CONTAINER_PROVIDE) for reldep in pkg.provides)


def repo_request(repos: list[str]) -> DnfRequest:
    """A dnf setup for repositories named on the command line (folders or URLs)."""
    specs = []
    for i, repo in enumerate(repos):
        scheme = urlparse(repo).scheme
        url = repo if scheme in ("http", "https", "ftp", "file") else Path(repo).resolve().as_uri()
        specs.append({"name": f"repo{i}", "baseurl": url, "gpgkey": None, "gpgcheck": False})
    return DnfRequest(root="", cachedir="", repos=specs, packages=[], gpgcheck=False)


def find(repos: list[str], package: str | None = None, below: str | None = None, cve: str | None = None) -> list[Hit]:
    from freight.common.dirs import cache_dir

    if (package is None) == (cve is None):
        raise UsageError("name either --package NAME (optionally with --below EVR) or --cve CVE-ID")
    cve = cve_id(cve) if cve is not None else None
    request = repo_request(repos)
    request.cachedir = str(cache_dir())
    names = {spec["name"]: repos[i] for i, spec in enumerate(request.repos)}
    with sack(request) as base:
        query = base.sack.query().available()
        if package is not None:
            provide = f"bundled({package})" + (f" < {below}" if below else "")
            return [
                Hit(str(pkg), names[pkg.reponame], package, bundled(pkg)[package])
                for pkg in sorted(query.filter(provides=provide), key=str)
            ]
        hits = []
        named = query.filter(advisory_cve=cve)
        # A container advisory (freight publish) names the rebuilt container, not a bundled package.
        fixes = sorted((pkg for pkg in named if not _is_container(pkg)), key=str)
        if not fixes:
            raise FreightError(
                f"no advisory in {', '.join(repos)} names a fixed package for {cve}"
                + (" (only the containers' own advisories name it)" if named else "")
                + ": give the distribution's repository, whose advisories name the fixed packages, beside the containers'"
            )
        for fixed in fixes:
            advisory = next(a for a in advisories_of(fixed) if cve in a.cves)
            for pkg in sorted(query.filter(provides=f"bundled({fixed.name}) < {evr(fixed)}"), key=str):
                hits.append(Hit(str(pkg), names[pkg.reponame], fixed.name, bundled(pkg)[fixed.name], evr(fixed), advisory))
        return hits

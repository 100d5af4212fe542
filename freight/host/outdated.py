"""`freight outdated --host`: which installed containers have an update, and what they carry.

Two questions, two sources, on purpose:

* **Is there a newer container package?** That is a question about the host, so
  it is answered with the host's own dnf configuration (dnf.conf, its .repo
  files, its variables): the same repositories `dnf upgrade` would use. The
  container advisories `freight publish` writes are read there too.
* **Which bundled packages have newer versions or open advisories?** That is a
  question about the distribution the container was built from, which is
  usually not the host's (a Debian host runs Fedora containers; a Fedora 40
  host's openssl says nothing about a Fedora 41 container's). So it is answered
  with the repositories the container's embedded manifest names
  (CONTAINER_META/NAME/manifest.json, written at build time), compared with its
  embedded lock.json (name, arch, EVR of every package inside). Comparing a
  container's packages with the host's repositories would mix EVRs of different
  distributions and report nonsense upgrades or miss real ones.

A container whose manifest names repositories the host cannot reach is
reported with the error; the other containers are still checked.
"""

from __future__ import annotations

import logging
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freight.common.errors import FreightError
from freight.host.installed import HostView, InstalledContainer
from freight.model.paths import LOCK_FILE, MANIFEST_FILE
from freight.repos.dnfsetup import DnfRequest, loaded_base
from freight.repos.query import AdvisoryInfo, OutdatedPackage, advisories_of, bundled, evr, sack, version_key

log = logging.getLogger("freight.host.outdated")

DEFAULT_DNF_CONFIG = Path("/etc/dnf/dnf.conf")


@dataclass
class HostContainerReport:
    container: InstalledContainer
    update: str | None = None  # the newest available EVR of container-NAME, when newer
    update_repo: str | None = None
    update_advisories: list[AdvisoryInfo] = field(default_factory=list)
    update_bundles: dict[str, str] = field(default_factory=dict)  # bundled() of that update
    packages: list[OutdatedPackage] = field(default_factory=list)
    error: str | None = None  # why the bundled packages could not be checked

    @property
    def due(self) -> bool:
        return bool(self.update or self.packages)

    def to_json(self) -> dict[str, Any]:
        c = self.container
        return {
            "container": c.name,
            "package": c.package,
            "installed": c.evr,
            "arch": c.arch,
            "update": self.update,
            "update_repo": self.update_repo,
            "update_advisories": [a.to_json() for a in self.update_advisories],
            "packages": [
                {
                    "name": p.name,
                    "arch": p.arch,
                    "installed": p.locked,
                    "available": p.available,
                    "security": p.security,
                    "advisories": [a.to_json() for a in p.advisories],
                    "in_update": self.update_bundles.get(p.name),
                }
                for p in self.packages
            ],
            "error": self.error,
        }


def host_base(root: Path, dnf_config: Path | None) -> AbstractContextManager[Any]:
    """A dnf Base configured as the host's own dnf is, with its repositories' metadata loaded."""
    return loaded_base(lambda base: configure_as_host(base, root, dnf_config), whose="the host's ")


def configure_as_host(base: Any, root: Path, dnf_config: Path | None) -> None:
    """BASE configured as the host's dnf is: its dnf.conf, .repo files and variables.

    With ROOT other than `/`, dnf works on that installroot the way `dnf --installroot`
    does: its dnf.conf and .repo folders are those below ROOT, unless DNF_CONFIG names
    the configuration (whose reposdir then counts as written)."""
    import dnf.conf
    import dnf.exceptions
    import dnf.rpm
    import dnf.yum.misc

    conf = base.conf
    inside = root != Path("/")
    if dnf_config is not None:
        if not dnf_config.is_file():
            raise FreightError(f"{dnf_config}: no such dnf configuration file")
        conf.config_file_path = str(dnf_config)
    elif inside:
        conf.config_file_path = str(root / DEFAULT_DNF_CONFIG.relative_to("/"))
    conf.installroot = str(root)
    if dnf_config is not None or Path(conf.config_file_path).is_file():  # none at all: dnf's defaults
        try:
            conf.read(priority=dnf.conf.PRIO_MAINCONFIG)
        except dnf.exceptions.ConfigError as exc:
            raise FreightError(f"{conf.config_file_path}: {exc}") from None
    if inside and dnf_config is None:
        conf.reposdir = [str(root / Path(d).relative_to("/")) for d in conf.reposdir if Path(d).is_absolute()]
    if os.geteuid() != 0:
        conf.cachedir = dnf.yum.misc.getCacheDir()  # as dnf does for users: a cache of their own
    conf.substitutions.update_from_etc(str(root), varsdir=conf.varsdir)
    if not conf.substitutions.get("releasever"):
        release = dnf.rpm.detect_releasever(str(root))
        if release:
            conf.substitutions["releasever"] = release
    for key in [k for k, v in conf.substitutions.items() if v is None]:
        del conf.substitutions[key]
    base.read_all_repos()


def check(host: HostView, dnf_config: Path | None = None) -> list[HostContainerReport]:
    """Every installed container: a newer package in the host's repositories, and its
    bundled packages against the repositories its own manifest names."""
    reports = [HostContainerReport(c) for c in host.containers()]
    if not reports:
        return reports
    with host_base(host.root, dnf_config) as base:
        available = base.sack.query().available()
        for report in reports:
            c = report.container
            newer = available.filter(name=c.package, arch=c.arch, evr__gt=c.evr)
            if not newer:
                continue
            newest = max(newer, key=version_key)
            report.update, report.update_repo = evr(newest), newest.reponame
            report.update_bundles = bundled(newest)
            report.update_advisories = sorted({a for pkg in newer for a in advisories_of(pkg)}, key=lambda a: a.id)
    for report in reports:
        try:
            report.packages = _bundled_updates(host, report.container)
        except FreightError as exc:
            report.error = str(exc)
            log.warning("%s: bundled packages not checked: %s", report.container.name, exc)
    return reports


def _bundled_updates(host: HostView, container: InstalledContainer) -> list[OutdatedPackage]:
    """The packages inside CONTAINER with newer versions in its manifest's repositories."""
    manifest = host.read_meta(container.name, MANIFEST_FILE)
    if manifest is None:
        raise FreightError(f"{host.meta_file(container.name, MANIFEST_FILE)} is missing: the repositories it was built from are unknown")
    the_lock = host.read_meta(container.name, LOCK_FILE) or {}
    inside = [(p["name"], p.get("arch"), _evr(p)) for p in the_lock.get("packages", [])]
    if not inside:  # no lock.json: the package's bundled() provides (no arch)
        inside = [(name, None, version) for name, version in sorted(container.bundled.items())]
    if not inside:
        return []  # a derivative of files only: its packages are its base's, checked there
    repos = []
    for spec in manifest.get("repos", []):
        url = str(spec.get("baseurl", ""))
        if "://" not in url:
            log.warning("%s: repository %s has a relative baseurl (%s): skipped", container.name, spec.get("name"), url)
            continue
        gpgkey = spec.get("gpgkey")
        repos.append({"name": spec["name"], "baseurl": url, "gpgkey": gpgkey if gpgkey and "://" in gpgkey else None, "gpgcheck": False})
    if not repos:
        raise FreightError("its manifest names no repository this host can read")
    from freight.common.dirs import cache_dir

    request = DnfRequest(
        root="", cachedir=str(cache_dir()), repos=repos, packages=[], gpgcheck=False,
        releasever=manifest.get("releasever"), arch=manifest.get("arch"),
    )
    found = []
    with sack(request) as base:
        available = base.sack.query().available()
        for name, arch, version in inside:
            query = available.filter(name=name, evr__gt=version)
            if arch:
                query = query.filter(arch=arch)
            if not query:
                continue
            advisories = sorted({a for pkg in query for a in advisories_of(pkg)}, key=lambda a: a.id)
            newest = max(query, key=version_key)
            found.append(OutdatedPackage(name, arch or newest.arch, version, evr(newest), advisories))
    return found


def _evr(p: dict[str, Any]) -> str:
    epoch = f"{p['epoch']}:" if p.get("epoch") else ""
    return f"{epoch}{p['version']}-{p['release']}"


def render(reports: list[HostContainerReport]) -> str:
    if not reports:
        return "no container is installed"
    lines = []
    for r in reports:
        c = r.container
        head = f"{c.package} {c.evr}"
        if r.update:
            kinds = sorted({a.type for a in r.update_advisories})
            head += f": update {r.update} in {r.update_repo}" + (f" ({', '.join(kinds)} advisory)" if kinds else "")
        elif not r.packages:
            head += ": up to date"
        else:
            head += ": no newer container package yet"
        lines.append(head)
        for a in r.update_advisories:
            lines.append(f"  advisory {a.describe()}")
        if r.packages:
            security = sum(p.security for p in r.packages)
            lines.append(f"  {len(r.packages)} bundled package(s) outdated" + (f", {security} with security fixes" if security else ""))
            width = max(len(p.name) for p in r.packages)
            for p in r.packages:
                notes = "; ".join(a.describe() for a in p.advisories)
                carried = r.update_bundles.get(p.name)
                where = f"  (the update bundles {carried})" if carried else ""
                lines.append(f"  {p.name:<{width}}  {p.locked} -> {p.available}" + (f"  {notes}" if notes else "") + where)
        if r.error:
            lines.append(f"  bundled packages not checked: {r.error}")
    return "\n".join(lines)

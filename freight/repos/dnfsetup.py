"""Opening dnf on exactly the repositories freight names, and nothing of the machine's.

Every dnf freight opens goes through `loaded_base`: the staging child, the
metadata queries, and the host's own configuration for `outdated --host`.
`configure` is the isolation DESIGN.md asks for: repositories from the request
only, cache, logs and persistdir under freight's cache, releasever from the
request, no host reposdir, varsdir or plugins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freight.common import log as flog
from freight.common.errors import FreightError


@dataclass
class DnfRequest:
    """Everything the child needs; sent as JSON so the child imports no manifest code."""

    root: str
    cachedir: str
    repos: list[dict[str, Any]]
    packages: list[str]
    exclude: list[str] = field(default_factory=list)
    install_weak_deps: bool = False
    releasever: str | None = None
    arch: str | None = None
    gpgcheck: bool = True
    locked: list[dict[str, Any]] | None = None
    verbosity: int = flog.NORMAL
    # The root already holds a system with its own rpm database (a base container's
    # image, for a layer): dnf loads it as the installed system, resolves against what
    # is there and adds to it.
    on_installed: bool = False
    # Only download and verify `packages`, each "NAME" or "NAME OP EVR" (the newest
    # match, or the locked one): no dependencies, nothing installed. See fetch().
    fetch_only: bool = False


@contextmanager
def loaded_base(setup: Callable[[Any], None], system_repo: bool = False, whose: str = "") -> Iterator[Any]:
    """A dnf Base that SETUP configured, with its repositories' metadata loaded; closed afterwards.

    Every dnf freight opens goes through here (staging, repository queries,
    the host's own configuration), so a repository that cannot be read gives
    one kind of error. With SYSTEM_REPO, the installroot's rpm database counts
    as installed; WHOSE names the configuration in that error ("the host's ")."""
    import dnf
    import dnf.exceptions

    base = dnf.Base()
    try:
        setup(base)
        try:
            base.fill_sack(load_system_repo=system_repo)
        except dnf.exceptions.RepoError as exc:
            raise FreightError(f"cannot read {whose}repository metadata: {exc}") from None
        yield base
    finally:
        base.close()


def open_base(request: DnfRequest, system_repo: bool = False) -> AbstractContextManager[Any]:
    """A dnf Base with only REQUEST's repositories (see configure), their metadata loaded."""
    return loaded_base(lambda base: configure(base, request), system_repo)


def variables(releasever: str | None, arch: str | None) -> dict[str, str]:
    """The dnf variables a build's repositories see: $arch and $basearch of ARCH (else this
    machine's), $releasever only from the manifest (never the host's release or /etc/dnf/vars)."""
    import dnf.rpm
    import hawkey

    arch = arch or hawkey.detect_arch()
    found = {"arch": arch, "basearch": dnf.rpm.basearch(arch)}
    if releasever:
        found["releasever"] = releasever
    return found


def expand(url: str, values: dict[str, str]) -> str:
    """URL with dnf's variables replaced as dnf replaces them ($name and ${name}), for what freight
    fetches itself (a repository's repomd.xml for the up-to-date check)."""
    import libdnf.conf

    return libdnf.conf.ConfigParser.substitute(url, values)


def configure(base: Any, request: DnfRequest) -> None:
    """Only the manifest's repositories, and nothing read from the host's dnf setup."""
    conf = base.conf
    cachedir = Path(request.cachedir)
    for sub in ("dnf", "log", "persist"):
        (cachedir / sub).mkdir(parents=True, exist_ok=True)
    conf.installroot = request.root
    conf.cachedir = str(cachedir / "dnf")
    conf.logdir = str(cachedir / "log")
    conf.persistdir = str(cachedir / "persist")
    conf.reposdir = []
    conf.varsdir = []
    conf.pluginconfpath = []
    conf.install_weak_deps = request.install_weak_deps
    conf.gpgcheck = request.gpgcheck
    conf.assumeyes = True
    conf.excludepkgs = list(request.exclude)
    if request.arch:
        conf.arch = request.arch
    conf.substitutions.update(variables(request.releasever, request.arch))
    for key in [k for k, v in conf.substitutions.items() if v is None]:
        del conf.substitutions[key]  # an installroot without a release package has no $releasever
    conf.keepcache = True  # downloaded packages stay in freight's cache for the next build
    for spec in request.repos:
        repo = base.repos.add_new_repo(
            spec["name"],
            conf,
            baseurl=[spec["baseurl"]],
            gpgkey=[spec["gpgkey"]] if spec.get("gpgkey") else [],
            gpgcheck=request.gpgcheck and spec["gpgcheck"],
            skip_if_unavailable=False,
        )
        # What `dnf --refresh` does: metadata_expire=0 alone trusts a cache made in the
        # same second (its age, 0, is not over 0), and a locked build must see a package
        # that left the repository. Unchanged metadata is still not downloaded again.
        repo._repo.expire()

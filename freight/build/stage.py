"""Installing a container's packages with dnf into a staging root.

dnf runs through its Python API in a child process of its own. The child gets a
private HOME whose `.rpmmacros` defines `_dbpath`: rpm reads its macros when
it is imported, dnf reloads them, and `rpm.addMacro()` in the parent does not
survive that (on Debian the database would land in `ROOT/root/.rpmdb`). The
child also keeps dnf's memory and signal handling away from the build.

The parent calls `install()`; the child is `python -m freight.build.stage REQUEST`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from freight.build import components
from freight.common import log as flog
from freight.common.dirs import cache_dir
from freight.common.errors import FreightError, UsageError
from freight.common.run import CommandError, run
from freight.manifest.lock import LockedPackage
from freight.model import rpmbugs
from freight.model.paths import RPM_DBPATH
from freight.repos.dnfsetup import DnfRequest, open_base

if TYPE_CHECKING:
    from freight.manifest.load import Manifest

log = logging.getLogger("freight.build.stage")

def request_for(manifest: Manifest, root: Path, **options: Any) -> DnfRequest:
    """The dnf setup a manifest asks for: its repositories and resolution options only."""
    return DnfRequest(
        root=str(root),
        cachedir=str(cache_dir()),
        repos=[asdict(r) for r in manifest.repos],
        packages=manifest.packages,
        exclude=manifest.data.get("exclude", []),
        install_weak_deps=manifest.data["install_weak_deps"],
        releasever=manifest.data.get("releasever"),
        arch=manifest.data.get("arch"),
        verbosity=flog.log.getEffectiveLevel(),
        **options,
    )


@dataclass(frozen=True)
class Installed:
    """What an install put into a root."""

    packages: list[LockedPackage]  # installed by this request, sorted by name
    newest_file_time: int  # the latest file time any package in the root's rpm database records (see newest_file_time)
    facts: dict[str, components.Facts]  # what the root's rpm database says of each package, by NEVRA (for the SBOM)


def install(request: DnfRequest) -> Installed:
    """Run dnf in a child process; return what it installed."""
    result = _run_child(request)
    facts = {nevra: components.Facts(**dict(f, requires=tuple(f["requires"]))) for nevra, f in result["facts"].items()}
    return Installed([LockedPackage(**p) for p in result["packages"]], result["newest_file_time"], facts)


def fetch(request: DnfRequest) -> list[tuple[LockedPackage, Path]]:
    """Download REQUEST's packages, signature-checked as for an install; return each with its file.

    A layer needs its base container's package as a file, to lay its image down
    with rpm; it comes through the same dnf setup (repositories, cache, gpgcheck)
    as every package a container installs. The files stay in freight's cache."""
    result = _run_child(replace(request, fetch_only=True))
    return [(LockedPackage(**p), Path(f)) for p, f in zip(result["packages"], result["files"])]


def _run_child(request: DnfRequest) -> dict[str, Any]:
    """Run `python -m freight.build.stage` on REQUEST; return its result document.

    The child's errors come back as a JSON file, so they keep their class
    (a manifest problem exits 2, a broken repository 1) and their message.
    """
    cachedir = Path(request.cachedir)
    home = cachedir / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / ".rpmmacros").write_text(f"%_dbpath {RPM_DBPATH}\n")
    with tempfile.TemporaryDirectory(prefix="freight-stage-", dir=cachedir) as tmp:
        req = Path(tmp) / "request.json"
        res = Path(tmp) / "result.json"
        req.write_text(json.dumps(asdict(request)))
        try:
            run(
                [sys.executable, "-m", "freight.build.stage", req, res],
                env={"HOME": str(home), "PYTHONPATH": _package_parent()},
                capture=False,
            )
        except CommandError as exc:
            if res.exists():
                result = json.loads(res.read_text())
                cls = UsageError if result.get("usage") else FreightError
                raise cls(result["error"]) from None
            raise FreightError(f"dnf stopped with exit code {exc.returncode} while installing into {request.root}") from None
        return json.loads(res.read_text())


def _package_parent() -> str:
    """Make `python -m freight.build.stage` find this very freight, installed or not."""
    parent = str(Path(__file__).resolve().parents[2])
    existing = os.environ.get("PYTHONPATH")
    return f"{parent}:{existing}" if existing else parent


# --- the child ---------------------------------------------------------------


def _child(request: DnfRequest) -> dict[str, Any]:
    import dnf.exceptions

    from freight.build.dnfprogress import DownloadProgress, TransactionProgress

    with open_base(request, system_repo=request.on_installed) as base:
        pkgs = _pick(base, request) if request.fetch_only else _resolve(base, request)
        locked = [_describe(p) for p in pkgs]
        if pkgs:
            flog.step("Downloading %d packages", len(pkgs))
            try:
                base.download_packages(pkgs, progress=DownloadProgress())
            except dnf.exceptions.Error as exc:
                raise FreightError(f"downloading packages failed:\n  {exc}") from None
            if request.gpgcheck:
                _check_signatures(base, pkgs)
        if request.fetch_only:
            return {"packages": [asdict(p) for p in locked], "files": [p.localPkg() for p in pkgs]}
        if pkgs:
            _refuse_fifos_rpm_cannot_install(pkgs)
            os.environ["SOURCE_DATE_EPOCH"] = str(max(p.buildtime for p in locked))
            flog.step("Installing %d packages into the staging root", len(pkgs))
            display = TransactionProgress(len(pkgs))
            try:
                base.do_transaction(display=display)
            except dnf.exceptions.Error as exc:
                raise FreightError(f"the rpm transaction failed: {exc}") from None
            finally:
                display.close()
    newest = newest_file_time(Path(request.root))
    facts = components.from_rpmdb(Path(request.root))
    scrub(Path(request.root))  # after every reading of the database: it leaves the database one file
    return {"packages": [asdict(p) for p in locked], "newest_file_time": newest, "facts": {n: asdict(f) for n, f in facts.items()}}


def _resolve(base: Any, request: DnfRequest) -> list[Any]:
    """Mark the request's packages (or exactly the locked ones) and resolve: what dnf will install."""
    import dnf.exceptions

    if request.locked is not None:
        for pkg in _find_locked(base, request.locked):
            base.package_install(pkg, strict=True)
    else:
        _select(base, request.packages)
    try:
        base.resolve()
    except dnf.exceptions.DepsolveError as exc:
        raise UsageError(f"the packages cannot be installed together:\n  {exc}") from None
    pkgs = sorted(base.transaction.install_set, key=lambda p: (p.name, p.arch))
    if request.locked is not None:
        _check_complete(pkgs, request.locked)
    return pkgs


def _pick(base: Any, request: DnfRequest) -> list[Any]:
    """The packages to fetch: the locked ones, else the newest match of each "NAME [OP EVR]"."""
    if request.locked is not None:
        return _find_locked(base, request.locked)
    query = base.sack.query().available()
    pkgs = []
    for spec in request.packages:
        matches = sorted(query.filter(name=spec.split()[0]).filter(provides=spec).latest(), key=lambda p: p.arch)
        if not matches:
            raise UsageError(f"no package in the manifest's repositories is {spec}")
        if len(matches) > 1:
            raise UsageError(f"{spec} is ambiguous: {', '.join(map(str, matches))}; set the manifest's arch")
        pkgs += matches
    return pkgs


def _select(base: Any, specs: list[str]) -> None:
    import dnf.exceptions

    missing = []
    for spec in specs:
        try:
            base.install(spec, strict=True)
        except dnf.exceptions.MarkingError:
            missing.append(spec)
    if missing:
        raise UsageError(f"no package in the manifest's repositories provides: {', '.join(missing)}")


def _find_locked(base: Any, locked: list[dict[str, Any]]) -> list[Any]:
    """The available packages that are exactly the locked ones (NEVRA, repository and checksum)."""
    query = base.sack.query().available()
    found, stale = [], []
    for entry in locked:
        want = LockedPackage(**entry)
        matches = query.filter(
            name=want.name, epoch=want.epoch, version=want.version, release=want.release, arch=want.arch, reponame=want.repo
        )
        pkg = next((p for p in matches if _checksum(p) == want.checksum), None)
        if pkg is not None:
            found.append(pkg)
        elif matches:
            seen = ", ".join(sorted({_checksum(p) for p in matches}))
            stale.append(f"{want.nevra} changed in repository {want.repo} (it has {seen}, the lock pins {want.checksum})")
        else:
            stale.append(f"{want.nevra} is no longer in repository {want.repo}")
    if stale:
        raise UsageError(
            "locked packages are not in the repositories as locked:\n  "
            + "\n  ".join(stale)
            + "\nrun 'freight build --update-lock' to resolve again"
        )
    return found


def _check_complete(pkgs: list[Any], locked: list[dict[str, Any]]) -> None:
    extra = sorted({str(p) for p in pkgs} - {LockedPackage(**e).nevra for e in locked})
    if extra:
        raise UsageError(
            "the lock is incomplete: dnf also needs " + ", ".join(extra) + "; run 'freight build --update-lock'"
        )


def _checksum(pkg: Any) -> str:
    kind, digest = pkg.chksum
    import hawkey

    return f"{hawkey.chksum_name(kind)}:{digest.hex()}"


def _describe(pkg: Any) -> LockedPackage:
    return LockedPackage(
        name=pkg.name,
        epoch=int(pkg.epoch or 0),
        version=pkg.version,
        release=pkg.release,
        arch=pkg.arch,
        repo=pkg.reponame,
        checksum=_checksum(pkg),
        buildtime=int(pkg.buildtime),
    )


def _check_signatures(base: Any, pkgs: list[Any]) -> None:
    """What `dnf install` does for gpgcheck, which the API leaves to its callers."""
    import dnf.exceptions

    for pkg in pkgs:
        code, message = base.package_signature_check(pkg)
        if code == 1:  # signed, but the key is not imported yet: fetch it from the repo's gpgkey
            try:
                base.package_import_key(pkg, askcb=lambda *_: True)
            except dnf.exceptions.Error as exc:
                raise FreightError(f"{pkg}: cannot import the repository key: {exc}") from None
            code, message = base.package_signature_check(pkg)
        if code != 0:
            raise FreightError(f"{pkg} from repository '{pkg.reponame}' failed its signature check: {message}")


def _refuse_fifos_rpm_cannot_install(pkgs: list[Any]) -> None:
    """Stop before a transaction this machine's rpm would never finish (freight.model.rpmbugs)."""
    import rpm

    version = rpmbugs.running_rpm()
    if not rpmbugs.hangs_on_fifos(version):
        return
    ts = rpm.TransactionSet()
    ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES | rpm._RPMVSF_NODIGESTS)  # read for the file modes only
    shipping = []
    for pkg in pkgs:
        with open(pkg.localPkg(), "rb") as f:
            header = ts.hdrFromFdno(f.fileno())
        pipes = [n for n, m in zip(header[rpm.RPMTAG_FILENAMES], header[rpm.RPMTAG_FILEMODES]) if stat.S_ISFIFO(m & 0xFFFF)]
        shipping += [f"{pkg.name}: {p}" for p in pipes]
    if shipping:
        raise FreightError(
            f"{rpmbugs.FIFO_HANG_WHY.format(version=version)}, and these packages ship one:\n  " + "\n  ".join(shipping)
            + "\nbuild on a machine with rpm 4.18.1 or later, or leave these packages out"
        )


# Files rpm and sqlite leave beside a database that was opened, even only to read it.
RPMDB_RUNTIME = tuple(f"{RPM_DBPATH[1:]}/{n}" for n in (".rpm.lock", "rpmdb.sqlite-shm", "rpmdb.sqlite-wal"))
# Paths a dnf run leaves behind that must not ship in an image; removed unless
# a package owns them.
SCRUB = (
    "var/cache/dnf",
    "var/cache/yum",
    "var/cache/ldconfig/aux-cache",
    "var/lib/dnf",
    "var/log/dnf.log",
    "var/log/dnf.librepo.log",
    "var/log/dnf.rpm.log",
    "var/log/hawkey.log",
    "var/lib/systemd/random-seed",
    "var/lib/random-seed",
    *RPMDB_RUNTIME,
)
# Directories dnf creates for itself: removed when empty and unowned.
SCRUB_EMPTY = ("etc/dnf/modules.d", "etc/dnf", "var/cache", "var/log", "var/lib")


def scrub(root: Path) -> None:
    """Take out caches, logs, history and per-machine identity, so images are clean and reproducible."""
    import rpm

    _checkpoint_rpmdb(root / RPM_DBPATH[1:] / "rpmdb.sqlite")
    ts = rpm.TransactionSet(str(root))
    ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES | rpm._RPMVSF_NODIGESTS)

    def owned(rel: str) -> bool:
        return any(True for _ in ts.dbMatch("basenames", "/" + rel))

    for rel in SCRUB:
        path = root / rel
        if (path.exists() or path.is_symlink()) and not owned(rel):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    for rel in SCRUB_EMPTY:
        path = root / rel
        if path.is_dir() and not any(path.iterdir()) and not owned(rel):
            path.rmdir()
    machine_id = root / "etc/machine-id"
    if machine_id.exists():
        machine_id.write_text("uninitialized\n")
    ts.closeDB()


def newest_file_time(root: Path) -> int:
    """The latest time ROOT's rpm database records for any file (or build) of its packages.

    The container RPM clamps every timestamp to its source date. A packaged
    file newer than that date (rpm dates a build when it starts, and files
    made later in its %install are newer) would enter the container with a
    time its own package does not record, and the image's own `rpm -Va`
    would call it changed. Clamping no earlier than this time leaves every
    packaged file as its package has it.
    """
    import rpm

    ts = rpm.TransactionSet(str(root))
    ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES | rpm._RPMVSF_NODIGESTS)
    try:
        return max((max([hdr[rpm.RPMTAG_BUILDTIME] or 0, *(hdr[rpm.RPMTAG_FILEMTIMES] or [])]) for hdr in ts.dbMatch()), default=0)
    finally:
        ts.closeDB()


def _checkpoint_rpmdb(db: Path) -> None:
    """Fold sqlite's write-ahead log into the database, so the image carries one file."""
    import sqlite3

    if not db.exists():
        return
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _die_with_parent() -> None:
    """Ask the kernel to kill this child when the freight that started it dies, even by SIGKILL:
    a dnf transaction left running on its own would go on writing into a staging root nobody
    removes, holding the cache's lock and its scriptlets' processes (prctl PR_SET_PDEATHSIG)."""
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before the request was made
        raise SystemExit(1)


def _main(argv: list[str]) -> int:
    _die_with_parent()
    request_path, result_path = Path(argv[0]), Path(argv[1])
    request = DnfRequest(**json.loads(request_path.read_text()))
    flog.setup(request.verbosity)
    try:
        result = _child(request)
    except FreightError as exc:
        result_path.write_text(json.dumps({"error": str(exc), "usage": isinstance(exc, UsageError)}))
        return 1
    result_path.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))

"""Publishing a folder of RPMs as a yum repository, with the createrepo_c API.

What a repository reader may rely on, and how this module keeps it:

* Whole metadata or the previous metadata, never a mix. The new `repodata/`
  is written to a hidden folder beside it and exchanged with the old one in
  one `renameat2(RENAME_EXCHANGE)`, so `repomd.xml`, its signature and the
  files it names change together. A publish killed at any point leaves the
  previous `repodata/` in place; the next publish clears its leftovers.
* The files the previous `repomd.xml` named stay in the new `repodata/` (hard
  links) for one generation, so a reader that fetched the old `repomd.xml` a
  moment before the exchange still finds what it names.
* One publisher at a time: an `flock` on `.freight/publish.lock` in the folder.
  A second publisher waits, then sees the first one's packages.
* Metadata publish does not make itself (updateinfo advisories, comps,
  modules) is carried over from the previous `repomd.xml` unchanged.
* Incremental: a package file whose name, size, mtime, ctime and inode are
  those recorded by the last publish is not opened again; its primary,
  filelists and other records are taken from the previous metadata.
  `.freight/publish-state.json` holds those identities.
* With a signing key, `repomd.xml.asc` is an armored detached signature and
  the public key is in the folder as `RPM-GPG-KEY-freight`, for the hosts'
  `gpgkey=`, and as `repodata/repomd.xml.key`, where zypper looks for it (it
  changes with the signature it verifies, in the same exchange); unsigned
  packages are refused, since such hosts would refuse them.

`FREIGHT_PUBLISH_HOOK=POINT:kill` or `POINT:sleep=SECONDS` stops or pauses a
publish at POINT (locked, read, writing, written), for the tests that prove
the guarantees above.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import json
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from freight.common import log as flog
from freight.common import progress
from freight.common.errors import FreightError, UsageError
from freight.common.files import fsync_dir, write_atomic
from freight.model.paths import SBOM_FILES, meta_dir
from freight.publish import state as saved
from freight.publish.state import STATE_DIR, FileId
from freight.publish.files import KEY_FILE, REPOMD_KEY, REPOMD_SIGNATURE

if TYPE_CHECKING:
    from freight.trust import digest, keys, verify

log = logging.getLogger("freight.publish.repository")

LOCK_FILE = "publish.lock"

HOOK_ENV = "FREIGHT_PUBLISH_HOOK"
_NEW_PREFIX = f"{saved.LEFTOVER_PREFIX}new-"
_OLD_PREFIX = f"{saved.LEFTOVER_PREFIX}old-"
_METADATA = ("primary", "filelists", "other")
# What publish writes anew; every other record of the previous repomd.xml
# (updateinfo, comps, modules …) is carried over unchanged.
_REGENERATED = {f"{name}{suffix}" for name in _METADATA for suffix in ("", "_db", "_zck")}


@dataclass
class PublishOptions:
    sign_key: keys.SigningKey | None = None
    keep: int | None = None  # newest versions of each container to keep
    allow_unsigned: bool = False
    sbom: bool = False  # place each container's SBOMs beside its package

    def used(self) -> dict[str, Any]:
        """The options as a publish's fingerprint records them (freight.publish.state)."""
        return saved.options(self.sign_key.fingerprint if self.sign_key is not None else None, self.keep, self.allow_unsigned, self.sbom)


@dataclass
class PublishStats:
    """What a publish did; `read` counts the package files it had to open."""

    folder: str
    revision: str
    packages: int = 0
    read: int = 0
    reused: int = 0
    pruned: list[str] = field(default_factory=list)
    signed: bool = False
    seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


@dataclass
class _Entry:
    href: str
    pkg: Any  # createrepo_c.Package
    file_id: FileId
    signer: str | None
    fixes: list[dict[str, Any]] = field(default_factory=list)  # what a container's lock update brought in


def publish(folder: Path, options: PublishOptions | None = None) -> PublishStats:
    """Make FOLDER a yum repository of the RPMs in it (see the module docstring)."""
    options = options or PublishOptions()
    start = time.monotonic()
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder")
    if options.keep is not None and options.keep < 1:
        raise UsageError(f"--keep {options.keep}: keep at least 1 version")
    if options.sign_key is not None:
        from freight.trust import keys

        keys.refuse_inside(folder, "repository")
    folder = folder.resolve()
    try:
        with _locked(folder):
            _hook("locked")
            _clear_leftovers(folder)
            stats = _publish_locked(folder, options)
    except OSError as exc:
        raise FreightError(f"{folder}: cannot publish: {exc.strerror} ({exc.filename or 'repodata'})") from None
    stats.seconds = round(time.monotonic() - start, 3)
    return stats


def _publish_locked(folder: Path, options: PublishOptions) -> PublishStats:
    state_doc = saved.load(folder)
    scanned = saved.scan(folder)
    if saved.unchanged(folder, state_doc, scanned, options.used()):
        log.debug("  nothing changed since the last publish (revision %s)", state_doc["revision"])
        return PublishStats(**saved.no_op_stats(folder, state_doc, scanned, options.sign_key is not None))
    repodata = folder / "repodata"
    old_repomd = _read_repomd(repodata)
    previous = _load_previous(folder, old_repomd)
    state = saved.files_of(state_doc)
    entries: list[_Entry] = []
    to_read: list[tuple[str, FileId]] = []
    for href, file_id in scanned.items():
        old = _reusable(state.get(href), file_id, previous)
        if old is not None:
            entries.append(_Entry(href, old, file_id, state[href].get("signer"), state[href].get("fixes", [])))
        else:
            to_read.append((href, file_id))
    entries += _read_packages(folder, to_read)
    read = len(to_read)
    _hook("read")
    entries, pruned = _prune(entries, options.keep)
    if options.sign_key is not None and not options.allow_unsigned:
        _refuse_unsigned(folder, entries)

    revision = _next_revision(old_repomd)
    new = Path(tempfile.mkdtemp(prefix=_NEW_PREFIX, dir=folder))
    try:
        os.chmod(new, 0o755)  # mkdtemp makes it private; a web server must read repodata/
        extras = _with_container_advisories(new, _link_extra_metadata(folder, old_repomd, new), entries)
        _write_metadata(new, entries, revision, extras)
        _carry_previous_generation(folder, old_repomd, new)
        if options.sign_key is not None:
            from freight.trust import keys

            keys.detach_sign(new / "repomd.xml", options.sign_key, new / REPOMD_SIGNATURE)
            public = keys.export(options.sign_key.fingerprint)
            (new / REPOMD_KEY).write_text(public)
            write_atomic(folder / KEY_FILE, public)
        _fsync_tree(new)
        _hook("written")
        _swap(new, repodata)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    for href in pruned:
        (folder / href).unlink(missing_ok=True)
        for beside in _sbom_files(folder / href).values():
            beside.unlink(missing_ok=True)
        log.info("  pruned %s", href)
    if options.sbom:
        _place_sboms(folder, [e.href for e in entries])
    # The files as this publish saw them: one added or changed meanwhile makes the next publish a real one.
    _save_state(folder, entries, revision, saved.fingerprint(folder, {e.href: e.file_id for e in entries}, options.used()))
    return PublishStats(
        folder=str(folder),
        revision=revision,
        packages=len(entries),
        read=read,
        reused=len(entries) + len(pruned) - read,
        pruned=pruned,
        signed=options.sign_key is not None,
    )


# --- SBOMs beside the packages ----------------------------------------------


def _sbom_files(rpm: Path) -> dict[str, Path]:
    """Where a package's SBOMs go beside it: NEVRA.spdx.json and NEVRA.cdx.json, by the file each is in the RPM."""
    return {leaf: rpm.with_name(rpm.name.removesuffix(".rpm") + leaf.removeprefix("sbom")) for leaf in SBOM_FILES.values()}


def _place_sboms(folder: Path, hrefs: list[str]) -> None:
    """Each container package's SBOMs, as it carries them, beside it (for scanners that read a
    repository); only for packages newer than their SBOM files, so a republish reads no more."""
    from freight.trust import rpmfile

    placed = 0
    for href in hrefs:
        rpm = folder / href
        beside = _sbom_files(rpm)
        if all(p.exists() and p.stat().st_mtime >= rpm.stat().st_mtime for p in beside.values()):
            continue

        def wanted(hdr: Any) -> set[str]:
            name = rpmfile.container_name(hdr)
            return {f"{meta_dir(name)}/{leaf}" for leaf in SBOM_FILES.values()} if name else set()

        _, found = rpmfile.read_files(rpm, wanted)
        for path, data in found.items():
            write_atomic(beside[path.rsplit("/", 1)[1]], data.decode())
            placed += 1
    if placed:
        log.info("  placed %d SBOM files beside their packages", placed)


# --- reading packages --------------------------------------------------------


def _read_packages(folder: Path, to_read: list[tuple[str, FileId]]) -> list[_Entry]:
    """New or changed files: check each is whole (digests, embedded manifest), and read its metadata.

    Both read the whole file. createrepo_c reads in this thread and holds the
    GIL while it does, so the checks run beside it in threads whose payload
    hashing happens in child processes on the other cores (freight.trust.digest):
    the two reads of a file overlap instead of adding up. A check's verdict is
    awaited before its package counts, and a package that is not whole is
    refused with the check's reason, not createrepo_c's. Not worker processes
    for the checks themselves: a forked worker would inherit the publish lock
    and could outlive a killed publisher, keeping the lock taken (the hashing
    children get no descriptor but stdio).
    """
    from concurrent.futures import ThreadPoolExecutor

    import createrepo_c as cr

    from freight.trust import digest

    paths = [folder / href for href, _ in to_read]
    entries = []
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool, progress.bar("Reading packages", len(paths)) as bar:
        hashers = [digest.OnAnotherCore() for _ in paths]
        checks = [pool.submit(_check_whole, path, hasher) for path, hasher in zip(paths, hashers)]
        for (href, file_id), path, check, hasher in zip(to_read, paths, checks, hashers):
            hasher.started.wait()  # its hashing child runs before createrepo_c takes the GIL
            try:
                pkg, failure = cr.package_from_rpm(str(path), checksum_type=cr.SHA256, location_href=href, changelog_limit=10), None
            except Exception as exc:  # createrepo_c raises its own error type
                pkg, failure = None, exc
            whole = check.result()
            if not whole.ok:
                raise FreightError(f"{path}: {whole.reason}; remove or replace it, then publish again")
            if failure is not None:
                raise FreightError(f"{path}: cannot read the package: {failure}")
            log.debug("  read %s", href)
            entries.append(_Entry(href, pkg, file_id, whole.signer, whole.fixes))
            bar.advance()
    return entries


def _check_whole(path: Path, hasher: digest.OnAnotherCore) -> verify.Verdict:
    from freight.trust import verify

    try:
        return verify.verify_one(path, None, hasher)
    finally:
        hasher.started.set()  # a check that ended before hashing started no child


def _reusable(recorded: dict[str, Any] | None, file_id: FileId, previous: dict[str, Any]) -> Any:
    """The previous record of an unchanged file, or None when the file must be read."""
    if not recorded or FileId(**recorded["file"]) != file_id:
        return None
    pkg = previous.get(recorded["pkgid"])
    if pkg is None or pkg.location_href != recorded["href"]:
        return None
    return pkg


def _read_repomd(repodata: Path) -> Any:
    """The previous repomd.xml (a createrepo_c.Repomd), or None on a first publish or when it is unreadable."""
    import createrepo_c as cr

    if not (repodata / "repomd.xml").exists():
        return None
    try:
        return cr.Repomd(str(repodata / "repomd.xml"))
    except Exception as exc:  # createrepo_c raises its own error type
        log.warning("%s: unreadable (%s); writing the metadata from scratch", repodata / "repomd.xml", exc)
        return None


def _load_previous(folder: Path, repomd: Any) -> dict[str, Any]:
    """The previous metadata's packages by pkgId, with their file lists and changelogs.

    Empty when there is none or it cannot be read: then every package is read.
    """
    import createrepo_c as cr

    if repomd is None:
        return {}
    records = {r.type: folder / r.location_href for r in repomd.records}
    packages: dict[str, Any] = {}
    try:
        cr.xml_parse_primary(str(records["primary"]), pkgcb=lambda pkg: packages.__setitem__(pkg.pkgId, pkg), do_files=False)
        for kind, parse in (("filelists", cr.xml_parse_filelists), ("other", cr.xml_parse_other)):
            parse(str(records[kind]), newpkgcb=lambda pkgid, name, arch: packages.get(pkgid))
    except Exception as exc:  # a missing record, a missing file, or XML createrepo_c cannot parse
        log.warning("%s: the previous metadata cannot be read (%s); reading every package again", folder / "repodata", exc)
        return {}
    return packages


def _save_state(folder: Path, entries: list[_Entry], revision: str, fingerprint: dict[str, Any]) -> None:
    files = {
        e.href: {"href": e.href, "file": e.file_id._asdict(), "pkgid": e.pkg.pkgId, "signer": e.signer, "fixes": e.fixes}
        for e in entries
    }
    saved.save(folder, files, revision, fingerprint)


def _refuse_unsigned(folder: Path, entries: list[_Entry]) -> None:
    unsigned = [e.href for e in entries if not e.signer]
    if unsigned:
        shown = ", ".join(unsigned[:10]) + (f" and {len(unsigned) - 10} more" if len(unsigned) > 10 else "")
        raise FreightError(
            f"{folder}: {len(unsigned)} package(s) are not signed, and hosts with gpgcheck=1 refuse them: {shown}; "
            "sign them with 'freight sign --key KEYID', or publish with --allow-unsigned"
        )


def _prune(entries: list[_Entry], keep: int | None) -> tuple[list[_Entry], list[str]]:
    """Keep the newest KEEP versions of each container (per name and arch); other packages stay."""
    if keep is None:
        return entries, []
    import rpm

    groups: dict[tuple[str, str], list[_Entry]] = {}
    for e in entries:
        container = _container_of(e.pkg)
        if container is not None:
            groups.setdefault((e.pkg.name, e.pkg.arch), []).append(e)
    newest_first = functools.cmp_to_key(lambda a, b: rpm.labelCompare(_evr(b.pkg), _evr(a.pkg)))
    pruned: set[str] = set()
    for group in groups.values():
        group.sort(key=newest_first)
        pruned.update(e.href for e in group[keep:])
    return [e for e in entries if e.href not in pruned], sorted(pruned)


def _container_of(pkg: Any) -> str | None:
    from freight.trust import rpmfile

    for name, *_ in pkg.provides:
        if name.startswith(rpmfile.CONTAINER_PROVIDE) and name.endswith(")"):
            return name[len(rpmfile.CONTAINER_PROVIDE) : -1]
    return None


def _evr(pkg: Any) -> tuple[str, str, str]:
    return (str(pkg.epoch or "0"), pkg.version, pkg.release)


# --- writing metadata --------------------------------------------------------


def _write_metadata(out: Path, entries: list[_Entry], revision: str, extras: list[tuple[str, Path]]) -> None:
    """primary, filelists and other (gzip), the EXTRAS, and repomd.xml in OUT (no sqlite: dnf reads the XML)."""
    import createrepo_c as cr

    paths = {name: out / f"{name}.xml.gz" for name in _METADATA}
    writers = {
        "primary": cr.PrimaryXmlFile(str(paths["primary"])),
        "filelists": cr.FilelistsXmlFile(str(paths["filelists"])),
        "other": cr.OtherXmlFile(str(paths["other"])),
    }
    ordered = sorted(entries, key=lambda e: (e.pkg.name, e.pkg.arch, e.href))
    for writer in writers.values():
        writer.set_num_of_pkgs(len(ordered))
    for i, entry in enumerate(ordered):
        for writer in writers.values():
            writer.add_pkg(entry.pkg)
        if i == len(ordered) // 2:
            _hook("writing")
    for writer in writers.values():
        writer.close()
    repomd = cr.Repomd()
    repomd.set_revision(revision)
    for kind, path in [*((name, paths[name]) for name in _METADATA), *extras]:
        record = cr.RepomdRecord(kind, str(path))
        record.fill(cr.SHA256)
        record.rename_file()  # HASH-primary.xml.gz: a name never reused for other content
        repomd.set_record(record)
    (out / "repomd.xml").write_text(repomd.xml_dump())


def _next_revision(repomd: Any) -> str:
    """Seconds since the epoch, and always greater than the previous revision."""
    now = int(time.time())
    try:
        return str(max(now, int(repomd.revision) + 1))
    except (AttributeError, TypeError, ValueError):  # no previous repomd.xml, or a revision that is not a number
        return str(now)


def _link_extra_metadata(folder: Path, repomd: Any, new: Path) -> list[tuple[str, Path]]:
    """Link the previous metadata that publish does not make (advisories, comps …) into NEW."""
    repodata = folder / "repodata"
    extras = []
    for record in repomd.records if repomd is not None else []:
        src = folder / record.location_href
        if record.type in _REGENERATED or src.parent != repodata:
            continue
        if not src.is_file():
            log.warning("%s: repomd.xml names %s, which is missing; dropping that %s metadata", repodata, src.name, record.type)
            continue
        dest = new / src.name
        _link_or_copy(src, dest)
        extras.append((record.type, dest))
    return extras


def _with_container_advisories(new: Path, extras: list[tuple[str, Path]], entries: list[_Entry]) -> list[tuple[str, Path]]:
    """EXTRAS with an updateinfo that holds an advisory for each container whose rebuild fixed something."""
    from freight.publish import updateinfo

    advisories = [updateinfo.container_advisory(e.pkg, e.fixes) for e in entries if e.fixes]
    previous = next((path for kind, path in extras if kind == "updateinfo"), None)
    if not advisories and previous is None:
        return extras
    merged = new / "updateinfo.xml.gz"
    updateinfo.write_merged(merged, previous, advisories)
    if previous is not None:
        previous.unlink()  # the previous generation's copy is linked in again for readers mid-fetch
    for advisory in advisories:
        log.info("  advisory %s (%s%s)", advisory.id, advisory.type, f", {', '.join(advisory.cves)}" if advisory.cves else "")
    return [(kind, path) for kind, path in extras if kind != "updateinfo"] + [("updateinfo", merged)]


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def _carry_previous_generation(folder: Path, repomd: Any, new: Path) -> None:
    """Hard-link the files the previous repomd.xml names into the new repodata/, for readers mid-fetch."""
    for record in repomd.records if repomd is not None else []:
        src = folder / record.location_href
        dest = new / src.name
        if src.parent == folder / "repodata" and src.is_file() and not dest.exists():
            _link_or_copy(src, dest)


# --- the exchange ------------------------------------------------------------

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _swap(new: Path, repodata: Path) -> None:
    """Put NEW in place of REPODATA in one step; the old generation is removed afterwards."""
    if not repodata.exists():
        os.rename(new, repodata)
        fsync_dir(repodata.parent)
        return
    try:
        _exchange(new, repodata)
        shutil.rmtree(new)  # NEW now holds the previous generation
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
        # A filesystem without RENAME_EXCHANGE: two renames; _clear_leftovers
        # restores the old metadata if a publish dies between them.
        log.debug("renameat2(RENAME_EXCHANGE) unsupported here (%s); using two renames", exc)
        old = Path(tempfile.mkdtemp(prefix=_OLD_PREFIX, dir=repodata.parent))
        os.rename(repodata, old / "repodata")
        os.rename(new, repodata)
        shutil.rmtree(old)
    fsync_dir(repodata.parent)


def _exchange(a: Path, b: Path) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(b))


def _clear_leftovers(folder: Path) -> None:
    """Undo what a killed publish left: restore repodata/ if it died mid-swap, drop temporary folders."""
    repodata = folder / "repodata"
    for old in sorted(folder.glob(_OLD_PREFIX + "*")):
        if not repodata.exists() and (old / "repodata").is_dir():
            os.rename(old / "repodata", repodata)
            log.warning("%s: restored the metadata a killed publish had moved aside", repodata)
        shutil.rmtree(old, ignore_errors=True)
    for new in folder.glob(_NEW_PREFIX + "*"):
        log.info("  removing %s, left by a publish that did not finish", new.name)
        shutil.rmtree(new, ignore_errors=True)


# --- files, locks, hooks -----------------------------------------------------


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold the folder's publish lock; wait (and say so) while another publisher has it."""
    state = folder / STATE_DIR
    state.mkdir(exist_ok=True)
    path = state / LOCK_FILE
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            flog.step("Waiting for the publish of %s by %s to finish", folder, holder)
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fsync_dir(folder)


def _hook(point: str) -> None:
    """Test hook: `FREIGHT_PUBLISH_HOOK=POINT:kill|sleep=SECONDS` (see the module docstring)."""
    spec = os.environ.get(HOOK_ENV)
    if not spec:
        return
    where, _, action = spec.partition(":")
    if where != point:
        return
    log.debug("publish hook at %s: %s", point, action)
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action.startswith("sleep="):
        time.sleep(float(action.removeprefix("sleep=")))

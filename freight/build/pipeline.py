"""`freight build`: manifest -> lock -> staging root -> container RPM.

The build is a pipeline of small steps (stage, copy files, write metadata,
rpmbuild), each in its own module; this one decides whether to run it at all
(the up-to-date check), and guarantees that whatever happens, the output
folder gets a whole RPM or nothing and no staging root is left behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from freight import __version__, keys, lock, outdated, package, sign, stage
from freight import log as flog
from freight.dirs import cache_dir
from freight.errors import UsageError
from freight.manifest import Manifest
from freight.owners import Owners
from freight.stage import LockedPackage

log = logging.getLogger("freight.build")


@dataclass
class BuildOptions:
    outdir: Path
    update_lock: bool = False
    force: bool = False
    gpgcheck: bool = True
    keep_stage: Path | None = None
    sign_key: keys.SigningKey | None = None

    def signed_by(self) -> str:
        """A part of a build's inputs: signed by another key (or not at all) is another output."""
        return f"signed-by:{self.sign_key.fingerprint}" if self.sign_key else ""

    def finish(self) -> Callable[[Path], object] | None:
        """What runs on the RPM before it appears in the output folder: signing, when asked."""
        key = self.sign_key
        return None if key is None else lambda rpm: sign.sign_rpms([rpm], key)


@dataclass
class BuildResult:
    rpm: Path
    up_to_date: bool
    lock: lock.Lock | None  # a derivative of files only has none


@dataclass
class Staged:
    """What staging put into the buildroot, as the rest of the pipeline needs it."""

    packages: list[LockedPackage]  # installed by this build: its bundled() provides
    arch: str
    owners: Owners  # the names of the staged files' owners
    base: LockedPackage | None = None  # a layer's base container package
    base_requirement: str | None = None  # a layer's Requires on it
    newest_file_time: int = 0  # the latest file time the staged rpm database records (stage.newest_file_time)


def host_arch() -> str:
    import rpm

    return rpm.expandMacro("%{_arch}")


def build(manifest: Manifest, options: BuildOptions) -> BuildResult:
    """Build MANIFEST's RPM: a container, a layer on a base (`base` and `packages`),
    or a derivative of files only (freight.overlay); locked, and not at all when up to date."""
    if os.geteuid() != 0:
        raise UsageError("freight build needs root: rpm gives the staged files their owners (run it with sudo)")
    if options.sign_key is not None:
        keys.refuse_inside(options.outdir, "output folder")
    if manifest.base is not None and not manifest.packages:
        from freight import overlay

        return overlay.build(manifest, options)
    on_disk = lock.read(manifest.lock_path)
    version_release = f"{manifest.version}-{manifest.release}"
    existing = None if options.update_lock or on_disk is None else on_disk.counting(version_release)
    if existing is not None:
        lock.check_matches(manifest, existing)

    repo_digests = {r.name: lock.repomd_digest(r) for r in manifest.repos}
    if existing is not None and not options.force and options.keep_stage is None:
        rpm_path = rpm_path_for(manifest, existing.release(manifest.release), _arch(manifest, existing), options)
        if Stamp.current(rpm_path, _inputs_digest(manifest, existing, repo_digests, options)):
            return BuildResult(rpm=rpm_path, up_to_date=True, lock=existing)

    if not options.gpgcheck:
        log.warning("signature checks are OFF (--nogpgcheck): packages are installed without verifying who made them")

    with staging(manifest, options) as buildroot:
        if manifest.base is not None:
            from freight import layer

            staged = layer.stage(manifest, buildroot, options, existing)
        else:
            staged = _stage_image(manifest, buildroot, options, existing)
        if existing is not None:
            new_lock = existing
        elif on_disk is not None:
            new_lock = on_disk.updated(
                manifest.resolution_inputs(),
                repo_digests,
                staged.packages,
                version_release,
                staged.base,
                fixes=lambda: outdated.fixed_between(manifest, on_disk.packages, staged.packages),
            )
        else:
            new_lock = lock.Lock(
                inputs=manifest.resolution_inputs(), repos=repo_digests, packages=staged.packages, base=staged.base, serial_of=version_release
            )
        write_metadata(manifest, buildroot, new_lock)
        flog.step("Packing %s", manifest.package_name)
        built = package.build_rpm(
            manifest,
            new_lock.release(manifest.release),
            staged.packages,
            buildroot,
            options.outdir.resolve(),
            max(new_lock.source_date_epoch, staged.newest_file_time),
            staged.arch,
            owners=staged.owners,
            base_requirement=staged.base_requirement,
            finish=options.finish(),
        )
        if new_lock != on_disk:  # new, updated, or counting for a new version
            lock.write(manifest.lock_path, new_lock)
            flog.step("Wrote %s (%d packages)", manifest.lock_path.name, len(new_lock.pinned))
        Stamp.record(built, _inputs_digest(manifest, new_lock, repo_digests, options))
    flog.step("Built %s", built)
    return BuildResult(rpm=built, up_to_date=False, lock=new_lock)


def _arch(manifest: Manifest, the_lock: lock.Lock) -> str:
    """A layer has its base's architecture; a container the manifest's, or the build host's."""
    if the_lock.base is not None:
        return the_lock.base.arch
    return manifest.data.get("arch") or host_arch()


def _stage_image(manifest: Manifest, buildroot: Path, options: BuildOptions, existing: lock.Lock | None) -> Staged:
    """A container's whole root filesystem: its packages installed with dnf, then its files."""
    image_root = buildroot / package.image_dir(manifest.name).lstrip("/")
    image_root.mkdir(parents=True)
    flog.step("Resolving %s from %s", ", ".join(manifest.packages), ", ".join(r.name for r in manifest.repos))
    installed = stage.install(
        stage.StageRequest.for_manifest(
            manifest,
            image_root,
            gpgcheck=options.gpgcheck,
            locked=[asdict(p) for p in existing.packages] if existing else None,
        )
    )
    copy_files(manifest, image_root)
    return Staged(
        packages=installed.packages,
        arch=manifest.data.get("arch") or host_arch(),
        owners=Owners.of(image_root),
        newest_file_time=installed.newest_file_time,
    )


@contextmanager
def staging(manifest: Manifest, options: BuildOptions) -> Iterator[Path]:
    """A fresh buildroot in freight's cache, removed afterwards whatever happens (or kept on request)."""
    workdir = cache_dir() / "stage"
    workdir.mkdir(parents=True, exist_ok=True)
    buildroot = Path(tempfile.mkdtemp(prefix=f"{manifest.name}.", dir=workdir))
    try:
        yield buildroot
    finally:
        if options.keep_stage is not None:
            options.keep_stage.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(options.keep_stage, ignore_errors=True)
            os.replace(buildroot, options.keep_stage)
            log.info("staging root kept at %s", options.keep_stage)
        else:
            shutil.rmtree(buildroot, ignore_errors=True)


def copy_files(manifest: Manifest, image_root: Path) -> None:
    """Copy the manifest's extra files in; like every image builder, they belong to root."""
    for copy in manifest.files:
        dest = image_root / copy.dest.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if copy.src.is_dir():
            shutil.copytree(copy.src, dest, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(copy.src, dest, follow_symlinks=False)
        if copy.mode is not None:
            os.chmod(dest, copy.mode)


def write_metadata(manifest: Manifest, buildroot: Path, the_lock: lock.Lock | None) -> None:
    """The manifest and lock travel in the RPM as JSON, for the host hook and for audits."""
    meta = buildroot / package.meta_dir(manifest.name).lstrip("/")
    meta.mkdir(parents=True)
    (meta / "manifest.json").write_text(manifest.to_json())
    if the_lock is not None:
        (meta / "lock.json").write_text(the_lock.to_json())


def _inputs_digest(manifest: Manifest, the_lock: lock.Lock, repo_digests: dict[str, str], options: BuildOptions) -> str:
    return inputs_digest(manifest, the_lock.to_json(), json.dumps(repo_digests, sort_keys=True), options.signed_by())


def inputs_digest(manifest: Manifest, *parts: str) -> str:
    """Everything a build's output depends on, in one digest: freight, the manifest, its files, PARTS."""
    h = hashlib.sha256()
    h.update(__version__.encode())
    h.update(manifest.to_json().encode())
    for part in parts:
        h.update(part.encode())
    h.update((package.templates_dir() / "container.spec.j2").read_bytes())
    for copy in manifest.files:
        for path in sorted(copy.src.rglob("*")) if copy.src.is_dir() else [copy.src]:
            h.update(str(path.relative_to(copy.src.parent)).encode())
            if path.is_file():
                h.update(path.read_bytes())
    return h.hexdigest()


def rpm_path_for(manifest: Manifest, release: str, arch: str, options: BuildOptions) -> Path:
    return options.outdir.resolve() / f"{manifest.package_name}-{manifest.version}-{release}.{arch}.rpm"


def _identity(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


@dataclass
class Stamp:
    """What the last build of an RPM was made from, kept in the cache (not beside the RPM)."""

    inputs: str
    size: int
    mtime_ns: int
    inode: int

    @staticmethod
    def _path(rpm_path: Path) -> Path:
        key = hashlib.sha256(str(rpm_path).encode()).hexdigest()[:24]
        return cache_dir() / "builds" / f"{key}.json"

    @classmethod
    def current(cls, rpm_path: Path, inputs: str) -> bool:
        """Whether RPM_PATH is still the one built from INPUTS (and says so)."""
        try:
            stamp = cls(**json.loads(cls._path(rpm_path).read_text()))
            fresh = stamp.inputs == inputs and (stamp.size, stamp.mtime_ns, stamp.inode) == _identity(rpm_path)
        except (OSError, ValueError, TypeError):
            return False
        if fresh:
            flog.step("%s is up to date", rpm_path.name)
        return fresh

    @classmethod
    def record(cls, rpm_path: Path, inputs: str) -> None:
        path = cls._path(rpm_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(cls(inputs, *_identity(rpm_path)))))

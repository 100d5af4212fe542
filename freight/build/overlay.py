"""Building a derivative: a configuration overlay on a base container.

A derivative (`base: NAME` in its manifest) ships only its own files, under
/var/lib/freight/overlays/NAME2/, and requires the base container's package.
No dnf run is needed and nothing of the base is copied: on a host, its
instance is a clone of the base's image with the overlay laid over it. (A
derivative that also installs packages is a layer: freight.layer.)
"""

from __future__ import annotations

from freight.build import package, sbom
from freight.build.options import BuildOptions, BuildResult
from freight.build.staging import copy_files, staging, write_metadata
from freight.build.stamp import Stamp, inputs_digest, rpm_path_for
from freight.common import log as flog
from freight.common.errors import UsageError
from freight.manifest.load import Manifest
from freight.manifest.lock import HistoryEntry
from freight.model import paths
from freight.model.owners import Owners

ARCH = "noarch"  # configuration files only


def build(manifest: Manifest, options: BuildOptions) -> BuildResult:
    if options.update_lock:
        raise UsageError(f"{manifest.path}: a derivative of files only has no packages, so no lock to update")
    rpm_path = rpm_path_for(manifest, manifest.release, ARCH, options)
    options.refuse_to_unsign(rpm_path)
    digest = inputs_digest(manifest, manifest.base_requirement or "", options.signed_by())
    if not options.force and options.keep_stage is None and Stamp.current(rpm_path, digest):
        return BuildResult(rpm=rpm_path, up_to_date=True, lock=None)
    with staging(manifest, options) as buildroot:
        overlay_root = buildroot / paths.overlay_dir(manifest.name).lstrip("/")
        overlay_root.mkdir(parents=True)
        copy_files(manifest, overlay_root)
        source_date = _source_date(manifest)
        write_metadata(manifest, buildroot, None, sbom.subject_of(manifest, None, manifest.release, ARCH, source_date, {}))
        flog.step("Packing %s, a derivative of %s", manifest.package_name, manifest.base)
        built = package.build_rpm(
            manifest,
            manifest.release,
            [],
            buildroot,
            options.outdir.resolve(),
            source_date,
            ARCH,
            owners=Owners.root_only(),
            base_requirement=manifest.base_requirement,
            history=[_own_version(manifest, source_date)],
            finish=options.finish(),
        )
        Stamp.record(built, digest)
    flog.step("Built %s", built)
    return BuildResult(rpm=built, up_to_date=False, lock=None)


def _own_version(manifest: Manifest, source_date: int) -> HistoryEntry:
    """The derivative's %changelog entry: it has no lock, so its history is its own version."""
    over = f"configuration over {manifest.base}" + (f" ({manifest.base_requirement})" if manifest.base_requirement else "")
    files = f"{len(manifest.files)} file{'s' if len(manifest.files) != 1 else ''}"
    return HistoryEntry(serial=0, evr=f"{manifest.version}-{manifest.release}", date=source_date, changes=[f"{over}: {files}"])


def _source_date(manifest: Manifest) -> int:
    """The newest of the manifest and its files: rebuilding unchanged sources gives the same timestamps."""
    paths = [manifest.path]
    for copy in manifest.files:
        paths += [copy.src, *copy.src.rglob("*")] if copy.src.is_dir() else [copy.src]
    return int(max(p.lstat().st_mtime for p in paths))

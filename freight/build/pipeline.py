"""`freight build`: manifest -> lock -> staging root -> container RPM.

The build is a pipeline of small steps (stage, copy files, write metadata,
rpmbuild), each in its own module; this one decides whether to run it at all
(the up-to-date check), and guarantees that whatever happens, the output
folder gets a whole RPM or nothing and no staging root is left behind.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, replace
from pathlib import Path

from freight.build import exclude, fixes, package, sbom, stage
from freight.build.options import BuildOptions, BuildResult, Staged, host_arch
from freight.build.staging import copy_files, staging, write_metadata
from freight.build.stamp import Stamp, inputs_digest, rpm_path_for
from freight.common import log as flog
from freight.common.errors import UsageError
from freight.manifest import lock
from freight.manifest.load import Manifest, Repo
from freight.model import paths
from freight.model.owners import Owners
from freight.repos import dnfsetup
from freight.trust import keys

log = logging.getLogger("freight.build.pipeline")


def build(manifest: Manifest, options: BuildOptions) -> BuildResult:
    """Build MANIFEST's RPM: a container, a layer on a base (`base` and `packages`),
    or a derivative of files only (freight.build.overlay); locked, and not at all when up to date."""
    if os.geteuid() != 0:
        raise UsageError("freight build needs root: rpm gives the staged files their owners (run it with sudo)")
    if options.sign_key is not None:
        keys.refuse_inside(options.outdir, "output folder")
    if manifest.base is not None and not manifest.packages:
        from freight.build import overlay

        return overlay.build(manifest, options)
    on_disk = lock.read(manifest.lock_path)
    version_release = f"{manifest.version}-{manifest.release}"
    existing = None if options.update_lock or on_disk is None else on_disk.counting(version_release)
    if existing is not None:
        lock.check_matches(manifest, existing)

    repo_digests = {r.name: lock.repomd_digest(r) for r in _expanded_repos(manifest)}
    if existing is not None and not options.force and options.keep_stage is None:
        rpm_path = rpm_path_for(manifest, existing.release(manifest.release), _arch(manifest, existing), options)
        options.refuse_to_unsign(rpm_path)  # before any work, where the output's name is known
        if Stamp.current(rpm_path, _inputs_digest(manifest, existing, repo_digests, options)):
            return BuildResult(rpm=rpm_path, up_to_date=True, lock=existing)

    if not options.gpgcheck:
        log.warning("signature checks are OFF (--nogpgcheck): packages are installed without verifying who made them")

    with staging(manifest, options) as buildroot:
        if manifest.base is not None:
            from freight.build import layer

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
                fixes=lambda: fixes.fixed_between(manifest, on_disk.packages, staged.packages),
            )
        else:
            new_lock = lock.Lock(
                inputs=manifest.resolution_inputs(), repos=repo_digests, packages=staged.packages, base=staged.base, serial_of=version_release
            )
        release = new_lock.release(manifest.release)
        options.refuse_to_unsign(rpm_path_for(manifest, release, staged.arch, options))
        source_date = max(new_lock.source_date_epoch, staged.newest_file_time)
        new_lock = new_lock.with_history(f"{manifest.version}-{release}", source_date, on_disk)
        write_metadata(manifest, buildroot, new_lock, sbom.subject_of(manifest, new_lock, release, staged.arch, source_date, staged.facts))
        flog.step("Packing %s", manifest.package_name)
        built = package.build_rpm(
            manifest,
            release,
            staged.packages,
            buildroot,
            options.outdir.resolve(),
            source_date,
            staged.arch,
            owners=staged.owners,
            base_requirement=staged.base_requirement,
            history=new_lock.history,
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
    image_root = buildroot / paths.image_dir(manifest.name).lstrip("/")
    image_root.mkdir(parents=True)
    flog.step("Resolving %s from %s", ", ".join(manifest.packages), ", ".join(r.name for r in manifest.repos))
    installed = stage.install(
        stage.request_for(
            manifest,
            image_root,
            gpgcheck=options.gpgcheck,
            locked=[asdict(p) for p in existing.packages] if existing else None,
        )
    )
    exclude.apply(image_root, manifest.data.get("exclude_paths", []))
    copy_files(manifest, image_root)
    return Staged(
        packages=installed.packages,
        arch=manifest.data.get("arch") or host_arch(),
        owners=Owners.of(image_root),
        newest_file_time=installed.newest_file_time,
        facts=installed.facts,
    )


def _inputs_digest(manifest: Manifest, the_lock: lock.Lock, repo_digests: dict[str, str], options: BuildOptions) -> str:
    return inputs_digest(manifest, the_lock.to_json(), json.dumps(repo_digests, sort_keys=True), options.signed_by())


def _expanded_repos(manifest: Manifest) -> list[Repo]:
    """The manifest's repositories with dnf's variables ($releasever, $basearch) in their URLs
    replaced, as dnf replaces them: freight fetches their repomd.xml itself."""
    values = dnfsetup.variables(manifest.data.get("releasever"), manifest.data.get("arch"))
    return [replace(r, baseurl=dnfsetup.expand(r.baseurl, values)) for r in manifest.repos]

"""The build's scratch root, and what freight itself puts into it.

A staging root lives in freight's cache and is removed whatever happens (or
kept on request); the manifest's extra files and the metadata the container
carries (manifest and lock as JSON) go into it before rpmbuild packs it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from freight.build import sbom
from freight.build.options import BuildOptions
from freight.common import log as flog
from freight.common.dirs import cache_dir
from freight.manifest.load import Manifest
from freight.manifest.lock import Lock
from freight.model import paths

log = logging.getLogger("freight.build.staging")


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


def write_metadata(manifest: Manifest, buildroot: Path, the_lock: Lock | None, bill: sbom.Subject) -> None:
    """The manifest, lock and SBOM travel in the RPM as JSON, for the host hook, scanners and audits."""
    meta = buildroot / paths.meta_dir(manifest.name).lstrip("/")
    meta.mkdir(parents=True)
    (meta / paths.MANIFEST_FILE).write_text(manifest.to_json())
    if the_lock is not None:
        (meta / paths.LOCK_FILE).write_text(the_lock.to_json())
    flog.step("Writing the SBOM (%d packages)", len(bill.components))
    sbom.write_files(meta, bill)

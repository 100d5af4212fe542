"""Staging a layer: a derivative that installs packages on top of its base container.

A layer is a diff against one exact build of its base. The base container's
package is fetched with dnf (from the manifest's repositories, signature-checked
like any package) and its image laid down with rpm, as a host has it; the
derivative's packages are installed with dnf on top of that image, whose own
rpm database dnf loads as the installed system; the manifest's files are copied
on top, as for any container. The payload is only what differs from the base
image: new and changed files (the rpm database among them), with their owners
and modes, under /var/lib/freight/overlays/NAME2/. That diff means nothing over
any other build of the base, so the RPM requires exactly the one it was made on.

What an overlay cannot express, a path deleted or turned into something of
another type, is refused here rather than shipped wrong.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, replace
from pathlib import Path

from freight.build import exclude, tree
from freight.build.options import BuildOptions, Staged
from freight.build.stage import fetch, install, request_for
from freight.build.staging import copy_files
from freight.common import log as flog
from freight.common.errors import FreightError, UsageError, at_most
from freight.common.run import run
from freight.manifest.load import Manifest
from freight.manifest.lock import Lock, LockedPackage
from freight.model import paths
from freight.model.owners import Owners, RecordedOwners
from freight.model.paths import RPM_DBPATH
from freight.repos.dnfsetup import DnfRequest

# How many inexpressible paths a refusal names before it counts the rest.


def stage(manifest: Manifest, buildroot: Path, options: BuildOptions, existing: Lock | None) -> Staged:
    """Put the layer's overlay (and nothing else) into BUILDROOT; the base image is staged beside it and removed."""
    assert manifest.base is not None
    if existing is not None and existing.base is None:
        raise UsageError(f"{manifest.lock_path} pins no base container; run 'freight build --update-lock {manifest.path}'")
    with tempfile.TemporaryDirectory(prefix=f"{manifest.name}.base.", dir=buildroot.parent) as work_s:
        work = Path(work_s)
        request = request_for(
            manifest, work / "fetch", gpgcheck=options.gpgcheck, locked=[asdict(existing.base)] if existing and existing.base else None
        )
        base, base_rpm = _fetch_base(manifest, request)
        flog.step("Laying down %s", base.nevra)
        image = _lay_down(base, base_rpm, manifest.base, work / "root")
        before = tree.snapshot(image)

        flog.step("Resolving %s on top of %s", ", ".join(manifest.packages), base.nevra)
        installed = install(
            replace(
                request,
                root=str(image),
                packages=manifest.packages,
                locked=[asdict(p) for p in existing.packages] if existing else None,
                on_installed=True,
            )
        )
        exclude.apply(image, manifest.data.get("exclude_paths", []))
        copy_files(manifest, image)
        changes = tree.Changes.between(before, tree.snapshot(image, before))
        if changes.inexpressible:
            raise UsageError(_refusal(manifest, base, changes.inexpressible))
        overlay_root = buildroot / paths.overlay_dir(manifest.name).lstrip("/")
        overlay_root.mkdir(parents=True)
        tree.copy_out(image, changes.changed, overlay_root)
        flog.step("The layer adds or changes %d of %d paths", len(changes.changed), len(before))
        owners = Owners.of(image)
    return Staged(
        packages=installed.packages,
        arch=base.arch,
        owners=owners,
        base=base,
        base_requirement=f"{base.name} = {base.evr}",
        newest_file_time=installed.newest_file_time,
        facts=installed.facts,
    )


def _fetch_base(manifest: Manifest, request: DnfRequest) -> tuple[LockedPackage, Path]:
    """The base container's package: the locked one, else the newest that satisfies base_version."""
    requirement = manifest.base_requirement
    assert requirement is not None
    flog.step("Fetching the base, %s", requirement)
    try:
        [(base, path)] = fetch(replace(request, packages=[requirement]))
    except UsageError as exc:
        raise UsageError(
            f"{manifest.path}: base: {exc}\nA layer is built on its base container's package, "
            "which must be in one of the manifest's repositories."
        ) from None
    return base, path


def _lay_down(base: LockedPackage, rpm_file: Path, name: str, root: Path) -> Path:
    """Install the base package under ROOT as a host would; return its image, owned as on a host.

    No dependencies and no scriptlets: the build machine is not a host. rpm names
    owners with ROOT's /etc/passwd, which does not exist, so the files then get
    the owners the base recorded (freight.model.owners), as the
    host hook gives them. The signature was checked by dnf when the package was fetched."""
    env = {"RPM_FORCE_DEBIAN": "1"}
    run(["rpm", "-i", "--root", root, "--dbpath", RPM_DBPATH, "--nodeps", "--noscripts", "--nosignature", rpm_file], env=env)
    image = root / paths.image_dir(name).lstrip("/")
    if not image.is_dir():
        raise FreightError(f"{rpm_file}: {base.nevra} holds no image at {paths.image_dir(name)}; is it a freight container?")
    RecordedOwners.load(root / paths.meta_dir(name).lstrip("/")).apply(image)
    return image


def _refusal(manifest: Manifest, base: LockedPackage, paths: list[str]) -> str:
    shown = at_most(paths, 20)
    files = " and copying the manifest's files" if manifest.files else ""
    return (
        f"{manifest.path}: a layer can only add and change files, but installing {', '.join(manifest.packages)}"
        f"{files} on {base.nevra} leaves what an overlay cannot express:\n  "
        + "\n  ".join(shown)
        + "\nBuild a container of its own (without 'base') instead."
    )

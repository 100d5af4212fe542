"""`freight sbom`: a container's software bill of materials, for scanners.

Every container RPM carries its SBOM (see freight.build.sbom); this prints it
from the RPM file, from the installed container (no network, no build side:
a host reads the file the package installed), or, for a manifest, the one a
build of its lock carries, from the repositories' metadata.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from freight.commands import add
from freight.common.errors import FreightError, UsageError
from freight.model import paths

FORMATS = tuple(paths.SBOM_FILES)


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add(
        sub,
        "sbom",
        common,
        description=(
            "Print a container's software bill of materials: SPDX 2.3 JSON (the default) or CycloneDX 1.6 JSON. "
            "The container is the root package; every bundled package is listed with its EVR, arch, license, "
            "vendor, source RPM, purl, the checksum its lock pins and the repository it came from, with what "
            "requires what, and a layer's or derivative's base. From an RPM file or an installed container the "
            "SBOM is the one the package carries (written at build time); from a manifest, the one a build of "
            "its lock carries, read from the repositories' metadata. Exit 0, or 1 when there is none, 2 for bad input."
        ),
    )
    p.add_argument("source", nargs="?", type=Path, metavar="RPM|MANIFEST", help="a container RPM file, or a manifest with its lock")
    p.add_argument("--installed", metavar="NAME", help="instead: the SBOM of the container NAME installed on this host")
    p.add_argument("--root", type=Path, metavar="DIR", help="with --installed: the host's root directory (default /)")
    p.add_argument("--format", choices=FORMATS, default="spdx", help="spdx (SPDX 2.3 JSON, the default) or cyclonedx (CycloneDX 1.6 JSON)")
    p.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE (atomically) instead of standard output")
    p.set_defaults(func=_sbom)


def _sbom(args: argparse.Namespace) -> int:
    if args.installed and args.source:
        raise UsageError("name an RPM or manifest, or --installed NAME, not both")
    if args.root and not args.installed:
        raise UsageError("--root goes with --installed")
    if args.installed:
        text = _installed(args.installed, args.format, args.root)
    elif args.source is None:
        raise UsageError("name a container RPM or manifest, or --installed NAME")
    elif _is_rpm(args.source):
        text = _from_rpm(args.source, args.format)
    else:
        text = _from_manifest(args.source, args.format)
    if args.output:
        from freight.common.files import write_atomic

        write_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return 0


def _is_rpm(path: Path) -> bool:
    from freight.trust.rpmfile import is_rpm

    return path.suffix == ".rpm" or is_rpm(path)


def _installed(name: str, fmt: str, root: Path | None) -> str:
    from freight.host.installed import HostView

    host = HostView.open(root)
    container = host.container(name)
    text = host.meta_text(container.name, paths.SBOM_FILES[fmt])
    if text is None:
        raise FreightError(f"{container.nevra} carries no SBOM ({host.meta_file(container.name, paths.SBOM_FILES[fmt])}): it was built by a freight that wrote none; rebuild it")
    return text


def _from_rpm(path: Path, fmt: str) -> str:
    from freight.trust import rpmfile

    def wanted(hdr: object) -> set[str]:
        name = rpmfile.container_name(hdr)
        return {f"{paths.meta_dir(name)}/{paths.SBOM_FILES[fmt]}"} if name else set()

    hdr, found = rpmfile.read_files(path, wanted)
    if rpmfile.container_name(hdr) is None:
        raise UsageError(f"{path}: not a container package (it provides no freight-container(NAME))")
    if not found:
        raise FreightError(f"{path}: carries no {fmt} SBOM: it was built by a freight that wrote none; rebuild it")
    return next(iter(found.values())).decode()


def _from_manifest(path: Path, fmt: str) -> str:
    from freight.build import sbom
    from freight.manifest.load import load

    return sbom.write(sbom.for_manifest(load(path)), fmt)

"""Wrapping a staged root filesystem into the container RPM with rpmbuild.

rpmbuild packs the staging tree in place (`--buildroot`, no %install), from
an explicit file list: every file and directory is named, so ownership can be
taken from the container's own /etc/passwd rather than the build host's.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, TextIO

from freight import __version__
from freight.build import changelog, rpmnames
from freight.common import progress
from freight.common.errors import FreightError, at_most
from freight.common.run import run
from freight.common.templates import render
from freight.manifest.load import Manifest
from freight.manifest.lock import HistoryEntry, LockedPackage
from freight.model import capabilities
from freight.model.owners import FILE_NAME as OWNERS_FILE
from freight.model.owners import Owners, RecordedOwners
from freight.model.paths import IMAGES_DIR, META_DIR, OVERLAYS_DIR, RPM_DBPATH, image_dir, meta_dir, overlay_dir

# zstd at its default level, on all cores: the floor freight is measured against is `zstd -T0`.
PAYLOAD = "w3T0.zstdio"
# rpm's classic group for system software: rpmlint wants a Group, and none of the newer lists fits better.
GROUP = "Applications/System"
BUILD_NAME_FMT = "%%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm"
class Listed(NamedTuple):
    paths: int
    with_capabilities: int
    fifos: int  # named pipes, which some rpm versions cannot install (freight.model.rpmbugs)
    bytes: int  # of the regular files, each inode once: the room a host needs for them
    refused: list[tuple[str, str]]  # (path, why): names rpm cannot carry, left out of the list
    decoy: rpmnames.Decoy  # what rpmbuild's --buildroot must go through for the list's patterns


def write_filelist(buildroot: Path, owners: Owners, out: Path, recorded: RecordedOwners) -> Listed:
    """List every path under the buildroot; return how many, and how many carry capabilities.
    Owners are named as OWNERS says and noted in RECORDED (see freight.model.owners), file
    capabilities with `%caps()`.

    Top-down, each folder's files (and symlinks to folders) in name order before its
    subfolders, as os.walk would give them; written with plain strings and os.scandir,
    because a root filesystem has tens of thousands of paths."""
    with out.open("w") as f:
        listing = _Listing(f, owners, recorded)
        count = _list_dir(listing, os.fspath(buildroot), "")
        return Listed(count, listing.with_capabilities, listing.fifos, sum(listing.sizes.values()), listing.refused, listing.decoy)


@dataclass
class _Listing:
    out: TextIO
    owners: Owners
    recorded: RecordedOwners
    with_capabilities: int = 0
    fifos: int = 0
    sizes: dict[int, int] = field(default_factory=dict)  # inode -> size, so hard links count once
    decoy: rpmnames.Decoy = field(default_factory=rpmnames.Decoy)
    refused: list[tuple[str, str]] = field(default_factory=list)

    def add(self, path: str, st: os.stat_result, rel: str, prefix: str = "") -> None:
        """One line of the file list (PREFIX: %dir), with its owner and capabilities."""
        why = rpmnames.refusal(rel)
        if why is not None:
            self.refused.append((rel, why))
            return
        names = self.owners.names(st, rel)
        if names is not None:
            self.recorded.paths[rel] = names
            if st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                self.recorded.modes[rel] = stat.S_IMODE(st.st_mode)
            prefix += f"%attr(-,{names[0]},{names[1]}) "
        if stat.S_ISREG(st.st_mode) and capabilities.raw(path) is not None:
            prefix += f"%caps({capabilities.text_of(path)}) "
            self.with_capabilities += 1
        elif stat.S_ISFIFO(st.st_mode):
            self.fifos += 1
        if stat.S_ISREG(st.st_mode):
            self.sizes[st.st_ino] = st.st_size
        self.write(rel, prefix)

    def write(self, rel: str, prefix: str = "") -> None:
        written = rpmnames.pattern(rel)
        self.decoy.see(written)
        self.out.write(f"{prefix}{written}\n")


def _list_dir(listing: _Listing, path: str, rel_dir: str) -> int:
    """Write REL_DIR's line (when the RPM owns it), its entries', then recurse; return the count."""
    count = 0
    if rel_dir and _owned_dir(rel_dir):
        listing.add(path, os.lstat(path), rel_dir, "%dir ")
        count += 1
    try:
        with os.scandir(path) as it:
            entries = list(it)
    except OSError:
        return count  # os.walk skipped folders it could not read; so does this
    files, links, subdirs = [], [], []
    for entry in entries:
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if not is_dir:
            files.append(entry.name)
        elif entry.is_symlink():
            links.append(entry.name)  # a symlink to a folder is listed, not entered
        else:
            subdirs.append(entry.name)
    for name in sorted(files) + sorted(links):
        st = os.lstat(f"{path}/{name}")
        if stat.S_ISSOCK(st.st_mode):
            continue  # a socket is runtime state, never content
        listing.add(f"{path}/{name}", st, f"{rel_dir}/{name}")
        count += 1
    for name in sorted(subdirs):
        count += _list_dir(listing, f"{path}/{name}", f"{rel_dir}/{name}")
    return count


def _owned_dir(rel: str) -> bool:
    """The RPM owns its image and metadata trees, not the host's /var, /usr …"""
    return any(rel.startswith(top + "/") for top in (IMAGES_DIR, OVERLAYS_DIR, META_DIR))


def network_args(data: dict) -> list[str]:
    """What %pre tells the hook of the machine's network and ports, so it takes the address and ports
    before rpm writes a file (an exhausted subnet or a taken port stops the install). A derivative
    names its base: its network may be the base's. A machine on another network with no ports
    needs neither, and its %pre stays as before. The words are those of a checked manifest: no
    shell quoting is needed."""
    run = data.get("run", {})
    if not (data.get("base") or run.get("ports") or str(run.get("network", "")).startswith("bridge")):
        return []
    args = [f"--network={run['network']}"] if "network" in run else []
    args += [f"--port={port}" for port in run.get("ports", [])]
    return args + ([f"--base={data['base']}"] if data.get("base") else [])


def build_rpm(
    manifest: Manifest,
    release: str,
    bundled: list[LockedPackage],
    buildroot: Path,
    outdir: Path,
    source_date_epoch: int,
    arch: str,
    *,
    owners: Owners,
    base_requirement: str | None = None,
    history: list[HistoryEntry],
    finish: Callable[[Path], object] | None = None,
) -> Path:
    """rpmbuild the staged BUILDROOT into OUTDIR; the RPM appears there whole or not at all.

    OWNERS names the files' owners: the container's own /etc/passwd and /etc/group
    (for a layer, its base's as its packages left them), never the build host's.
    A derivative Requires BASE_REQUIREMENT. HISTORY (oldest first) becomes the %changelog. FINISH (signing) runs on the RPM
    before it is moved into OUTDIR, so no unfinished package is ever visible there."""
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="freight-rpmbuild-", dir=buildroot.parent) as top_s, tempfile.TemporaryDirectory(
        prefix=f".{manifest.package_name}.", dir=outdir
    ) as out_tmp_s:
        top = Path(top_s)
        filelist = top / "files.list"
        recorded = RecordedOwners()
        listed = write_filelist(buildroot, owners, filelist, recorded)
        if listed.refused:
            raise FreightError(_refusal_message(manifest, buildroot, listed.refused))
        count = listed.paths + _record_owners(manifest, buildroot, recorded, filelist)
        spec = top / f"{manifest.package_name}.spec"
        spec.write_text(
            render(
                "container.spec.j2",
                freight_version=__version__,
                manifest_file=manifest.path.name,
                package_name=manifest.package_name,
                name=manifest.name,
                version=manifest.version,
                release=release,
                summary=manifest.data["summary"],
                license=manifest.data["license"],
                group=GROUP,
                url=manifest.data.get("url"),
                vendor=manifest.data.get("vendor"),
                packager=manifest.data.get("packager"),
                description=_description(manifest),
                changelog=changelog.render(history, manifest.data.get("packager")),
                arch=arch,
                bundled=sorted(bundled, key=lambda p: p.name),
                payload=PAYLOAD,
                base_requirement=base_requirement,
                filelist=filelist,
                file_capabilities=listed.with_capabilities > 0,
                fifos=listed.fifos > 0,
                image_bytes=listed.bytes,
                network_args=network_args(manifest.data),
            )
        )
        with progress.spinner(f"Packing {count} files with rpmbuild"), listed.decoy.link(buildroot, top) as root_link:
            proc = run(
                [
                    "rpmbuild", "-bb", "--noclean",
                    "--buildroot", root_link,
                    "--define", f"_topdir {top}",
                    "--define", f"_rpmdir {out_tmp_s}",
                    "--define", f"_build_name_fmt {BUILD_NAME_FMT}",
                    spec,
                ],
                env={"SOURCE_DATE_EPOCH": str(source_date_epoch), "MAGIC": _magic_db()},
            )
        written = [line.split(":", 1)[1].strip() for line in proc.stdout.splitlines() if line.startswith("Wrote:")]
        if not written:
            raise FreightError(f"rpmbuild wrote no package:\n{proc.stdout[-2000:]}")
        final = outdir / Path(written[-1]).name
        if finish is not None:
            finish(Path(written[-1]))
        os.replace(written[-1], final)
    return final


def _description(manifest: Manifest) -> str:
    """The manifest's description (or summary), then what kind of freight package this is; wrapped."""
    own = manifest.data.get("description", manifest.data["summary"])
    if manifest.base is not None:
        about = (
            f"This package is a freight derivative of the container {manifest.base}: its payload is "
            f"the configuration laid over {manifest.base}'s root filesystem, under {overlay_dir(manifest.name)}."
        )
    else:
        about = (
            f"This package is a freight container: its payload is the root filesystem of the "
            f"container {manifest.name} under {image_dir(manifest.name)}, with its own rpm database."
        )
    return changelog.wrap_description(f"{own.strip()}\n\n{about}")


def _record_owners(manifest: Manifest, buildroot: Path, recorded: RecordedOwners, filelist: Path) -> int:
    """Write the owners of the image's (or overlay's) paths into the package's metadata, and list it."""
    tree = overlay_dir(manifest.name) if manifest.base is not None else image_dir(manifest.name)
    rel = f"{meta_dir(manifest.name)}/{OWNERS_FILE}"
    (buildroot / rel.lstrip("/")).write_text(recorded.under(tree).to_json())
    with filelist.open("a") as f:
        f.write(f"{rpmnames.pattern(rel)}\n")
    return 1


def _refusal_message(manifest: Manifest, buildroot: Path, refused: list[tuple[str, str]]) -> str:
    """Name each path rpm cannot carry, where it came from, and how to leave it out."""
    image = image_dir(manifest.name)

    def line(refusal: tuple[str, str]) -> str:
        rel, why = refusal
        inside = rel[len(image):] if rel.startswith(image + "/") else rel
        return f"{inside!r}: {why}; {_origin(manifest, buildroot / image.lstrip('/'), inside)}"

    return (
        f"cannot package {len(refused)} path{'s' if len(refused) != 1 else ''} of {manifest.name}:\n  "
        + "\n  ".join(at_most(refused, _REFUSALS_SHOWN, line))
        + "\nLeave paths out with 'exclude_paths: [GLOB, ...]' in the manifest (applied after the packages are installed)."
    )


_REFUSALS_SHOWN = 10


def _origin(manifest: Manifest, image_root: Path, inside: str) -> str:
    """Which package installed INSIDE, by the image's own rpm database, or that none did."""
    for copy in manifest.files:
        if inside == copy.dest or inside.startswith(copy.dest.rstrip("/") + "/"):
            return f"the manifest's files copy it to {copy.dest} (rename it at its source)"
    if not (image_root / RPM_DBPATH.lstrip("/")).is_dir():
        return "it is in the layer's changes"
    owner = run(
        ["rpm", "--root", image_root, "--dbpath", RPM_DBPATH, "-qf", "--qf", "%{NAME}\n", inside],
        check=False,
    )
    if owner.returncode == 0 and owner.stdout.strip():
        return f"installed by the package {owner.stdout.split()[0]}"
    return "no package owns it (a package's scriptlet made it)"


def _magic_db() -> str:
    """The libmagic database rpmbuild classifies files with (see freight.build.magic)."""
    from freight.build.magic import small_magic_db

    return str(small_magic_db())

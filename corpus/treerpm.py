"""An RPM of a folder, exactly as it lies: the test packages that ship odd names and real distributions' trees.

Every path is listed with freight's own naming (freight.build.rpmnames), so
a test package can hold whatever a container must then carry; its folders
are its own (%dir), conffiles are %config(noreplace), owners are by name.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from freight.build import rpmnames

Owner = Callable[[os.stat_result], tuple[str, str]]


def by_build_host(st: os.stat_result) -> tuple[str, str]:
    import grp
    import pwd

    return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name


@dataclass
class Package:
    name: str
    version: str
    release: str = "1"
    epoch: int | None = None
    arch: str = "noarch"
    summary: str = "a test package"
    requires: list[str] = field(default_factory=list)
    requires_pre: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    conffiles: set[str] = field(default_factory=set)  # absolute paths
    post: str | None = None
    post_lua: bool = False  # rpm's own Lua runs with nothing installed in the root yet


def build(tree: Path, package: Package, outdir: Path, owner: Owner = by_build_host) -> Path:
    """rpmbuild TREE (the buildroot, in place) as PACKAGE into OUTDIR; return the RPM."""
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="treerpm.") as top_s:
        return _build(tree, package, outdir, owner, Path(top_s))


def _build(tree: Path, package: Package, outdir: Path, owner: Owner, top: Path) -> Path:
    decoy = rpmnames.Decoy()
    with (top / "files.list").open("w") as out:
        for rel, st in _walk(tree):
            written = rpmnames.pattern(rel)
            decoy.see(written)
            user, group = owner(st)
            prefix = f"%attr(-,{user},{group}) "
            if os.path.isdir(tree / rel.lstrip("/")) and not os.path.islink(tree / rel.lstrip("/")):
                prefix += "%dir "
            elif rel in package.conffiles:
                prefix += "%config(noreplace) "
            out.write(f"{prefix}{written}\n")
    spec = top / f"{package.name}.spec"
    spec.write_text(_spec(package, top / "files.list"))
    with decoy.link(tree, top) as root_link:
        subprocess.run(
            [
                "rpmbuild", "-bb", "--noclean", "--quiet", "--buildroot", root_link,
                "--define", f"_topdir {top}", "--define", f"_rpmdir {outdir}",
                "--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm", spec,
            ],
            check=True, capture_output=True, env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"},
        )
    return outdir / f"{package.name}-{package.version}-{package.release}.{package.arch}.rpm"


def _walk(tree: Path) -> Iterable[tuple[str, os.stat_result]]:
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in sorted(dirnames) + sorted(filenames):
            path = os.path.join(dirpath, name)
            yield "/" + os.path.relpath(path, tree), os.lstat(path)


def _spec(p: Package, filelist: Path) -> str:
    lines = [
        f"Name: {p.name}", f"Version: {p.version}", f"Release: {p.release}", f"Summary: {p.summary.replace('%', '%%')}",
        "License: test", f"BuildArch: {p.arch}", "AutoReqProv: no",
    ]
    if p.epoch is not None:
        lines.append(f"Epoch: {p.epoch}")
    lines += [f"Requires: {r}" for r in p.requires] + [f"Requires(pre): {r}" for r in p.requires_pre]
    lines += [f"Provides: {r}" for r in p.provides]
    lines += [
        "%global _build_id_links none", "%global debug_package %{nil}", "%global __os_install_post %{nil}",
        "%global __spec_install_post %{nil}", "%global __check_files %{nil}", "%global _binary_payload w3T0.zstdio",
        "%global use_source_date_epoch_as_buildtime 1", "%global _buildhost test",
        "%description", p.summary.replace("%", "%%"),
    ]
    if p.post:
        lines += ["%post -p <lua>" if p.post_lua else "%post", p.post]
    lines += [f"%files -f {filelist}"]
    return "\n".join(lines) + "\n"

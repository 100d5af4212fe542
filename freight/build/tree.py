"""What a root filesystem holds, what changed in it, and copying the changes out.

A layer ships only what its packages changed in its base's image. Comparing
two states of one tree says what that is: every path's type, permission bits,
owner, and its content (size and sha256 for a file, the target of a link, the
device number of a device node). Directories count by their attributes only;
timestamps do not count at all (rpm sets them from headers, and the container
RPM clamps them).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_KINDS = {
    stat.S_IFREG: "a file",
    stat.S_IFDIR: "a directory",
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a named pipe",
    stat.S_IFSOCK: "a socket",
}


@dataclass(frozen=True)
class Entry:
    kind: int  # stat.S_IFMT
    mode: int  # permission bits, with setuid, setgid and sticky
    uid: int
    gid: int
    size: int
    content: str | int | None  # sha256 of a file, target of a link, st_rdev of a device
    # Where the content was read from: a later snapshot trusts the digest of an
    # unchanged inode (same inode and ctime, which no write or chmod leaves alone).
    stamp: tuple[int, int] = field(compare=False)

    @property
    def what(self) -> str:
        return _KINDS.get(self.kind, "a special file")


Snapshot = dict[str, Entry]  # relative path -> entry


def snapshot(root: Path, previous: Snapshot | None = None) -> Snapshot:
    """Every path under ROOT (not ROOT itself); file digests of unchanged inodes come from PREVIOUS."""
    previous = previous or {}
    out: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            out[rel] = _entry(path, st, previous.get(rel))
    return out


def _entry(path: str, st: os.stat_result, before: Entry | None) -> Entry:
    kind = stat.S_IFMT(st.st_mode)
    stamp = (st.st_ino, st.st_ctime_ns)
    content: str | int | None = None
    if kind == stat.S_IFREG:
        if before is not None and before.stamp == stamp and before.kind == kind:
            content = before.content
        else:
            with open(path, "rb") as f:
                content = hashlib.file_digest(f, "sha256").hexdigest()
    elif kind == stat.S_IFLNK:
        content = os.readlink(path)
    elif kind in (stat.S_IFCHR, stat.S_IFBLK):
        content = st.st_rdev
    size = st.st_size if kind == stat.S_IFREG else 0
    return Entry(kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, size, content, stamp)


@dataclass
class Changes:
    """How AFTER differs from BEFORE: what an overlay can carry, and what it cannot."""

    changed: list[str]  # new or changed paths, parents before children
    inexpressible: list[str]  # "PATH (why)": deleted paths, and paths whose type changed

    @classmethod
    def between(cls, before: Snapshot, after: Snapshot) -> Changes:
        changed, inexpressible = [], []
        for rel in sorted(after):
            old, new = before.get(rel), after[rel]
            if old is not None and old.kind != new.kind:
                inexpressible.append(f"/{rel} ({old.what}, now {new.what})")
            elif old != new:
                changed.append(rel)
        gone = set(before) - set(after)
        for rel in gone:
            if os.path.dirname(rel) not in gone:  # a deleted directory stands for what it held
                inexpressible.append(f"/{rel} (deleted)")
        return cls(changed, sorted(inexpressible))


def copy_out(src_root: Path, paths: Iterable[str], dest_root: Path) -> None:
    """Copy PATHS (relative, parents listed before children) from SRC_ROOT into DEST_ROOT.

    Everything keeps its type, owner and mode, and files that were hard links
    of each other stay so. A directory that is only on the way to a copied path
    gets the attributes it has in SRC_ROOT, so laying DEST_ROOT over the tree
    SRC_ROOT came from changes no directory.
    """
    links: dict[tuple[int, int], Path] = {}
    for rel in paths:
        src, dest = src_root / rel, dest_root / rel
        _make_parents(src_root, Path(rel).parent, dest_root)
        st = os.lstat(src)
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFDIR:
            dest.mkdir(exist_ok=True)
        elif kind == stat.S_IFLNK:
            os.symlink(os.readlink(src), dest)
        elif kind == stat.S_IFREG:
            first = links.setdefault((st.st_dev, st.st_ino), dest) if st.st_nlink > 1 else dest
            if first != dest:
                os.link(first, dest)
                continue
            shutil.copyfile(src, dest)
        elif kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO):
            os.mknod(dest, st.st_mode, st.st_rdev)
        else:
            continue  # a socket is runtime state, never content
        _copy_attributes(src, st, dest)


def _make_parents(src_root: Path, rel: Path, dest_root: Path) -> None:
    missing = []
    while rel != Path(".") and not (dest_root / rel).is_dir():
        missing.append(rel)
        rel = rel.parent
    for parent in reversed(missing):
        (dest_root / parent).mkdir()
        _copy_attributes(src_root / parent, os.lstat(src_root / parent), dest_root / parent)


def _copy_attributes(src: Path, st: os.stat_result, dest: Path) -> None:
    """Owner first (chown clears setuid bits), then mode, times and extended attributes."""
    os.lchown(dest, st.st_uid, st.st_gid)
    shutil.copystat(src, dest, follow_symlinks=False)

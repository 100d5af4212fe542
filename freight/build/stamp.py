"""Whether an RPM on disk is still what its inputs make, and where it goes.

A rebuild with an unchanged manifest, lock and repositories is a no-op: the
stamp of the last build (kept in the cache, not beside the RPM) records the
digest of every input and the identity of the file it wrote.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from freight import __version__
from freight.build.options import BuildOptions
from freight.common import log as flog
from freight.common.dirs import cache_dir
from freight.common.templates import template_path
from freight.manifest.load import Manifest


def inputs_digest(manifest: Manifest, *parts: str) -> str:
    """Everything a build's output depends on, in one digest: freight, the manifest, its files, PARTS."""
    h = hashlib.sha256()
    h.update(__version__.encode())
    h.update(manifest.to_json().encode())
    for part in parts:
        h.update(part.encode())
    h.update(template_path("container.spec.j2").read_bytes())
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

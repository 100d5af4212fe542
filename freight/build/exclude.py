"""Leaving paths out of a container: the manifest's `exclude_paths`, applied once its packages are installed.

The way out for what a package ships but the container should not carry:
documentation, locales, or a name rpm cannot hold (freight.build.rpmnames).
A glob is matched against the whole path inside the container, `*` crossing
'/' as in fnmatch; a folder that matches goes with everything in it.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
from pathlib import Path

from freight.common import log as flog


def apply(root: Path, globs: list[str]) -> int:
    """Remove what GLOBS match below ROOT (a container's image); return how many paths matched."""
    if not globs:
        return 0
    matches = re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs)).match
    removed = 0
    for dirpath, dirnames, filenames in os.walk(root):
        inside = "/" + os.path.relpath(dirpath, root) if dirpath != os.fspath(root) else ""
        for name in filenames:
            if matches(f"{inside}/{name}"):
                os.unlink(os.path.join(dirpath, name))
                removed += 1
        for name in list(dirnames):
            if matches(f"{inside}/{name}"):
                path = os.path.join(dirpath, name)
                if os.path.islink(path):
                    os.unlink(path)
                else:
                    shutil.rmtree(path)
                dirnames.remove(name)  # gone, with all it held
                removed += 1
    flog.step("Left out %d path%s (exclude_paths)", removed, "" if removed == 1 else "s")
    return removed

"""Where freight keeps its state on the machine that runs it.

The cache (dnf metadata and packages, staging roots) is kept between builds so
that a second build downloads nothing; it lives outside any source tree.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$FREIGHT_CACHE_DIR`, else `$XDG_CACHE_HOME/freight`, else `~/.cache/freight`."""
    if env := os.environ.get("FREIGHT_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "freight"

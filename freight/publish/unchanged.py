"""Whether a publish would change nothing, told without opening a package or loading createrepo_c.

A publish of a folder whose package files, metadata and options are those the
last publish left is a no-op: the metadata would be rewritten identical but
for its revision. The last publish records a fingerprint of what it left
(every package file's identity, the digests of repomd.xml, its signature and
the exported key, and the options it ran with); the next one compares a fresh
fingerprint, which costs a stat per package and hashing three small files,
and stops there when they agree. Anything else (a package added, touched or
removed, repodata/ changed by hand, another key, another --keep) publishes
as usual.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from freight.publish.files import KEY_FILE, REPOMD_KEY, REPOMD_SIGNATURE


def fingerprint(folder: Path, files: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """What a publish of FOLDER depends on: FILES (href -> identity, as JSON), the metadata's digests, OPTIONS."""
    repodata = folder / "repodata"
    return {
        "files": files,
        "metadata": {name: _digest(repodata / name) for name in ("repomd.xml", REPOMD_SIGNATURE, REPOMD_KEY)},
        "key": _digest(folder / KEY_FILE),
        "options": options,
    }


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None

"""Naming one exact path in an rpm file list, whatever characters it holds.

rpmbuild reads a file list line through four interpreters before it looks at
the disk (rpm 4.18: build/files.c, rpmio/rpmglob.c): macros are expanded when
the list is read, and again when the path is joined to the buildroot; a path
that looks like a glob is then split into words by popt (quotes, backslashes,
white space) and globbed with brace expansion, whose scan for `{` knows
neither brackets nor backslashes. A path that does not look like a glob is
taken as it is after the two expansions.

So a path with a character any of them gives meaning to is written as a glob
that can match nothing but itself: each such character becomes a bracket
expression of that one character (`[*]`, `[?]`, `[[]`, `[]]`, `[%%%%]`,
`[\\"]` …), and a space becomes `[[:space:]]`, the only white space rpm takes
in a name. Brace expansion is switched off by a decoy: rpmbuild is given the
buildroot through a symlink named by enough `{` that no `}` or `,` in any
path can close them, and glob treats a brace expression that never closes as
none at all. glob then returns the name it read from the disk, so the header
holds it byte for byte (`rpm -qpl` equals the tree; tests/test_names.py).

What rpm itself refuses, no file list can carry: control characters (rpmbuild
bans 0x01-0x1f and DEL) and names that are not valid UTF-8 (refused when the
header is written). `refusal()` says which, so the build can stop with a
message that names the path before rpmbuild is run.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from freight.common.errors import FreightError

# A character in a name that rpmbuild would read as syntax, and what stands for it.
_ATOMS = {
    " ": "[[:space:]]",
    '"': '[\\"]',  # popt would start a quoted word; backslash-escaped for popt
    "'": "[\\']",
    "\\": "[\\\\\\\\]",  # popt halves it, and inside brackets glob reads \\ as one backslash
    "%": "[%%%%]",  # two macro expansions
    "*": "[*]",
    "?": "[?]",
    "[": "[[]",
    "]": "[]]",
    "{": "[{]",
    "}": "[}]",
}
_SPECIAL = re.compile("[" + re.escape("".join(_ATOMS)) + "]")
# Control characters, and the surrogates os.fsdecode makes of bytes that are not UTF-8.
_REFUSED = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_BRACE_SCAN = re.compile("[{},]")


def refusal(rel: str) -> str | None:
    """Why rpm cannot carry the name REL (as os.fsdecode gives it), or None when it can."""
    found = _REFUSED.search(rel)
    if found is None:
        return None
    char = found.group()
    if "\ud800" <= char <= "\udfff":
        return "it is not valid UTF-8, and rpm refuses such names in a package header"
    return f"it holds the control character {ord(char):#04x}, which rpmbuild refuses in file names"


def pattern(rel: str) -> str:
    """REL as a file list names it: itself, or a glob that matches only it (see the module's docstring)."""
    if _SPECIAL.search(rel) is None:
        return rel
    return _SPECIAL.sub(lambda m: _ATOMS[m.group()], rel)


class Decoy:
    """The symlink to the buildroot whose run of `{` keeps brace expansion off for every pattern seen."""

    def __init__(self) -> None:
        self.depth = 1

    def see(self, written: str) -> None:
        """Count a pattern's `}` and `,`: each must meet an open brace of the decoy's."""
        if "[" not in written or _BRACE_SCAN.search(written) is None:
            return  # not a glob, or nothing brace expansion reacts to
        opened = 0
        for m in _BRACE_SCAN.finditer(written):
            if m.group() == "{":
                opened += 1
            else:
                # glob stops at a `}` or `,` met with no brace left open; the decoy
                # keeps one open beyond the deepest deficit.
                self.depth = max(self.depth, 2 - opened)
                if m.group() == "}":
                    opened -= 1

    @contextmanager
    def link(self, buildroot: Path, near: Path) -> Iterator[Path]:
        """The buildroot as rpmbuild must be given it: through the decoy, made in NEAR when
        its path is plain (rpmbuild reads the buildroot's path through the same interpreters),
        else in a new folder under /tmp; removed afterwards."""
        if self.depth > 255:  # NAME_MAX
            raise FreightError("cannot package: a path holds more unmatched '}' than rpm's file list can be kept from expanding")
        plain = pattern(str(near)) == str(near) and _BRACE_SCAN.search(str(near)) is None
        folder = near if plain else Path(tempfile.mkdtemp(prefix="freight-names-", dir="/tmp"))
        link = folder / ("{" * self.depth)
        os.symlink(buildroot.resolve(), link)
        try:
            yield link
        finally:
            link.unlink()
            if not plain:
                folder.rmdir()

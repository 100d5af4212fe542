"""A container RPM's %changelog and description, as rpm tools expect them.

The %changelog comes from the lock's history (freight.manifest.lock), one
entry per VERSION-RELEASE, newest first, each naming the packages it changed
and the advisories and CVEs it brought in: `rpm -q --changelog
container-NAME | grep CVE-…` then answers as it does for a distribution
package. Every line is wrapped to 79 columns (rpmlint's limit, and what
`rpm -qi` readers see), and '%' is doubled, since rpmbuild expands macros in
the whole spec.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterable
from typing import Any

from freight.manifest.lock import HistoryEntry

WIDTH = 79
DEFAULT_AUTHOR = "freight"  # the changelog's author when the manifest names no packager


def render(history: Iterable[HistoryEntry], author: str | None) -> str:
    """The body of %changelog for HISTORY (oldest first, as the lock keeps it)."""
    return "\n\n".join(_entry(entry, author or DEFAULT_AUTHOR) for entry in sorted(history, key=_newest_first))


def _newest_first(entry: HistoryEntry) -> tuple[int, int]:
    return (-entry.date, -entry.serial)


def _entry(entry: HistoryEntry, author: str) -> str:
    day = time.strftime("%a %b %d %Y", time.gmtime(entry.date))
    lines = [f"* {day} {author} - {entry.evr}"]
    lines += [_item(change) for change in entry.changes]
    lines += [_item(_fix(fix)) for fix in entry.fixes]
    return _escape("\n".join(lines))


def _fix(fix: dict[str, Any]) -> str:
    """One advisory: 'FEDORA-2026-1 (security, important) for demo-www 1.1-1: CVE-2026-0001'."""
    kind = ", ".join(x for x in (fix.get("type"), fix.get("severity")) if x and x != "None")
    what = f"{fix.get('id', '?')}{f' ({kind})' if kind else ''}"
    if fix.get("package"):
        what += f" for {fix['package']} {fix.get('to', '')}".rstrip()
    cves = fix.get("cves") or []
    return f"{what}: {', '.join(cves)}" if cves else what


def _item(text: str) -> str:
    return textwrap.fill(text, WIDTH, initial_indent="- ", subsequent_indent="  ", break_on_hyphens=False, break_long_words=False)


def _escape(text: str) -> str:
    return text.replace("%", "%%")


def wrap_description(text: str) -> str:
    """TEXT with each paragraph filled to 79 columns; indented lines (lists, code) are kept as they are
    unless too long, then wrapped with their indent. A word longer than a line (a path, a URL) is
    never cut: rpmlint then says so, and the manifest is where to fix it."""
    out = []
    for paragraph in text.strip().split("\n\n"):
        lines = paragraph.splitlines()
        if any(line[:1].isspace() for line in lines):
            out.append("\n".join(_fill_indented(line) for line in lines))
        else:
            out.append(textwrap.fill(" ".join(line.strip() for line in lines), WIDTH, break_on_hyphens=False, break_long_words=False))
    return "\n\n".join(out)


def _fill_indented(line: str) -> str:
    if len(line) <= WIDTH:
        return line
    indent = line[: len(line) - len(line.lstrip())]
    return textwrap.fill(line.strip(), WIDTH, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False, break_long_words=False)

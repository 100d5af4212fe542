"""The bench's output: one table for people, the same as JSON for machines and history."""

from __future__ import annotations

import json
import platform
import re
from dataclasses import asdict
from pathlib import Path

from bench.figures import Row
from freight import __version__
from freight.common.run import CommandError, run

_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)*")
TOOLS = {
    "rpm": ["rpm", "--version"],
    "rpmbuild": ["rpmbuild", "--version"],
    "dnf": ["dnf", "--version"],
    "createrepo_c": ["createrepo_c", "--version"],
    "zstd": ["zstd", "--version"],
    "tar": ["tar", "--version"],
}


def tool_versions() -> dict[str, str]:
    """The version number each tool's --version prints first ("unknown" when it prints none)."""
    versions = {"python": platform.python_version(), "freight": __version__, "kernel": platform.release()}
    for name, argv in TOOLS.items():
        try:
            found = _VERSION.search(run(argv).stdout)
        except CommandError:
            found = None
        versions[name] = found.group(0) if found else "unknown"
    return versions


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} {unit}" if value < 10 else f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"


def _status(row: Row) -> str:
    return "-" if row.ok is None else "ok" if row.ok else "MISS"


def table(rows: list[Row]) -> str:
    head = ("figure", "freight", "floor", "ratio", "goal", "result")
    body = [
        (r.figure, _num(r.freight, r.unit), _num(r.floor, r.unit), "-" if r.ratio is None else f"{r.ratio:.2f}", r.goal, _status(r))
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    fmt = "  ".join(f"{{:{'<' if i in (0, 4) else '>'}{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths)), *(fmt.format(*line) for line in body)]
    notes = [f"  {r.figure}: floor = {r.floor_is}" + (f"; {r.note}" if r.note else "") if r.floor_is else f"  {r.figure}: {r.note}" for r in rows]
    return "\n".join(lines + ["", "notes:", *notes])


def write_json(path: Path, rows: list[Row], meta: dict) -> None:
    doc = {
        **meta,
        "figures": [{**asdict(r), "ratio": r.ratio, "result": _status(r)} for r in rows],
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)

"""A machine's resource limits: the words the manifest and `freight set` use, and systemd's.

The manifest's `run.limits` and `freight set NAME KEY=VALUE` speak of the same
five limits; both end up as properties of the machine's own slice. The mapping
and the checks live here, below the build side (which validates manifests)
and the host side (which writes the slice's drop-ins), so the two agree on
what `150%` or `512M` means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from freight.common.errors import UsageError

MEMORY_RE = re.compile(r"^[0-9]+[KMGT]?$")
PERCENT_RE = re.compile(r"^[0-9]+%$")


UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
INFINITY = 2**64 - 1  # what systemd's D-Bus properties say for "no limit"


@dataclass(frozen=True)
class Limit:
    """One limit: its manifest key, the slice property that carries it, and what a value must be."""

    key: str
    directive: str  # the unit-file directive, as written in a drop-in
    expects: str  # what a value must look like, for error messages
    dbus: str  # the slice's D-Bus property that shows it in force

    def as_dbus(self, value: str) -> int:
        """VALUE (as `parse` gives it) as the slice's D-Bus property says it once systemd took it."""
        if value == "infinity":
            return INFINITY
        if self.key == "memory":
            return int(value.rstrip("KMGT")) * UNITS[value[-1] if value[-1] in UNITS else ""]
        if self.key == "cpu_quota":
            return int(value[:-1]) * 10_000  # CPUQuotaPerSecUSec: 100% is one second of CPU a second
        return int(value)

    def parse(self, value: str | int) -> str:
        """VALUE as the directive takes it; UsageError naming the key when it does not parse."""
        text = str(value).strip()
        if text == "infinity" and self.key in ("memory", "tasks", "cpu_quota"):
            return "infinity"
        ok = {
            "memory": lambda: bool(MEMORY_RE.match(text)),
            "cpu_weight": lambda: text.isdigit() and 1 <= int(text) <= 10000,
            "io_weight": lambda: text.isdigit() and 1 <= int(text) <= 10000,
            "tasks": lambda: text.isdigit() and int(text) >= 1,
            "cpu_quota": lambda: bool(PERCENT_RE.match(text)) and int(text[:-1]) >= 1,
        }[self.key]()
        if not ok:
            raise UsageError(f"{self.key}={value}: expected {self.expects}")
        return text


LIMITS: dict[str, Limit] = {
    limit.key: limit
    for limit in (
        Limit("memory", "MemoryMax", "a size such as 512M or 2G (K, M, G, T), or infinity", "MemoryMax"),
        Limit("cpu_weight", "CPUWeight", "a CPU weight from 1 to 10000", "CPUWeight"),
        Limit("cpu_quota", "CPUQuota", "a share of one CPU such as 50% or 150% (at least 1%), or infinity", "CPUQuotaPerSecUSec"),
        Limit("tasks", "TasksMax", "a number of tasks, at least 1, or infinity", "TasksMax"),
        Limit("io_weight", "IOWeight", "an I/O weight from 1 to 10000", "IOWeight"),
    )
}


def parse_assignment(text: str) -> tuple[str, str]:
    """`memory=512M` -> ('memory', '512M'); a clear UsageError for anything else."""
    key, eq, value = text.partition("=")
    key = key.strip()
    if not eq or not key:
        raise UsageError(f"{text!r}: expected KEY=VALUE with KEY one of {', '.join(LIMITS)}")
    limit = LIMITS.get(key)
    if limit is None:
        raise UsageError(f"{key}: not a limit freight sets (one of {', '.join(LIMITS)})")
    return key, limit.parse(value)


def parse_assignments(texts: list[str]) -> dict[str, str]:
    """Every KEY=VALUE of `freight set`, checked all before anything changes; the last of a key wins."""
    if not texts:
        raise UsageError(f"no limit given: expected KEY=VALUE with KEY one of {', '.join(LIMITS)}")
    return dict(parse_assignment(t) for t in texts)


def from_manifest(limits: dict[str, str | int] | None) -> dict[str, str]:
    """A manifest's `run.limits`, keys freight knows only (the schema has checked them)."""
    return {key: LIMITS[key].parse(value) for key, value in (limits or {}).items() if key in LIMITS}


def directives(values: dict[str, str]) -> list[str]:
    """KEY -> VALUE as the drop-in lines that say them (`MemoryMax=512M`), in the table's order."""
    return [f"{limit.directive}={values[key]}" for key, limit in LIMITS.items() if key in values]


def read_dropin(text: str) -> dict[str, str]:
    """The limits a drop-in freight wrote says, by manifest key (the reverse of `directives`)."""
    by_directive = {limit.directive: key for key, limit in LIMITS.items()}
    out = {}
    for line in text.splitlines():
        name, eq, value = line.partition("=")
        if eq and name.strip() in by_directive:
            out[by_directive[name.strip()]] = value.strip()
    return out

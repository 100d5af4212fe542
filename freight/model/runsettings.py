"""How a container runs, where a derivative's settings meet its base's.

The manifest's `run` section travels in the RPM; the host merges a
derivative's over its base's when it makes the derivative's machine, and the
build checks the merged result, so the rule lives here, below both.
"""

from __future__ import annotations

from typing import Any


def merge_run(base: dict[str, Any], derived: dict[str, Any]) -> dict[str, Any]:
    """A derivative's `run` over its base's: its keys win, mappings (environment, limits)
    merge key by key, and lists (state, ports, after) keep the base's entries and add
    the derivative's — except `command`, which is one command and is replaced whole."""
    merged = dict(base)
    for key, value in derived.items():
        old = merged.get(key)
        if key == "command":
            merged[key] = list(value)
        elif isinstance(old, dict) and isinstance(value, dict):
            merged[key] = merge_run(old, value)
        elif isinstance(old, list) and isinstance(value, list):
            merged[key] = old + [item for item in value if item not in old]
        else:
            merged[key] = value
    if derived.get("boot"):
        merged.pop("command", None)  # booting replaces the base's command
    if derived.get("command"):
        merged.pop("boot", None)
    return merged

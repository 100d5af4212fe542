"""How a container runs, where a derivative's settings meet its base's.

The manifest's `run` section travels in the RPM; the host merges a
derivative's over its base's when it makes the derivative's machine, and the
build checks the merged result, so the rule lives here, below both.
"""

from __future__ import annotations

from typing import Any

# What `run.network` is when a manifest built now says nothing; the build writes it into the RPM.
BUILT_NETWORK = "bridge"
# What it is for a package that records none: built before bridges, it ran on a veth link.
RECORDED_DEFAULT = "veth"
DEFAULT_BRIDGE = "default"  # the network `bridge` means, as host.conf names it
# Replaced whole by a derivative, not appended to: a derivative's command is one command.
REPLACED = ("command",)
# A derivative's own, never its base's: its machine runs beside the base's, which keeps its host ports.
OWN = ("ports",)


def network_of(run: dict[str, Any]) -> str:
    """The network a machine runs on, as nspawn or freight names it (see RECORDED_DEFAULT)."""
    return str(run.get("network", RECORDED_DEFAULT))


def bridge_of(run: dict[str, Any]) -> str | None:
    """The freight network (host.conf's name) a bridged machine joins; None when it is not bridged."""
    network = network_of(run)
    if network == "bridge":
        return DEFAULT_BRIDGE
    if network.startswith("bridge:"):
        return network.partition(":")[2]
    return None


def merge_run(base: dict[str, Any], derived: dict[str, Any]) -> dict[str, Any]:
    """A derivative's `run` over its base's: its keys win, mappings (environment, limits)
    merge key by key, and lists (state, after) keep the base's entries and add the
    derivative's — except `command` (REPLACED), which is replaced whole, and `ports`
    (OWN), which are the derivative's alone: the base's machine keeps publishing its own."""
    merged = {key: value for key, value in base.items() if key not in OWN}
    for key, value in derived.items():
        old = merged.get(key)
        if key in REPLACED:
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

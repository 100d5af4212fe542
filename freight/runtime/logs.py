"""`freight logs`: a machine's payload, its exec'd processes and freight's events for it, in one stream.

All three are in the host's journal: the payload's output as the output of
systemd-nspawn@NAME.service and what exec'd processes log as theirs (both in
the machine's slice, so one `_SYSTEMD_SLICE=` match finds them, across
restarts), and freight's events with `FREIGHT_MACHINE=NAME` (freight.host.events).
journalctl does the reading and following; freight only says where each line came from.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from freight.common.run import lines
from freight.host import events, nspawn


def journalctl(name: str, follow: bool, count: int | None, since: str | None) -> list[str]:
    argv = ["journalctl", "--no-pager", "--quiet", "-o", "json",
            f"_SYSTEMD_SLICE={nspawn.slice_name(name)}", "+", f"{events.FIELD}={name}"]
    if follow:
        argv.append("--follow")
    if count is not None:
        argv += ["--lines", str(count)]
    if since:
        argv += ["--since", since]
    return argv


def source(entry: dict[str, Any]) -> str:
    """payload, exec or freight."""
    if entry.get(events.FIELD):
        return "freight"
    return "exec" if str(entry.get("_SYSTEMD_UNIT", "")).startswith("freight-exec-") else "payload"


def message(entry: dict[str, Any]) -> str:
    raw = entry.get("MESSAGE", "")
    if isinstance(raw, list):  # journalctl writes a message that is not UTF-8 as its bytes
        return bytes(raw).decode(errors="replace")
    return str(raw)


def entries(name: str, follow: bool = False, count: int | None = None, since: str | None = None) -> Iterator[dict[str, str]]:
    """{time, source, message} for each journal entry of NAME, oldest first."""
    for line in lines(journalctl(name, follow, count, since)):
        if not line.strip():
            continue
        entry = json.loads(line)
        when = datetime.fromtimestamp(int(entry["__REALTIME_TIMESTAMP"]) / 1e6, timezone.utc)
        yield {"time": when.isoformat(timespec="microseconds"), "source": source(entry), "message": message(entry)}


def text(item: dict[str, str]) -> str:
    return f"{item['time'][:23]} {item['source']:<7} {item['message']}"

"""Start-up figures (issue 14): how long freight's quick commands take against a bare python.

`freight --version`, `freight list` and `freight status NAME` each run back
to back with `python3 -I -c pass`, the least any Python command can cost,
so the ratios of one run compare like with like. list and status run against
a host of three machines made from freight-host's own registry records in
the bench's work folder (`$FREIGHT_HOST_CONF`, dir storage, no systemd): the
host side's real code, without booting anything. A no-op `freight publish`
of the published bench folder is the fourth figure; its goal is absolute.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.figures import Row, _seconds, figure
from bench.measure import Sample, timed
from bench.workload import Workload

FLOOR = [sys.executable, "-I", "-c", "pass"]
MACHINES = ("web", "db", "cache")
MIN_REPS = 10  # each command takes tens of milliseconds: more repetitions than the builds get
_LOCATIONS = ("images", "machines", "lib", "containers", "overlays", "protected", "nspawn", "units")


def _host(work: Path) -> dict[str, str]:
    """A host of MACHINES under WORK; the environment that points freight at it."""
    from freight.host.registry import ImageRecord, InstanceRecord, Registry

    root = work / "startup-host"
    conf = root / "host.conf"
    if not conf.exists():
        lines = ["[host]", "storage = dir", f"lock_file = {root / 'lock'}"]
        lines += [f"{name}_dir = {root / name}" for name in _LOCATIONS]
        registry = Registry(root / "lib" / "registry")
        for name in MACHINES:
            registry.put(ImageRecord(name, "dir", "1.0-1", ["1.0-1"]))
            registry.put(InstanceRecord(name, name, "1.0-1", "dir"))
            for folder in ("images", "machines"):
                (root / folder / name).mkdir(parents=True, exist_ok=True)
        conf.write_text("\n".join(lines) + "\n")
    return {"FREIGHT_HOST_CONF": str(conf)}


def _pairs(w: Workload, *args: str) -> tuple[list[Sample], list[Sample]]:
    """`freight ARGS` and the floor, back to back, MIN_REPS times or more."""
    env = _host(w.work)
    argv = [sys.executable, "-m", "freight", *args]
    timed(argv, env=env)  # warm the page cache for both sides
    mine, floor = [], []
    for _ in range(max(w.reps, MIN_REPS)):
        mine.append(timed(argv, env=env))
        floor.append(timed(FLOOR))
    return mine, floor


def _startup(w: Workload, key: str, title: str, args: tuple[str, ...], limit: float) -> Row:
    mine, floor = _pairs(w, *args)
    row = Row(key, title, "s", _seconds(mine), _seconds(floor), "python3 -I -c pass", f"ratio <= {limit:g}", None)
    row.ok = row.ratio is not None and row.ratio <= limit
    return row


@figure("startup-version")
def startup_version(w: Workload) -> Row:
    return _startup(w, "startup-version", "8 freight --version", ("--version",), 4)


@figure("startup-list")
def startup_list(w: Workload) -> Row:
    return _startup(w, "startup-list", "8 freight list (3 machines)", ("list",), 10)


@figure("startup-status")
def startup_status(w: Workload) -> Row:
    return _startup(w, "startup-status", "8 freight status NAME", ("status", MACHINES[0]), 10)


@figure("publish-noop")
def publish_noop(w: Workload) -> Row:
    setup = w.publish_setup  # published once already
    mine, floor = [], []
    for _ in range(max(w.reps, MIN_REPS)):
        mine.append(timed(setup.argv, env=setup.env))
        floor.append(timed(FLOOR))
    row = Row("publish-noop", "4 publish, nothing new", "s", _seconds(mine), _seconds(floor), "python3 -I -c pass",
              "under 0.1 s", None, f"{w.publish_repo.packages} published packages, none changed")
    row.ok = row.freight is not None and row.freight < 0.1
    return row

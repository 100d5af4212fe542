"""The figures of `make bench` (issue 6): one small function each, in a registry.

A figure function takes the run's `Workload` and returns one `Row`: freight's
number, the floor's number measured in the same run, their ratio and whether
the goal is met. A figure whose code does not exist yet returns an honest
"not yet measured" row instead of a number; adding it later is adding one
function here.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from bench.measure import Sample, median
from bench.workload import Workload


@dataclass
class Row:
    key: str
    figure: str
    unit: str
    freight: float | None
    floor: float | None
    floor_is: str  # what the floor column measures
    goal: str
    ok: bool | None  # None: not measured
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.freight is None or not self.floor:
            return None
        return self.freight / self.floor


Figure = Callable[[Workload], Row]
FIGURES: dict[str, Figure] = {}


def figure(key: str) -> Callable[[Figure], Figure]:
    def register(fn: Figure) -> Figure:
        FIGURES[key] = fn
        return fn

    return register


def _seconds(samples: list[Sample]) -> float:
    return median([s.seconds for s in samples])


def _cpu_note(freight: list[Sample], floor: list[Sample]) -> str:
    """The same comparison in CPU time, which a busy machine disturbs less than wall time."""
    mine, theirs = median([s.cpu_seconds for s in freight]), median([s.cpu_seconds for s in floor])
    return f"CPU time {mine:.1f} s vs {theirs:.1f} s (ratio {mine / theirs:.2f})" if theirs else ""


def not_yet(key: str, title: str, goal: str, why: str) -> Row:
    return Row(key, title, "", None, None, "", goal, None, f"not yet measured: {why}")


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _build(key: str, title: str, w: Workload, note: str = "") -> Row:
    freight, floor = _seconds(w.builds.freight), _seconds(w.builds.floor)
    row = Row(key, title, "s", freight, floor, "dnf --installroot + tar | zstd -T0", "ratio <= 1.5", None,
              note + _cpu_note(w.builds.freight, w.builds.floor))
    row.ok = row.ratio is not None and row.ratio <= 1.5
    return row


@figure("build")
def build(w: Workload) -> Row:
    return _build("build", "1 build", w)


@figure("noop")
def noop(w: Workload) -> Row:
    freight = _seconds(w.noops)
    return Row("noop", "2 no-op rebuild", "s", freight, _seconds(w.builds.freight), "full freight build", "< 1 s", freight < 1.0)


@figure("install")
def install(w: Workload) -> Row:
    freight, floor = _seconds(w.installs.freight), _seconds(w.installs.floor)
    row = Row("install", "3 install", "s", freight, floor, "zstd -dc | tar -x", "ratio <= 2", None,
              "rpm -i --nodeps --noscripts into an empty root (no host hook); " + _cpu_note(w.installs.freight, w.installs.floor))
    row.ok = row.ratio is not None and row.ratio <= 2
    return row


@figure("publish")
def publish(w: Workload) -> Row:
    freight, floor = _seconds(w.publishes.freight), _seconds(w.publishes.floor)
    row = Row("publish", "4 publish", "s", freight, floor, "full createrepo_c of the same folder", "ratio <= 0.2", None,
              f"freight publish adds the {w.rpm.stat().st_size / 1e6:.0f} MB container to {w.publish_repo.packages} published "
              "packages; " + _cpu_note(w.publishes.freight, w.publishes.floor))
    row.ok = row.ratio is not None and row.ratio <= 0.2
    return row


def _instance(w: Workload, backend: str, goal: str, limit: float | None) -> Row:
    title = f"5 instance ({backend})"
    if not module_exists("freight.host.storage"):
        return not_yet(f"instance-{backend}", title, goal, "freight.host.storage is not on main yet")
    if backend not in w.instances:
        return not_yet(f"instance-{backend}", title, goal, "zfs-fuse (or /dev/fuse) is missing on this machine")
    pairs = w.instances[backend]
    row = Row(f"instance-{backend}", title, "s", _seconds(pairs.freight), _seconds(pairs.floor), "the same of a 10 MB image",
              goal, None, "instance_create of the 300 MB image, through freight.host.storage")
    if limit is not None:
        row.ok = row.ratio is not None and row.ratio <= limit
    return row


@figure("instance-zfs")
def instance_zfs(w: Workload) -> Row:
    return _instance(w, "zfs", "ratio <= 1.5", 1.5)


@figure("instance-dir")
def instance_dir(w: Workload) -> Row:
    return _instance(w, "dir", "none (a copy)", None)


@figure("derivative")
def derivative(w: Workload) -> Row:
    rpm_bytes, file_bytes, count = w.derivative
    extra = (rpm_bytes - file_bytes) / 1024
    return Row("derivative", "6 derivative size", "KiB", rpm_bytes / 1024, file_bytes / 1024, f"the bytes of its {count} files",
               "+ <= 30 KiB", extra <= 30, f"the overlay RPM adds {extra:+.1f} KiB (header, manifest, compression)")


@figure("memory")
def memory(w: Workload) -> Row:
    freight = max(s.tree_rss_kib for s in w.builds.freight) * 1024 / 1e6
    floor = max(s.tree_rss_kib for s in w.builds.floor) * 1024 / 1e6
    single = max(s.max_rss_kib for s in w.builds.freight) * 1024 / 1e6
    return Row("memory", "7 peak RSS of build", "MB", freight, floor, "the floor's, measured alike", "< 500 MB", freight < 500,
               f"sum over the live process tree, sampled; largest single process {single:.0f} MB")


@figure("debian")
def debian(w: Workload) -> Row:
    from bench import debianrepo

    title = "9 build: Debian minbase"
    why = debianrepo.available()
    if why:
        return not_yet("debian", title, "ratio <= 1.5", why)
    d = w.debian
    return _build("debian", title, d, f"{len(d.repo.packages)} Debian 12 packages, {d.repo.files} files; ")

"""Timing a command and the memory of its whole process tree.

Two memory numbers, because neither alone answers "how much memory does a
build need":

- `max_rss`: the kernel's own peak of the largest single process in the tree
  (GNU time's %M, i.e. wait4's ru_maxrss, which for a tree is the maximum over
  the processes, not their sum). Exact, but blind to processes that are alive
  at the same time (freight waits for its dnf child and for rpmbuild while
  holding its own memory).
- `tree_rss`: the peak of the SUM of the resident sizes of every live process
  in the tree, sampled every few milliseconds from /proc. This is what the
  machine must hold at once; it may miss a spike shorter than the interval and
  counts shared pages (libraries) once per process, so it errs high.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from freight.common.run import run

TIME = "/usr/bin/time"
SAMPLE_INTERVAL = 0.02
_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


@dataclass
class Sample:
    seconds: float  # wall time
    cpu_seconds: float  # user + system time of the whole tree: less sensitive to a busy machine
    max_rss_kib: int
    tree_rss_kib: int

    def __add__(self, other: Sample) -> Sample:
        """Two steps one after the other: times add up, memory peaks do not."""
        return Sample(
            self.seconds + other.seconds,
            self.cpu_seconds + other.cpu_seconds,
            max(self.max_rss_kib, other.max_rss_kib),
            max(self.tree_rss_kib, other.tree_rss_kib),
        )


def timed(argv: Sequence[str | os.PathLike[str]], *, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Sample:
    """Run ARGV to completion (failing loudly) and return its wall time and memory peaks."""
    with tempfile.NamedTemporaryFile(prefix="bench-time-", mode="r") as out, TreeSampler() as sampler:
        start = time.perf_counter()
        run([TIME, "-f", "%M %U %S", "-o", out.name, *argv], env=env, cwd=cwd)
        seconds = time.perf_counter() - start
        max_rss, user, system = out.read().strip().splitlines()[-1].split()
    return Sample(seconds, float(user) + float(system), int(max_rss), sampler.peak_kib)


def timed_call(fn: Callable[..., object], *args: object) -> Sample:
    """Call FN in this process (its subprocesses included in the CPU time); memory is not sampled."""
    before, start = os.times(), time.perf_counter()
    fn(*args)
    seconds, after = time.perf_counter() - start, os.times()
    cpu = sum(getattr(after, f) - getattr(before, f) for f in ("user", "system", "children_user", "children_system"))
    return Sample(seconds, cpu, 0, 0)


def shell(script: str) -> list[str]:
    """A pipeline as one command (for floors like `tar | zstd`), failing if any stage fails."""
    return ["bash", "-o", "pipefail", "-euc", script]


class TreeSampler:
    """Samples the summed RSS of all descendants of this process while in the `with` block."""

    def __init__(self, interval: float = SAMPLE_INTERVAL) -> None:
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self.interval):
            self.peak_kib = max(self.peak_kib, tree_rss_kib(me))


def tree_rss_kib(root_pid: int) -> int:
    """Sum of the resident sizes of ROOT_PID's descendants (not ROOT_PID itself)."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, list(children.get(root_pid, []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * _PAGE_KIB
        except (OSError, IndexError, ValueError):
            continue
    return total


def median(values: Sequence[float]) -> float:
    return statistics.median(values)

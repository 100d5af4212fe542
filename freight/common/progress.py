"""Progress for long work: bars on a terminal, a few plain lines elsewhere.

On a terminal, rich draws transient bars that vanish once a step is done, so
the scrollback keeps only the step lines. In CI logs and pipes there are no
bars, only a summary line per step (and every package with -v), so logs stay
short and greppable.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from freight.common import log as flog

log = logging.getLogger("freight.common.progress")


def _bars_wanted() -> bool:
    return sys.stderr.isatty() and not flog.is_quiet()


@contextmanager
def bar(description: str, total: float | None, unit: str = "") -> Iterator[Any]:
    """Yield an object with `advance(n)` and `update(completed=…)`; draw it only on a terminal."""
    if not _bars_wanted():
        yield _NoBar()
        return
    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    counter = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
    columns = [TextColumn("  {task.description}"), BarColumn(), counter, TimeElapsedColumn()]
    with Progress(*columns, transient=True, console=_console()) as progress:
        task = progress.add_task(description, total=total)
        yield _Bar(progress, task)


@contextmanager
def spinner(description: str) -> Iterator[None]:
    """An elapsed-time spinner for a step that reports no progress of its own (rpmbuild)."""
    start = time.monotonic()
    if _bars_wanted():
        with _console().status(f"  {description}"):
            yield
    else:
        yield
    log.debug("%s took %.1fs", description, time.monotonic() - start)


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


class _NoBar:
    def advance(self, amount: float = 1) -> None:
        pass

    def update(self, **kwargs: Any) -> None:
        pass


class _Bar:
    def __init__(self, progress: Any, task: Any) -> None:
        self.progress = progress
        self.task = task

    def advance(self, amount: float = 1) -> None:
        self.progress.advance(self.task, amount)

    def update(self, **kwargs: Any) -> None:
        self.progress.update(self.task, **kwargs)

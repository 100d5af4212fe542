"""Taking back the steps of a failed hook phase, so a failure leaves nothing behind.

Each step that creates something registers its inverse right after it
succeeds; if a later step fails, the inverses run newest first and the
original error is what the user sees (a failed inverse is logged, not raised,
so it cannot hide the cause).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType

log = logging.getLogger("freight.host.undo")


class Undo:
    """`with Undo() as undo: …; undo.add("what", fn, args…)` — runs the adds only on failure."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[..., object], tuple[object, ...]]] = []

    def add(self, what: str, fn: Callable[..., object], *args: object) -> None:
        self._steps.append((what, fn, args))

    def __enter__(self) -> Undo:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        steps, self._steps = self._steps, []
        if exc_type is None:
            return
        for what, fn, args in reversed(steps):
            log.info("rolling back: %s", what)
            try:
                fn(*args)
            except Exception as err:  # noqa: BLE001 - keep undoing; the first error is the one to report
                log.warning("could not roll back %s: %s", what, err)

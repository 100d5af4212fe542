"""dnf's download and transaction callbacks, drawn with `freight.common.progress`.

Only the staging child imports this module: it is the one process with dnf.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import dnf.callback
import dnf.transaction

from freight.common import progress

log = logging.getLogger("freight.dnf")


class DownloadProgress(dnf.callback.DownloadProgress):
    """One byte-counting bar for all downloads, and a summary line when they end."""

    def __init__(self) -> None:
        super().__init__()
        self._done: dict[Any, float] = {}
        self._ended = 0
        self._files = 0
        self._size = 0.0
        self._ctx: Any = None
        self._bar: Any = None
        self._start = time.monotonic()

    def start(self, total_files: int, total_size: float, total_drpms: int = 0) -> None:
        self._files, self._size = total_files, total_size
        self._ctx = progress.bar("Downloading", total_size, unit="bytes")
        self._bar = self._ctx.__enter__()

    def progress(self, payload: Any, done: float) -> None:
        self._bar.advance(done - self._done.get(payload, 0))
        self._done[payload] = done

    def end(self, payload: Any, status: int, msg: str | None) -> None:
        self._ended += 1
        if status == dnf.callback.STATUS_FAILED:
            log.error("%s: %s", payload, msg)
        else:
            log.debug("  downloaded %s", payload)
        if self._ended == self._files and self._ctx is not None:
            self._ctx.__exit__(None, None, None)
            self._ctx = None
            log.info("  %d packages, %.1f MB in %.1fs", self._files, self._size / 1e6, time.monotonic() - self._start)


class TransactionProgress(dnf.callback.TransactionProgress):
    """A bar counting installed packages; every package's name with -v."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self._ctx = progress.bar("Installing", total)
        self._bar = self._ctx.__enter__()
        self._seen: set[str] = set()
        self._start = time.monotonic()
        self._total = total

    def progress(self, package: Any, action: int, ti_done: int, ti_total: int, ts_done: int, ts_total: int) -> None:
        if action != dnf.transaction.PKG_INSTALL or ti_total == 0 or ti_done != ti_total:
            return
        name = str(package)
        if name in self._seen:
            return
        self._seen.add(name)
        self._bar.advance(1)
        log.debug("  installed %s (%d/%d)", name, len(self._seen), self._total)
        if len(self._seen) == self._total:
            self.close()

    def error(self, message: str) -> None:
        log.error("%s", message)

    def close(self) -> None:
        if self._ctx is not None:
            self._ctx.__exit__(None, None, None)
            self._ctx = None
            log.info("  %d packages installed in %.1fs", len(self._seen), time.monotonic() - self._start)

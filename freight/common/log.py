"""Logging for freight: steps a person can follow, details on -v.

Everything human goes to stderr so that stdout stays clean for what scripts
read (the path of a built RPM, `--json` output).
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("freight")

QUIET = logging.WARNING
NORMAL = logging.INFO
VERBOSE = logging.DEBUG


class _Formatter(logging.Formatter):
    """Plain steps, and a `warning:`/`error:` prefix people can scan for."""

    def __init__(self, color: bool) -> None:
        super().__init__()
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.levelno >= logging.ERROR:
            prefix, code = "error: ", "31;1"
        elif record.levelno >= logging.WARNING:
            prefix, code = "warning: ", "33;1"
        elif record.levelno <= logging.DEBUG:
            prefix, code = "", "2"
        else:
            prefix, code = "", ""
        text = f"{prefix}{msg}"
        if self.color and code:
            text = f"\033[{code}m{text}\033[0m"
        return text


def setup(level: int = NORMAL) -> None:
    """Configure the `freight` logger once per process (the CLI calls this)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(color=sys.stderr.isatty()))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False


def step(message: str, *args: object) -> None:
    """Announce one stage of a long job (`‣ Installing packages`)."""
    log.info("‣ " + message, *args)


def is_quiet() -> bool:
    return not log.isEnabledFor(logging.INFO)

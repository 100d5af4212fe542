"""The error types freight raises, and the exit code each one maps to.

One hierarchy so that the CLI can turn any expected failure into one clear
line and an exit code scripts can trust, and let only real bugs show a
traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


class FreightError(Exception):
    """A failure the user can act on; printed as one message, exit code 1."""

    exit_code = 1


class UsageError(FreightError):
    """Bad input from the user (arguments, manifests, lock files): exit code 2."""

    exit_code = 2



def at_most(items: Sequence[T], limit: int, show: Callable[[T], str] = str) -> list[str]:
    """The first LIMIT of ITEMS as SHOW writes them (it runs for those alone), and a last line
    saying how many more there are: an error that names ten thousand paths helps no one, one
    that names none cannot be acted on."""
    return [show(item) for item in items[:limit]] + ([f"… and {len(items) - limit} more"] if len(items) > limit else [])

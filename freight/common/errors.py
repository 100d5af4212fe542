"""The error types freight raises, and the exit code each one maps to.

One hierarchy so that the CLI can turn any expected failure into one clear
line and an exit code scripts can trust, and let only real bugs show a
traceback.
"""

from __future__ import annotations


class FreightError(Exception):
    """A failure the user can act on; printed as one message, exit code 1."""

    exit_code = 1


class UsageError(FreightError):
    """Bad input from the user (arguments, manifests, lock files): exit code 2."""

    exit_code = 2

"""The one way freight starts a subprocess.

Every tool freight drives (rpmbuild, rpmsign, gpg, zfs, systemd-nspawn …) goes
through `run()`, so that each command line is logged the same way and every
failure becomes one `CommandError` that carries the tool's own stderr, which is
almost always the message the user needs.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from freight.common.errors import FreightError

log = logging.getLogger("freight.common.run")


class CommandError(FreightError):
    """A command exited non-zero (or could not be started)."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        tail = stderr.strip().splitlines()[-15:]
        detail = ("\n  " + "\n  ".join(tail)) if tail else ""
        super().__init__(f"{Path(argv[0]).name} failed with exit code {returncode}: {shlex.join(argv)}{detail}")


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input: str | bytes | None = None,
    capture: bool = True,
    check: bool = True,
    text: bool = True,
) -> subprocess.CompletedProcess:
    """Run a command, log it, and raise CommandError with its stderr if it fails.

    `env` entries are added to (not substituted for) the current environment,
    because the tools freight drives need PATH and friends. With
    `capture=False` the tool's output goes straight to the terminal (used for
    long-running steps whose own progress is the best progress).
    """
    args = [os.fspath(a) for a in argv]
    log.debug("$ %s", shlex.join(args))
    full_env = None
    if env is not None:
        full_env = {**os.environ, **env}
    if isinstance(input, str) and not text:
        input = input.encode()
    try:
        proc = subprocess.run(
            args,
            env=full_env,
            cwd=cwd,
            input=input,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
            stdin=None if input is not None else subprocess.DEVNULL,
            text=text,
            # Tools print file names, which need not be UTF-8: kept as os.fsdecode keeps them.
            errors="surrogateescape" if text else None,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CommandError(args, 127, f"{args[0]}: command not found ({exc.strerror})") from None
    if check and proc.returncode != 0:
        stderr = proc.stderr if capture else ""
        if isinstance(stderr, bytes):
            stderr = stderr.decode(errors="replace")
        raise CommandError(args, proc.returncode, stderr or "")
    return proc


def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    env: Mapping[str, str] | None = None,
    output: IO[Any] | None = None,
    preexec: Callable[[], None] | None = None,
) -> subprocess.Popen:
    """Start a command that runs on in the background; log it like `run()`.

    For the rare process freight supervises instead of waiting for (a booted
    test host's systemd-nspawn). It gets a session of its own, so a Ctrl-C
    meant for freight does not reach it half-way through: the caller stops it
    in order and must wait for it. stdout and stderr both go to OUTPUT (or
    are dropped). PREEXEC runs in the child just before the exec.
    """
    args = [os.fspath(a) for a in argv]
    log.debug("$ %s &", shlex.join(args))
    try:
        return subprocess.Popen(
            args,
            env={**os.environ, **env} if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=output if output is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,
        )
    except FileNotFoundError as exc:
        raise CommandError(args, 127, f"{args[0]}: command not found ({exc.strerror})") from None


def lines(argv: Sequence[str | os.PathLike[str]]) -> Iterator[str]:
    """The output of a long-running command, a line at a time as it comes (`journalctl -f`);
    logged like `run()`. A non-zero exit after the output is a CommandError with its stderr.
    The command is stopped when the caller stops reading."""
    args = [os.fspath(a) for a in argv]
    log.debug("$ %s |", shlex.join(args))
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, errors="surrogateescape", bufsize=1)
    except FileNotFoundError as exc:
        raise CommandError(args, 127, f"{args[0]}: command not found ({exc.strerror})") from None
    assert proc.stdout is not None and proc.stderr is not None
    try:
        yield from proc.stdout
        proc.wait()
        if proc.returncode != 0:
            raise CommandError(args, proc.returncode, proc.stderr.read())
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait()

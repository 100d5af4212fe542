"""Signing RPMs with rpmsign and a key from freight's keyring.

rpmsign does the signing, so the result is exactly what `rpm --checksig` and
dnf expect. Two things must be told to it: Debian's rpm points `%__gpg` at a
gpg2 that does not exist, and gpg must run in batch mode with the key's
unlock options, so that CI fails with a message rather than waiting for a
pass-phrase prompt. rpmsign writes the signed package to a temporary file
beside the original and renames it over it, so a reader sees the unsigned
or the signed package, never a half-written one.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Iterable
from pathlib import Path

from freight.common import log as flog
from freight.common.errors import FreightError
from freight.common.run import CommandError, run
from freight.trust import rpmfile
from freight.trust.keys import SigningKey, gpg_binary

log = logging.getLogger("freight.trust.sign")


def _macro_value(text: str) -> str:
    """TEXT as one shell word in an rpm macro (rpm expands '%' and splits on spaces)."""
    return shlex.quote(text).replace("%", "%%")


def rpmsign_defines(key: SigningKey) -> list[str]:
    """The --define options that make rpmsign use the real gpg, freight's keyring and no prompt."""
    extra = " ".join(_macro_value(a) for a in ["--batch", "--no-tty", *key.pinentry_args()])
    return [
        "--define", f"__gpg {_macro_value(gpg_binary())}",
        "--define", f"_gpg_path {_macro_value(str(key.home))}",
        "--define", f"_gpg_name {key.fingerprint}",
        "--define", "_gpg_digest_algo sha256",
        "--define", f"_gpg_sign_cmd_extra_args {extra}",
    ]


def sign_rpms(paths: Iterable[Path], key: SigningKey) -> list[Path]:
    """Sign every package in place with KEY; a non-RPM is refused before anything is signed."""
    paths = [Path(p) for p in paths]
    for path in paths:
        rpmfile.require_rpm(path)
    for path in paths:
        try:
            run(["rpmsign", "--addsign", *rpmsign_defines(key), path])
        except CommandError as exc:
            _cleanup_partial(path)
            raise FreightError(f"{path}: signing failed: {_reason(exc.stderr)}") from None
        log.debug("signed %s with %s", path, key.fingerprint)
    if paths:
        flog.step("Signed %d package%s with %s (%s)", len(paths), "" if len(paths) == 1 else "s", key.key.keyid, key.key.uid)
    return paths


def _reason(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if "GPG_TTY" not in line]
    if any("No pinentry" in line for line in lines):
        return "the key is protected by a pass-phrase: give --passphrase-file FILE or cache it in gpg-agent"
    return "\n  ".join(lines[-5:]) or "rpmsign failed"


def _cleanup_partial(path: Path) -> None:
    """rpmsign's temporary file (PATH.XXXXXX) may survive a failure; never leave it beside the package."""
    for leftover in path.parent.glob(path.name + ".??????"):
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
            log.debug("removed rpmsign's leftover %s", leftover)

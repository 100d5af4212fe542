"""Options several commands share: which key signs, and how it is unlocked."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from freight.common.errors import UsageError

if TYPE_CHECKING:
    from freight.trust import keys

SIGN_KEY_ENV = "FREIGHT_SIGN_KEY"
PASSPHRASE_ENV = "FREIGHT_PASSPHRASE_FILE"


def add_passphrase_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--passphrase-file",
        type=Path,
        metavar="FILE",
        help=f"the signing key's pass-phrase (default: ${PASSPHRASE_ENV}; else gpg-agent's cache; never a prompt)",
    )


def passphrase_file(args: argparse.Namespace) -> Path | None:
    if args.passphrase_file is not None:
        return args.passphrase_file
    env = os.environ.get(PASSPHRASE_ENV)
    return Path(env) if env else None


def signing_key(keyid: str | None, args: argparse.Namespace) -> keys.SigningKey:
    """KEYID, else $FREIGHT_SIGN_KEY, else the keyring's only secret key; checked to sign without a prompt."""
    from freight.trust import keys

    keyid = keyid or os.environ.get(SIGN_KEY_ENV)
    if not keyid:
        secret = [k for k in keys.list_keys() if k.secret and k.can_sign]
        if len(secret) != 1:
            found = "no signing key" if not secret else f"{len(secret)} signing keys"
            raise UsageError(
                f"the keyring {keys.home()} has {found}: give --key KEYID or set ${SIGN_KEY_ENV}"
                + ("" if secret else " (make one with 'freight key generate')")
            )
        keyid = secret[0].fingerprint
    return keys.signing_key(keyid, passphrase_file(args))

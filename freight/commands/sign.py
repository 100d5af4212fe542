"""`freight sign`: sign RPMs in place with a key from freight's keyring."""

from __future__ import annotations

import argparse
from pathlib import Path

from freight.commands import add
from freight.commands.common import add_passphrase_option, signing_key
from freight.common.errors import FreightError


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add(
        sub,
        "sign",
        common,
        description=(
            "Check each RPM's contents (digests, and a container's embedded manifest), sign it in "
            "place with rpmsign (the file is replaced whole), then check the signature as "
            "'freight verify' would. The key is --key, else $FREIGHT_SIGN_KEY, else "
            "the keyring's only secret key."
        ),
    )
    p.add_argument("rpms", type=Path, nargs="+", metavar="RPM")
    p.add_argument("-k", "--key", metavar="KEYID", help="fingerprint, key id or e-mail of the signing key")
    add_passphrase_option(p)
    p.set_defaults(func=_sign)


def _sign(args: argparse.Namespace) -> int:
    from freight.trust import rpmfile, sign, verify

    key = signing_key(args.key, args)
    for path in args.rpms:
        rpmfile.require_rpm(path)
    # A signature vouches for the contents: never sign a damaged package or a lying manifest.
    broken = [v for v in verify.verify(args.rpms, trusted=None) if not v.ok]
    if broken:
        raise FreightError("refusing to sign (nothing was signed):\n  " + "\n  ".join(v.line() for v in broken))
    sign.sign_rpms(args.rpms, key)
    bad = [v for v in verify.verify(args.rpms, verify.trusted_keys(rpmdb=False)) if not v.ok]
    if bad:
        raise FreightError("signed, but the result does not verify:\n  " + "\n  ".join(v.line() for v in bad))
    return 0

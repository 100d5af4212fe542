"""`freight key generate|list|export|import`: the signing keyring."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from freight.commands import add
from freight.commands.common import add_passphrase_option, passphrase_file
from freight.common import log as flog
from freight.common.files import write_atomic
from freight.trust import keys


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add(
        sub,
        "key",
        common,
        description=(
            "freight's keyring is $FREIGHT_GNUPGHOME, else $GNUPGHOME, else ~/.local/share/freight/gnupg. "
            "gpg runs in batch mode: a pass-phrase comes from a file or gpg-agent's cache, never a prompt."
        ),
    )
    keysub = p.add_subparsers(dest="key_command", metavar="COMMAND", required=True)

    gen = keysub.add_parser(
        "generate",
        parents=[common],
        help="make a signing key; print its fingerprint",
        description="Make a signing key in freight's keyring and print its fingerprint. Without --passphrase-file the key has no pass-phrase.",
    )
    gen.add_argument("--name", required=True, help="the signer's name, e.g. 'Example Corp containers'")
    gen.add_argument("--email", required=True, help="the signer's e-mail address")
    gen.add_argument(
        "--algorithm",
        choices=sorted(keys.ALGORITHMS),
        default=keys.DEFAULT_ALGORITHM,
        help="rsa4096 (default: every rpm verifies it) or ed25519 (rpm >= 4.14 on the hosts)",
    )
    add_passphrase_option(gen)
    gen.set_defaults(func=_generate)

    ls = keysub.add_parser(
        "list",
        parents=[common],
        help="list the keys in the keyring",
        description="List the keys in freight's keyring: sec for a secret key, pub for a public one.",
    )
    ls.add_argument("--json", action="store_true", help="print JSON for scripts")
    ls.set_defaults(func=_list)

    exp = keysub.add_parser(
        "export",
        parents=[common],
        help="print a public key, armored (the RPM-GPG-KEY file)",
        description="Print a public key, armored: the RPM-GPG-KEY file hosts import (freight publish --sign-key also places it in the repository).",
    )
    exp.add_argument("keyid", metavar="KEYID", help="fingerprint, key id or e-mail")
    exp.add_argument("-o", "--output", type=Path, metavar="FILE", help="write to FILE instead of stdout")
    exp.set_defaults(func=_export)

    imp = keysub.add_parser(
        "import",
        parents=[common],
        help="import keys from files (public keys to trust, or a CI signing key)",
        description="Import keys from files: public keys to trust in freight verify, or a secret key to sign with (on a CI machine).",
    )
    imp.add_argument("files", type=Path, nargs="+", metavar="FILE")
    add_passphrase_option(imp)
    imp.set_defaults(func=_import)


def _generate(args: argparse.Namespace) -> int:
    flog.step("Generating a %s key for %s <%s> in %s", args.algorithm, args.name, args.email, keys.home())
    key = keys.generate(args.name, args.email, args.algorithm, passphrase_file(args))
    flog.log.info("  export it for hosts with: freight key export %s", key.fingerprint)
    print(key.fingerprint)
    return 0


def _list(args: argparse.Namespace) -> int:
    found = keys.list_keys()
    if args.json:
        print(json.dumps([{**asdict(k), "keyid": k.keyid} for k in found], indent=2))
        return 0
    if not found:
        flog.log.info("no keys in %s (make one with 'freight key generate')", keys.home())
    for k in found:
        created = datetime.fromtimestamp(k.created, timezone.utc).strftime("%Y-%m-%d")
        kind = "sec" if k.secret else "pub"
        print(f"{kind}  {k.fingerprint}  {k.algorithm:<8} {created}  {k.uid}")
    return 0


def _export(args: argparse.Namespace) -> int:
    text = keys.export(args.keyid)
    if args.output:
        write_atomic(args.output, text)
        flog.log.info("wrote %s", args.output)
    else:
        sys.stdout.write(text)
    return 0


def _import(args: argparse.Namespace) -> int:
    for path in args.files:
        for fingerprint in keys.import_file(path, passphrase_file(args)):
            print(fingerprint)
    return 0

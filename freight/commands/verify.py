"""`freight verify`: accept packages only with a trusted signature and intact contents."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from freight.commands import add
from freight.common import log as flog
from freight.common.errors import UsageError


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add(
        sub,
        "verify",
        common,
        description=(
            "Exit 0 only when every package carries a valid signature from a trusted key (freight's "
            "keyring, the --key files, or the rpm database's imported keys), its header and payload "
            "are intact, and a container RPM's embedded manifest matches its header. Unlike 'rpm -K', "
            "an unsigned package is refused. One line per package on stdout; exit 1 if any is refused."
        ),
    )
    p.add_argument("rpms", type=Path, nargs="*", metavar="RPM")
    p.add_argument("--installed", metavar="NAME", help="instead: check the installed container NAME's image against its own rpm database and the host's; exit 1 if any file changed")
    p.add_argument("--root", type=Path, metavar="DIR", help="with --installed: the host's root directory (default /)")
    p.add_argument("--key", dest="keys", type=Path, action="append", default=[], metavar="FILE", help="also trust the armored public key(s) in FILE (repeatable)")
    p.add_argument("--no-keyring", action="store_true", help="do not trust freight's keyring, only --key files and the rpm database")
    p.add_argument("--json", action="store_true", help="print a JSON list of verdicts for scripts")
    p.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    if args.installed:
        return _verify_installed(args)
    if args.root:
        raise UsageError("--root goes with --installed")
    if not args.rpms:
        raise UsageError("name at least one RPM, or --installed NAME")
    from freight.trust import verify

    trusted = verify.trusted_keys(args.keys, freight_keyring=not args.no_keyring)
    verdicts = verify.verify(args.rpms, trusted)
    if args.json:
        print(verify.to_json(verdicts))
    else:
        for v in verdicts:
            print(v.line())
    refused = [v for v in verdicts if not v.ok]
    if refused:
        flog.log.error("%d of %d package(s) refused", len(refused), len(verdicts))
        return 1
    return 0


def _verify_installed(args: argparse.Namespace) -> int:
    """Files changed in an installed image, by both rpm databases (see freight.host.verify)."""
    if args.rpms:
        raise UsageError("--installed checks an installed container: name no RPM with it")
    from freight.host import verify as verifyinstalled

    verdict = verifyinstalled.check(_host_view(args.root), args.installed)
    print(json.dumps(verdict.to_json(), indent=2) if args.json else verdict.render())
    return 0 if verdict.clean else 1


def _host_view(root: Path | None) -> Any:
    """The host's view (freight.host.installed), imported only when asked for: it needs freight-host."""
    from freight.host.installed import HostView

    return HostView.open(root)

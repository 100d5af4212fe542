"""`freight publish DIR`: make a folder of RPMs a (signed) yum repository."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from freight.commands import add
from freight.commands.common import SIGN_KEY_ENV, add_passphrase_option, signing_key
from freight.common import log as flog
from freight.publish.files import KEY_FILE

if TYPE_CHECKING:
    from freight.trust.keys import SigningKey


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add(
        sub,
        "publish",
        common,
        description=(
            "Write repodata/ for the RPMs in DIR with createrepo_c. Unchanged packages are not read "
            "again; the new metadata replaces the old in one step; concurrent publishes of DIR wait "
            "for each other. With a signing key, repomd.xml.asc is written and the public key is "
            f"placed in DIR as {KEY_FILE} and, for zypper, as repodata/repomd.xml.key."
        ),
    )
    p.add_argument("folder", type=Path, metavar="DIR")
    p.add_argument("-k", "--sign-key", metavar="KEYID", help=f"sign repomd.xml with this key (default: ${SIGN_KEY_ENV} when set)")
    p.add_argument("--keep", type=int, metavar="N", help="keep only the newest N versions of each container; delete the rest")
    p.add_argument("--allow-unsigned", action="store_true", help="publish unsigned packages in a signed repository")
    p.add_argument("--sbom", action="store_true", help="place each container's SBOMs beside its package (NEVRA.spdx.json, NEVRA.cdx.json), as the package carries them")
    p.add_argument("--json", action="store_true", help="print what was done as JSON (packages read, reused, pruned)")
    add_passphrase_option(p)
    p.set_defaults(func=_publish)


def _publish(args: argparse.Namespace) -> int:
    keyid = args.sign_key or os.environ.get(SIGN_KEY_ENV)
    key = signing_key(keyid, args) if keyid else None
    flog.step("Publishing %s", args.folder)
    stats = _unchanged(args, key) or _publish_now(args, key)
    flog.log.info(
        "  %d packages (%d read, %d unchanged)%s, revision %s%s in %.2fs",
        stats["packages"],
        stats["read"],
        stats["reused"],
        f", {len(stats['pruned'])} pruned" if stats["pruned"] else "",
        stats["revision"],
        ", signed" if stats["signed"] else ", NOT signed",
        stats["seconds"],
    )
    if args.json:
        print(json.dumps(stats, indent=2))
    return 0


def _unchanged(args: argparse.Namespace, key: SigningKey | None) -> dict[str, Any] | None:
    """A no-op publish's report, told before the publisher and createrepo_c are loaded (freight.publish.state).
    Unlocked, so only a hint: anything but an exact match goes to the publisher, which checks again under its lock."""
    from freight.publish import state

    folder = args.folder.resolve()
    if not folder.is_dir() or (args.keep is not None and args.keep < 1):
        return None
    if key is not None:
        from freight.trust import keys

        keys.refuse_inside(folder, "repository")
    doc, files = state.load(folder), state.scan(folder)
    used = state.options(key.fingerprint if key is not None else None, args.keep, args.allow_unsigned, args.sbom)
    return state.no_op_stats(folder, doc, files, key is not None) if state.unchanged(folder, doc, files, used) else None


def _publish_now(args: argparse.Namespace, key: SigningKey | None) -> dict[str, Any]:
    from dataclasses import asdict

    from freight.publish import repository as publish

    options = publish.PublishOptions(sign_key=key, keep=args.keep, allow_unsigned=args.allow_unsigned, sbom=args.sbom)
    return asdict(publish.publish(args.folder, options))

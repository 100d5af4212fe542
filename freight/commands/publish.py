"""`freight publish DIR`: make a folder of RPMs a (signed) yum repository."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from freight.commands import add
from freight.commands.common import SIGN_KEY_ENV, add_passphrase_option, signing_key
from freight.common import log as flog
from freight.publish.files import KEY_FILE


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
    from freight.publish import repository as publish

    keyid = args.sign_key or os.environ.get(SIGN_KEY_ENV)
    key = signing_key(keyid, args) if keyid else None
    flog.step("Publishing %s", args.folder)
    stats = publish.publish(args.folder, publish.PublishOptions(sign_key=key, keep=args.keep, allow_unsigned=args.allow_unsigned, sbom=args.sbom))
    flog.log.info(
        "  %d packages (%d read, %d unchanged)%s, revision %s%s in %.2fs",
        stats.packages,
        stats.read,
        stats.reused,
        f", {len(stats.pruned)} pruned" if stats.pruned else "",
        stats.revision,
        ", signed" if stats.signed else ", NOT signed",
        stats.seconds,
    )
    if args.json:
        print(stats.to_json())
    return 0

"""`freight build MANIFEST`: build the container RPM a manifest describes."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from freight.commands import add
from freight.commands.common import SIGN_KEY_ENV, add_passphrase_option, signing_key
from freight.common import log as flog


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add(
        sub,
        "build",
        common,
        description=(
            "Install the manifest's packages with dnf into a staging root and wrap that root "
            "into the RPM container-NAME. The first build writes the lock beside the manifest (manifest.yaml: manifest.lock) "
            "with the exact packages; later builds install exactly those. On success the last line "
            "on stdout is the path of the RPM. Exit code 0: built or up to date; 1: a failure (a tool, a "
            "repository, a signature); 2: bad input (arguments, manifest, lock); 130: interrupted."
        ),
    )
    p.add_argument("manifest", type=Path, help="the manifest (YAML)")
    p.add_argument("-o", "--output-dir", type=Path, default=Path("repo"), metavar="DIR", help="where the RPM goes (default: ./repo)")
    p.add_argument("--update-lock", action="store_true", help="resolve the packages again and rewrite the lock")
    p.add_argument("--force", action="store_true", help="rebuild even when the RPM is up to date")
    p.add_argument("--nogpgcheck", action="store_true", help="install packages without checking their signatures (loudly)")
    p.add_argument("--keep-stage", type=Path, metavar="DIR", help="keep the staging tree at DIR for inspection")
    p.add_argument(
        "--sign",
        metavar="KEYID",
        help=f"sign the RPM with this key before it appears in the output folder (default: ${SIGN_KEY_ENV} when set; "
        "an unsigned build refuses to replace a signed RPM)",
    )
    add_passphrase_option(p)
    p.set_defaults(func=_build)


def _build(args: argparse.Namespace) -> int:
    from freight.build.pipeline import BuildOptions, build
    from freight.manifest import load as manifest

    m = manifest.load(args.manifest)
    keyid = args.sign or os.environ.get(SIGN_KEY_ENV)  # as sign and publish: --sign, else $FREIGHT_SIGN_KEY
    if keyid and not args.sign:
        flog.step("Signing with %s (from $%s)", keyid, SIGN_KEY_ENV)
    key = signing_key(keyid, args) if keyid else None  # fail before the build, not after it
    result = build(
        m,
        BuildOptions(
            outdir=args.output_dir,
            update_lock=args.update_lock,
            force=args.force,
            gpgcheck=not args.nogpgcheck,
            keep_stage=args.keep_stage.resolve() if args.keep_stage else None,
            sign_key=key,
        ),
    )
    print(result.rpm)
    return 0

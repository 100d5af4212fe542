"""`freight rebuild --verify`: check that a container RPM is what its recipe says."""

from __future__ import annotations

import argparse
from pathlib import Path

from freight.commands import add
from freight.common.errors import UsageError


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add(
        sub,
        "rebuild",
        common,
        description=(
            "Rebuild a container RPM from the manifest and lock it carries, in a fresh staging root from the same "
            "repositories, and (with --verify) compare the result with the given RPM file by file: paths, modes, "
            "owners, digests, link targets, capabilities. The manifest's files: sources are not in the RPM: they are "
            "taken from --source DIR (the folder the manifest was in). Exit 0 and 'reproduced' when equal; "
            "exit 1 with what differs, or when a locked package is no longer in its repository as locked; 2 for bad input."
        ),
    )
    p.add_argument("rpm", type=Path, metavar="RPM", help="the container RPM to rebuild")
    p.add_argument("--verify", action="store_true", help="compare the rebuild with RPM (without it, -o must say where the rebuild goes)")
    p.add_argument("--source", type=Path, default=Path("."), metavar="DIR", help="where the manifest's relative paths (files: sources, local repositories) are (default: the current folder)")
    p.add_argument("-o", "--outdir", type=Path, metavar="DIR", help="keep the rebuilt RPM in DIR")
    p.set_defaults(func=_rebuild)


def _rebuild(args: argparse.Namespace) -> int:
    if not args.verify and args.outdir is None:
        raise UsageError("say what to do with the rebuild: --verify compares it with the RPM, -o DIR keeps it")
    if not args.source.is_dir():
        raise UsageError(f"{args.source}: no such folder (--source names the folder the manifest's sources are in)")
    from freight.build.rebuild import rebuild

    comparison = rebuild(args.rpm, args.source, args.outdir)
    print(comparison.render() if args.verify or comparison.refused else comparison.rebuilt)
    return 0 if comparison.reproduced or not args.verify and comparison.refused is None else 1

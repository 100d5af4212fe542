"""`freight repo-file`: the .repo file hosts install to use a freight repository."""

from __future__ import annotations

import argparse
import re
import sys
from urllib.parse import urlparse

from freight import __version__
from freight.commands import add
from freight.common.errors import UsageError
from freight.publish.files import KEY_FILE

_REPO_ID = re.compile(r"[A-Za-z0-9_.:-]+")
_SCHEMES = ("http", "https", "ftp", "file")


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add(
        sub,
        "repo-file",
        common,
        description=(
            "Print a dnf (and zypper) .repo file for a published repository, with gpgcheck=1, repo_gpgcheck=1, pkg_gpgcheck=1 "
            f"and gpgkey pointing at the {KEY_FILE} that 'freight publish --sign-key' put there."
        ),
    )
    p.add_argument("--name", required=True, help="the repository id (letters, digits, _ . : -)")
    p.add_argument("--baseurl", required=True, metavar="URL", help="where the repository is served (http, https, ftp or file URL)")
    p.add_argument("--gpgkey", metavar="URL", help=f"the public key's URL (default: BASEURL/{KEY_FILE})")
    p.add_argument("--description", help="the repository's human name (default: NAME (freight containers))")
    p.set_defaults(func=_repo_file)


def _repo_file(args: argparse.Namespace) -> int:
    if not _REPO_ID.fullmatch(args.name):
        raise UsageError(f"--name {args.name!r}: a repository id is letters, digits and _ . : - only")
    for option, url in (("--baseurl", args.baseurl), ("--gpgkey", args.gpgkey)):
        if url is not None and (urlparse(url).scheme not in _SCHEMES or any(c.isspace() for c in url)):
            raise UsageError(f"{option} {url!r}: expected an absolute {', '.join(_SCHEMES)} URL")
    if args.description is not None and ("\n" in args.description or not args.description.strip()):
        raise UsageError("--description: one line of text")
    from freight.common.templates import render

    baseurl = args.baseurl.rstrip("/")
    sys.stdout.write(
        render(
            "freight.repo.j2",
            freight_version=__version__,
            name=args.name,
            description=args.description or f"{args.name} (freight containers)",
            baseurl=baseurl,
            gpgkey=args.gpgkey or f"{baseurl}/{KEY_FILE}",
        )
    )
    return 0

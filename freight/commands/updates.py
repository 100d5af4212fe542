"""`freight outdated` and `freight affected`: which containers need a rebuild, and why."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from freight.commands import add
from freight.common.errors import UsageError

# As `dnf check-update`: 0 nothing to do, 100 a rebuild (or an update) is due, 1 an error.
REBUILD_DUE = 100


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add(
        sub,
        "outdated",
        common,
        description=(
            "Compare each manifest's lock with the newest packages in its repositories and list every "
            "package with a newer version, marking security fixes from the repositories' advisories. "
            "A derivative of files only is answered for its base: the base's manifest named with it, else "
            "BASE/manifest.yaml in the folder beside the derivative's. "
            "Exit code 0: nothing outdated; 100: a rebuild is due (as dnf check-update); 1: an error; "
            "2: bad input (arguments, a manifest, a missing lock). "
            "With --host: the containers installed on this host instead, each with a newer container "
            "package in the host's dnf repositories, and its bundled packages with newer versions or "
            "advisories in the repositories its embedded manifest names (exit 100: an update or a "
            "rebuild is due)."
        ),
    )
    p.add_argument("manifests", type=Path, nargs="*", metavar="MANIFEST")
    p.add_argument("--host", action="store_true", help="check the containers installed on this host")
    p.add_argument("--root", type=Path, metavar="DIR", help="with --host: the host's root directory (default /): its rpm database, host.conf, images and dnf configuration are read below DIR")
    p.add_argument("--dnf-config", type=Path, metavar="FILE", help="with --host: the dnf configuration to read (default /etc/dnf/dnf.conf, below --root)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=_outdated)

    a = add(
        sub,
        "affected",
        common,
        intermixed=True,
        description=(
            "Search repositories for container packages that bundle a package (below a version), or a "
            "package version an advisory names as vulnerable to a CVE (give the container repository and the "
            "distribution's, whose advisories name the fix). Only metadata is read. Repositories may come "
            "before or after the options. "
            "Exit code 0: none affected; 100: some are; 1: an error, or no advisory in the repositories names "
            "the CVE; 2: bad input (arguments, a malformed CVE id). "
            "Plain dnf answers the first question too: "
            "dnf repoquery --whatprovides 'bundled(openssl-libs) < 3.0.8'."
        ),
    )
    a.add_argument("repos", nargs="+", metavar="REPO", help="repository folders or URLs")
    which = a.add_mutually_exclusive_group(required=True)
    which.add_argument("--package", metavar="NAME", help="the bundled package")
    which.add_argument("--cve", metavar="CVE-ID", help="a CVE named by an advisory in the repositories (any case)")
    a.add_argument("--below", metavar="EVR", help="with --package: only versions older than EVR")
    a.add_argument("--json", action="store_true", help="print JSON for scripts")
    a.set_defaults(func=_affected)


def _outdated(args: argparse.Namespace) -> int:
    if args.host:
        return _outdated_host(args)
    if args.root or args.dnf_config:
        raise UsageError("--root and --dnf-config go with --host")
    if not args.manifests:
        raise UsageError("name at least one MANIFEST, or --host")
    from freight.manifest import load as manifest
    from freight.updates import outdated

    reports = outdated.check_all([manifest.load(path) for path in args.manifests])
    if args.json:
        print(json.dumps([r.to_json() for r in reports], indent=2))
    else:
        print(outdated.render(reports))
    return REBUILD_DUE if any(r.packages for r in reports) else 0


def _outdated_host(args: argparse.Namespace) -> int:
    if args.manifests:
        raise UsageError("--host checks the installed containers: name no MANIFEST with it")
    from freight.host import outdated as hostoutdated

    reports = hostoutdated.check(_host_view(args.root), args.dnf_config)
    if args.json:
        print(json.dumps([r.to_json() for r in reports], indent=2))
    else:
        print(hostoutdated.render(reports))
    if any(r.error for r in reports) and not any(r.due for r in reports):
        return 1
    return REBUILD_DUE if any(r.due for r in reports) else 0


def _affected(args: argparse.Namespace) -> int:
    if args.below and not args.package:
        raise UsageError("--below goes with --package")
    from freight.updates import affected

    hits = affected.find(args.repos, package=args.package, below=args.below, cve=args.cve)
    if args.json:
        print(json.dumps([h.to_json() for h in hits], indent=2))
    elif hits:
        print("\n".join(h.describe() for h in hits))
    else:
        print("no container package is affected")
    return REBUILD_DUE if hits else 0


def _host_view(root: Path | None) -> Any:
    """The host's view (freight.host.installed), imported only when asked for: it needs freight-host."""
    from freight.host.installed import HostView

    return HostView.open(root)

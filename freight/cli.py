"""The `freight` command line: global options, subcommands, exit codes.

Exit codes scripts can rely on: 0 success, 1 a failure (a tool, a repository,
a signature), 2 bad input (arguments, manifest, lock), 130 interrupted.
Each subcommand lives in `freight.commands`, one module per command family.
"""

from __future__ import annotations

import argparse
import logging
import sys

from freight import __version__
from freight import log as flog
from freight.commands import COMMANDS
from freight.errors import FreightError


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="freight",
        description="Build, sign, ship and run containers as RPMs.",
        epilog="Run 'freight COMMAND --help' for the options of one command.",
    )
    top.add_argument("--version", action="version", version=f"freight {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    noise = common.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_const", dest="verbosity", const=flog.QUIET, help="print only warnings and errors")
    noise.add_argument("-v", "--verbose", action="store_const", dest="verbosity", const=flog.VERBOSE, help="print every command and package")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.add_parser(sub, common)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    flog.setup(args.verbosity or flog.NORMAL)
    try:
        return args.func(args) or 0
    except FreightError as exc:
        flog.log.error("%s", exc)
        return exc.exit_code
    except KeyboardInterrupt:
        flog.log.error("interrupted")
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())

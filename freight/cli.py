"""The `freight` command line: global options, subcommands, exit codes.

Exit codes scripts can rely on: 0 success, 1 a failure (a tool, a repository,
a signature), 2 bad input (arguments, manifest, lock), 130 interrupted.
Each subcommand lives in `freight.commands`, one module per command family;
only the module of the command being run is imported (see freight.commands),
and `freight --version` imports nothing but freight's version.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from freight import __version__

if TYPE_CHECKING:
    import argparse


def parser(argv: list[str], *, every: bool = False) -> argparse.ArgumentParser:
    """The parser for ARGV: the named command's module in full, the others by summary only
    (EVERY: all of them in full, for the man pages and completion made when freight is packaged)."""
    import argparse
    import importlib

    from freight.commands import COMMANDS, CommandParser
    from freight.common import log as flog

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
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=CommandParser)
    wanted = _command_in(argv)
    if every:
        for module in dict.fromkeys(command.module for command in COMMANDS.values()):
            importlib.import_module(f"freight.commands.{module}").add_parser(sub, common)
    elif wanted in COMMANDS:
        importlib.import_module(f"freight.commands.{COMMANDS[wanted].module}").add_parser(sub, common)
    else:
        for name, command in COMMANDS.items():
            sub.add_parser(name, help=command.summary)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--version"]:  # asked by scripts and packagers: answered before anything else loads
        print(f"freight {__version__}")
        return 0
    from freight.common import log as flog
    from freight.common.errors import FreightError

    flog.setup()
    try:
        args = parser(argv).parse_args(argv)
        flog.setup(args.verbosity or flog.NORMAL)
        return args.func(args) or 0
    except FreightError as exc:
        flog.log.error("%s", exc)
        return exc.exit_code
    except ModuleNotFoundError as exc:
        return _missing_side(argv, exc)
    except KeyboardInterrupt:
        flog.log.error("interrupted")
        return 130
    except BrokenPipeError:
        return 1


def _command_in(argv: list[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _missing_side(argv: list[str], exc: ModuleNotFoundError) -> int:
    """A command of the side this machine does not have (a build command on a host): say which package."""
    from freight.commands import COMMANDS
    from freight.common import log as flog

    command = _command_in(argv)
    if not (exc.name or "").startswith("freight.") or command not in COMMANDS:
        raise exc
    side = COMMANDS[command].side
    flog.log.error("'freight %s' needs the %s package, which is not installed here (%s is missing)", command, side, exc.name)
    return 1


if __name__ == "__main__":
    sys.exit(main())

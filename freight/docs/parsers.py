"""The parsers the man pages and completion are made from, each with the package that ships it."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import NamedTuple

from freight import cli
from freight.commands import BUILD_SIDE, COMMANDS, HOST_SIDE
from freight.host import hook

COMMON = "freight-common"  # ships the `freight` command itself


class Documented(NamedTuple):
    name: str  # the page's name: freight, freight-build, freight-host-hook …
    parser: argparse.ArgumentParser
    summary: str
    package: str  # freight, freight-common or freight-host


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """PARSER's subcommands by name (none when it has no subparsers)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def documented() -> Iterator[Documented]:
    """The top `freight` parser, every command's, and the scriptlet hook's."""
    yield Documented("freight", cli.parser([]), "build, sign, ship and run containers as RPMs", COMMON)
    for name, sub in subcommands(cli.parser([], every=True)).items():
        yield Documented(f"freight-{name}", sub, COMMANDS[name].summary, COMMANDS[name].side)
    yield Documented("freight-host-hook", hook.parser(), "the scriptlet hook of freight container packages", HOST_SIDE)

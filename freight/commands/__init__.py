"""freight's subcommands: a table here, one module per command family.

The table names every command, the module that defines it and its one-line
summary, so `freight --help` and `freight --version` import no command at all
and a command imports only its own module; each module imports what its
handler runs only when it runs. Each module has `add_parser(subparsers,
common)`, which adds its commands (with `add` below) and sets `func` to a
handler taking the parsed arguments and returning an exit code.
"""

from __future__ import annotations

import argparse
from typing import Any, NamedTuple

# Which freight package ships what a command runs: a host has freight-host only.
BUILD_SIDE = "freight"
HOST_SIDE = "freight-host"


class Command(NamedTuple):
    module: str  # freight.commands.MODULE defines it
    summary: str
    side: str  # the package that ships what it runs


COMMANDS: dict[str, Command] = {
    "build": Command("build", "build a container RPM from a manifest", BUILD_SIDE),
    "key": Command("key", "manage the signing keyring", BUILD_SIDE),
    "sign": Command("sign", "sign RPMs with rpmsign", BUILD_SIDE),
    "publish": Command("publish", "write (signed) yum repository metadata for a folder of RPMs", BUILD_SIDE),
    "verify": Command("verify", "verify RPM signatures strictly, or an installed container's files", BUILD_SIDE),
    "repo-file": Command("repo_file", "print a .repo file for hosts (gpgcheck and repo_gpgcheck on)", BUILD_SIDE),
    "outdated": Command("updates", "list locked packages that have newer versions", BUILD_SIDE),
    "affected": Command("updates", "list container packages that bundle a (vulnerable) package", BUILD_SIDE),
    "schema": Command("schema", "print the manifest JSON Schema", BUILD_SIDE),
    "rebuild": Command("rebuild", "rebuild a container RPM from what it carries and verify it is reproduced", BUILD_SIDE),
    "sbom": Command("sbom", "print a container's SBOM (SPDX or CycloneDX) from its RPM, manifest or installation", BUILD_SIDE),
    "list": Command("host", "list installed containers and their machines", HOST_SIDE),
    "start": Command("host", "start a container's machine", HOST_SIDE),
    "stop": Command("host", "stop a container's machine", HOST_SIDE),
    "restart": Command("host", "restart a machine (onto its image's newest snapshot)", HOST_SIDE),
    "enable": Command("host", "start a machine at boot", HOST_SIDE),
    "disable": Command("host", "do not start a machine at boot", HOST_SIDE),
    "status": Command("host", "show one machine", HOST_SIDE),
    "purge": Command("host", "remove the state a removed container left", HOST_SIDE),
    "rollback": Command("host", "restart a machine on its image's previous snapshot", HOST_SIDE),
    "repair": Command("host", "put images a dead rpm transaction left back in step with rpm", HOST_SIDE),
    "instance": Command("host", "make and remove machines no package owns", HOST_SIDE),
    "exec": Command("runtime", "run a command inside a running machine", HOST_SIDE),
    "shell": Command("runtime", "an interactive shell in a running machine", HOST_SIDE),
    "cp": Command("runtime", "copy files into or out of a machine", HOST_SIDE),
    "logs": Command("runtime", "a machine's output and freight's events for it", HOST_SIDE),
    "tail": Command("runtime", "stream a file from inside a running machine", HOST_SIDE),
    "set": Command("runtime", "change a machine's limits, live and for its next starts", HOST_SIDE),
    "network": Command("network", "show the bridged networks, their machines and addresses", HOST_SIDE),
}


class CommandParser(argparse.ArgumentParser):
    """A command's parser; with `intermixed=True` its positionals may come before, between and
    after its options (`affected REPO --cve X REPO`).

    Plain argparse stops a positional at the first option, and its own
    `parse_intermixed_args` cannot be asked for by a subcommand: the top parser
    calls the subcommand parser's `parse_known_args`. So that call is turned
    into argparse's intermixed parse (which itself calls `parse_known_args`:
    the flag is off while it runs).
    """

    def __init__(self, *args: Any, intermixed: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.intermixed = intermixed

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        if not self.intermixed:
            return super().parse_known_args(args, namespace)
        self.intermixed = False
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self.intermixed = True


def add(sub: argparse._SubParsersAction, name: str, common: argparse.ArgumentParser, **kwargs: Any) -> argparse.ArgumentParser:
    """The parser of the command NAME, with its summary from the table and the common options
    (`intermixed=True`: see CommandParser)."""
    return sub.add_parser(name, parents=[common], help=COMMANDS[name].summary, **kwargs)

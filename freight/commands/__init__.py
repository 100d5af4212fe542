"""freight's subcommands, one module per command family.

Each module has `add_parser(subparsers, common)`, which adds its commands and
sets `func` to a handler taking the parsed arguments and returning an exit code.
"""

from freight.commands import build, host, key, publish, repo_file, schema, sign, updates, verify

COMMANDS = [build, key, sign, publish, verify, repo_file, updates, schema, host]

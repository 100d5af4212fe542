"""bash completion for `freight`, written from the parsers: commands, their subcommands and options,
and the names of the host's machines where a host command takes one.

The command table and options are fixed when freight is packaged; machine
names are read when completing, from freight-host's registry (one file per
machine), which costs no process and no Python start-up.
"""

from __future__ import annotations

import argparse
import shlex

from freight.commands import HOST_SIDE
from freight.docs.parsers import Documented, subcommands
from freight.model.paths import LIB_DIR

INSTANCES = f"{LIB_DIR}/registry/instances"
_MACHINE_ARGS = {"name", "instance"}  # positionals that name a machine in the host commands


def script(top: argparse.ArgumentParser, commands: list[Documented]) -> str:
    """The completion script for TOP and its COMMANDS (freight-NAME pages, with their sides)."""
    cases = [_case("", _options(top) + list(subcommands(top)), machines=False)]
    for doc in commands:
        name = doc.name.removeprefix("freight-")
        nested = subcommands(doc.parser)
        host = doc.package == HOST_SIDE
        cases.append(_case(name, _options(doc.parser) + list(nested), machines=host and not nested and _takes_machine(doc.parser)))
        for sub_name, sub in nested.items():
            cases.append(_case(f"{name} {sub_name}", _options(sub), machines=host and _takes_machine(sub)))
    body = "\n".join(cases)
    return f"""\
# bash completion for freight; written from its argument parsers (freight.docs.completion).
_freight_machines() {{
    local f
    for f in {INSTANCES}/*.json; do
        [[ -e $f ]] || continue
        f=${{f##*/}}
        printf '%s\\n' "${{f%.json}}"
    done
}}

_freight() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} path="" i w words="" machines=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${{COMP_WORDS[i]}}
        [[ $w == -* ]] && continue
        case "$path" in
            "") path=$w ;;
{_nested_paths(commands)}
        esac
    done
    case "$path" in
{body}
    esac
    if [[ $cur != -* && $machines == 1 ]]; then
        words="$words $(_freight_machines)"
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F _freight freight
"""


def _case(path: str, words: list[str], machines: bool) -> str:
    pattern = shlex.quote(path) if path else '""'
    return f"        {pattern}) words={shlex.quote(' '.join(words))}; machines={int(machines)} ;;"


def _nested_paths(commands: list[Documented]) -> str:
    """Lines that extend PATH with a subcommand (`key` -> `key generate`) for commands that have them."""
    lines = []
    for doc in commands:
        nested = subcommands(doc.parser)
        if nested:
            name = doc.name.removeprefix("freight-")
            lines.append(f"            {shlex.quote(name)}) case $w in {'|'.join(map(shlex.quote, nested))}) path=\"$path $w\" ;; esac ;;")
    return "\n".join(lines)


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [option for action in parser._actions if action.help != argparse.SUPPRESS for option in action.option_strings]


def _takes_machine(parser: argparse.ArgumentParser) -> bool:
    return any(not a.option_strings and a.dest in _MACHINE_ARGS for a in parser._actions)

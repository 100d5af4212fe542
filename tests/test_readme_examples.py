"""Every command the README shows for the build machine runs as shown, in order, in a fresh copy
of the tree, and prints what the README shows where it shows output.

How the README is read: a code block's commands are its lines after a shell prompt (`$ ` or
`# `), a line ending in `\\` continued by the next; the lines after a command, up to the next
prompt, are what it prints on stdout (`…` stands for any text within a line). A command must
exit 0, unless the next one is `echo $?`, which then shows its status. A block marked with
`<!-- host -->` on the line before runs on a host and is not run here (the booted-host tests
cover those commands); `<!-- not run: WHY -->` marks the few others (booting the demo host,
the whole suite, a server that runs until stopped). Blocks without a prompt are synopses.

The copy is what a clone has (the files git tracks or would track), made a git checkout, with
a HOME of its own and none of freight's variables. One shortcut: its `.venv` is prepared to
see the Python libraries `tools/requirements.txt` names from the running environment, so
`make setup` inside it needs no network.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow

README = ROOT / "README.md"
PROMPTS = ("$ ", "# ")
HOST = "host"
NOT_RUN = "not run:"


@dataclass
class Example:
    line: int  # the README's line of the command
    command: str
    output: list[str] | None = None  # what the README shows it printing; None: nothing shown


@dataclass
class Block:
    line: int
    marker: str  # the HTML comment right before it, without <!-- -->, or ""
    examples: list[Example] = field(default_factory=list)


def blocks(text: str) -> list[Block]:
    """The README's code blocks that show commands (indented blocks and ```console fences)."""
    from markdown_it import MarkdownIt

    found = []
    marker = ""
    for token in MarkdownIt().parse(text):
        if token.type == "html_block" and token.content.strip().startswith("<!--"):
            marker = token.content.strip().removeprefix("<!--").removesuffix("-->").strip()
            continue
        if token.type == "code_block" or (token.type == "fence" and token.info.strip() == "console"):
            first = token.map[0] + 1 + (token.type == "fence")
            block = Block(first, marker, parse_commands(token.content, first))
            if block.examples:
                found.append(block)
        marker = ""
    return found


def parse_commands(content: str, first_line: int) -> list[Example]:
    """The prompt lines of one block, each with the output lines that follow it."""
    examples: list[Example] = []
    lines = content.rstrip("\n").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(PROMPTS):
            command, start = line[2:], i
            while command.endswith("\\") and i + 1 < len(lines):
                i += 1
                command += "\n" + lines[i]
            examples.append(Example(first_line + start, command))
        elif examples:
            examples[-1].output = [*(examples[-1].output or []), line]
        elif any(l.startswith(PROMPTS) for l in lines):
            raise AssertionError(f"README.md:{first_line + i}: output before the block's first command")
        i += 1
    return examples


def matches(shown: list[str], printed: list[str]) -> bool:
    """PRINTED is what SHOWN says, line for line, `…` standing for any text."""
    if len(shown) != len(printed):
        return False
    return all(re.fullmatch(".*".join(map(re.escape, s.strip().split("…"))), p.strip()) for s, p in zip(shown, printed))


def fresh_clone(work: Path) -> None:
    """WORK as a clone has it: the tree's source files, a git checkout, a .venv that `make setup`
    completes without network (it sees the running environment's libraries)."""
    from freight.dist.rpms import source_files

    for name in source_files(ROOT):
        dest = work / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest, follow_symlinks=False)
    subprocess.run(["git", "init", "-q", work], check=True)
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", work / ".venv"], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(work / ".venv")}))
    (site / "freight-test-borrowed.pth").write_text(sysconfig.get_path("purelib") + "\n")


def user_env(home: Path, work: Path) -> dict[str, str]:
    """A user's shell: their own HOME, no freight settings, no virtual environment active."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FREIGHT_", "PYTEST_")) and k not in
           ("GNUPGHOME", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    ours = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p and os.path.realpath(p) != os.path.realpath(ours))
    return {**env, "HOME": str(home), "PWD": str(work)}


def script(examples: list[Example], out: Path) -> str:
    """One bash session running EXAMPLES in order (so `. activate`, `export` and `cd` carry on),
    each one's stdout, stderr and status kept in OUT; `$?` is each command's own status."""
    parts = ["__status() { return \"$1\"; }"]
    for i, example in enumerate(examples):
        parts.append(f"{{ {example.command}\n}} </dev/null >{out}/{i}.out 2>{out}/{i}.err; __rc=$?; echo $__rc >{out}/{i}.rc; __status $__rc")
    return "\n".join(parts) + "\n"


def test_the_readme_marks_what_it_does_not_run() -> None:
    """The markers are the ones this test knows, every skip says why, and the host's commands are marked."""
    found = blocks(README.read_text())
    for block in found:
        assert block.marker in ("", HOST) or (block.marker.startswith(NOT_RUN) and block.marker != NOT_RUN), (block.line, block.marker)
    hosts = [b for b in found if b.marker == HOST]
    assert hosts and any("freight list" in e.command for b in hosts for e in b.examples)
    assert any(e.command.startswith("freight outdated --host") for b in hosts for e in b.examples)
    assert not any(e.command.startswith("dnf install") for b in found if b.marker != HOST for e in b.examples)


def test_every_build_machine_example_runs_as_shown(tmp_path: Path) -> None:
    work, home, out = tmp_path / "freight", tmp_path / "home", tmp_path / "out"
    for d in (work, home, out):
        d.mkdir()
    fresh_clone(work)
    examples = [e for b in blocks(README.read_text()) if not b.marker for e in b.examples]
    assert len(examples) > 15, examples
    (tmp_path / "readme.sh").write_text(script(examples, out))
    subprocess.run(["bash", tmp_path / "readme.sh"], cwd=work, env=user_env(home, work), timeout=1800, check=False)

    failures = []
    for i, example in enumerate(examples):
        status = int((out / f"{i}.rc").read_text())
        stdout = (out / f"{i}.out").read_text()
        stderr = (out / f"{i}.err").read_text()
        shown_status = i + 1 < len(examples) and examples[i + 1].command == "echo $?"
        if status != 0 and not shown_status:
            failures.append(f"README.md:{example.line}: {example.command!r} exited {status}\n{stderr[-2000:]}")
        elif example.output is not None and not matches(example.output, stdout.rstrip("\n").splitlines()):
            failures.append(f"README.md:{example.line}: {example.command!r} printed\n{stdout}\nthe README shows\n"
                            + "\n".join(example.output) + f"\n{stderr[-1000:]}")
    assert not failures, "\n\n".join(failures)

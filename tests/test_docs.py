"""The man pages and bash completion made from the argument parsers (freight.docs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from freight.commands import COMMANDS


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    out = tmp_path_factory.mktemp("docs")
    proc = subprocess.run([sys.executable, "-m", "freight.docs", out / "man", out / "completions"],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    listed = dict(reversed(line.split()) for line in proc.stdout.splitlines())
    return out / "man/man1", out / "completions/freight", listed


def test_a_page_per_command_in_the_package_of_its_side(made: tuple[Path, Path, dict[str, str]]) -> None:
    mandir, _, listed = made
    assert listed["freight.1"] == "freight-common" and listed["freight-host-hook.1"] == "freight-host"
    for name, command in COMMANDS.items():
        assert listed[f"freight-{name}.1"] == command.side
    publish = (mandir / "freight-publish.1").read_text()
    assert publish.startswith('.TH freight-publish "1"') and r"\-\-sign\-key" in publish and "EXIT STATUS" in publish
    overview = (mandir / "freight.1").read_text()
    assert r"\fBfreight\-build\fR(1)" in overview and r"\-\-sign\-key" not in overview  # options live on the commands' pages
    man = subprocess.run(["man", "-l", mandir / "freight-build.1"], capture_output=True, text=True, env={"MANWIDTH": "80"})
    assert man.returncode == 0 and "--update-lock" in man.stdout


def complete(script: Path, line: str, registry: Path) -> list[str]:
    """What bash completes for LINE (the cursor at its end), with machines registered in REGISTRY."""
    text = script.read_text().replace("/var/lib/freight/registry/instances", str(registry))
    words = line.split(" ")
    program = f"""{text}
COMP_WORDS=({' '.join(f"'{w}'" for w in words)}); COMP_CWORD={len(words) - 1}
_freight; printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    return subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True).stdout.split()


def test_bash_completes_commands_options_and_machine_names(made: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    _, script, _ = made
    registry = tmp_path / "instances"
    registry.mkdir()
    for name in ("webapp", "webapp-prod", "db"):
        (registry / f"{name}.json").write_text("{}")
    assert complete(script, "freight pub", registry) == ["publish"]
    assert "--update-lock" in complete(script, "freight build --up", registry)
    assert sorted(complete(script, "freight start web", registry)) == ["webapp", "webapp-prod"]
    assert complete(script, "freight key gen", registry) == ["generate"]
    assert complete(script, "freight instance remove d", registry) == ["db"]
    assert complete(script, "freight build web", registry) == []  # a manifest: bash completes file names

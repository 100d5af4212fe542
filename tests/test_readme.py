"""The README says what freight does: its command reference matches `--help`, and its
examples of what freight prints are what freight prints."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, freight

from freight.commands import COMMANDS

README = (ROOT / "README.md").read_text()


def reference() -> list[tuple[list[str], list[str]]]:
    """The rows of the README's command table: (command words, options named)."""
    section = README[README.index("## Commands\n") : README.index("Exit codes, for every command")]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.replace("\\|", "/").split("|")[1:-1]]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        for name in re.findall(r"`([^`]+)`", cells[0]):
            tokens = name.split()
            subs = tokens[1].split("/") if len(tokens) > 1 and "/" in tokens[1] else []
            rows.append(([tokens[0], *subs], re.findall(r"(--?[a-z][a-z-]*)", cells[3])))
    return rows


def help_text(*command: str) -> str:
    result = freight(*command, "--help")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_command_table_names_every_command() -> None:
    named = {words[0] for words, _ in reference()}
    assert named == set(COMMANDS), named ^ set(COMMANDS)


@pytest.mark.parametrize("words, options", reference(), ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_each_option_the_table_names_is_in_the_commands_help(words: list[str], options: list[str]) -> None:
    helps = [help_text(words[0])]
    helps += [help_text(words[0], sub) for sub in words[1:]]  # key generate/list/…: the subcommands' own help
    for option in options:
        assert any(re.search(rf"(^|[\s\[,]){re.escape(option)}\b", h) for h in helps), (words, option)


def test_subcommands_have_a_help_text_of_their_own() -> None:
    for family, subs in (("key", ("generate", "list", "export", "import")), ("instance", ("create", "remove", "unpin"))):
        for sub in subs:
            text = help_text(family, sub)
            body = text.split("\n\n", 1)[1] if "\n\n" in text else ""
            assert not body.startswith(("positional arguments", "options")), f"freight {family} {sub} --help has no description"


def test_exit_codes_are_the_ones_the_cli_documents() -> None:
    import freight.cli

    doc = freight.cli.__doc__ or ""
    assert "2 bad input" in doc and "2 bad input" in README
    for command in ("outdated", "affected", "build"):
        assert "2: bad input" in help_text(command), command


def test_rpm_provides_of_the_demo_container_is_what_the_readme_shows(built_webapp: Path) -> None:
    shown = README[README.index("# rpm -qp --provides repo/container-webapp-1.0-1.x86_64.rpm\n") :].splitlines()[1:]
    shown = [line.strip() for line in shown[: shown.index("")]]
    provides = subprocess.run(["rpm", "-qp", "--provides", built_webapp], capture_output=True, text=True, check=True).stdout
    assert provides.splitlines() == shown


def test_the_manifest_example_builds_a_valid_manifest(tmp_path: Path) -> None:
    """The README's manifest is one freight accepts (its files and repository stand in here)."""
    from freight.manifest import load

    text = README[README.index("```yaml\n", README.index("## The manifest")) + 8 :]
    text = text[: text.index("```")]
    (tmp_path / "site.conf").write_text("")
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(text)
    loaded = load.load(manifest)
    # the example says its network; without one, what is built now is bridged (see "Networks")
    assert (loaded.name, loaded.data["run"]["network"], "ports" in loaded.data["run"]) == ("webapp", "host", False)
    assert "`run.network: bridge` is the default for every container built now" in README
    manifest.write_text(text.replace("  network: host", "  ports: ['8080:80']"))
    assert load.load(manifest).data["run"]["network"] == "bridge"

"""The layering holds: contracts kept, and commands and the hook load only what they run.

import-linter checks the static imports (setup.cfg's contracts, `make
lint-imports`); these tests check what a process really loads, in a fresh
interpreter each, so a module-level import that slips into a command's
module, or into the host side, fails here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

from freight.commands import COMMANDS, HOST_SIDE

# What a process may load only when it builds, signs, publishes or queries repositories.
HEAVY = ("dnf", "hawkey", "libdnf", "rpm", "jsonschema", "yaml", "createrepo_c", "pystemd", "jinja2", "rich")
BUILD_SIDE = ("freight.manifest", "freight.build", "freight.trust", "freight.publish", "freight.updates")


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running CODE."""
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(proc.stdout.splitlines()[-1]))


def offenders(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


def test_the_import_contracts_are_kept() -> None:
    lint = shutil.which("lint-imports", path=str(ROOT / ".venv/bin")) or shutil.which("lint-imports")
    if lint is None:
        pytest.fail("lint-imports is missing: make setup installs it (tools/requirements.txt)")
    proc = subprocess.run([lint, "--no-logo", "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_version_loads_nothing_but_the_cli() -> None:
    modules = loaded_after("from freight.cli import main\nmain(['--version'])")
    assert sorted(m for m in modules if m.startswith("freight")) == ["freight", "freight.cli"]
    assert offenders(modules, ("argparse", "logging", *HEAVY)) == []


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_commands_parser_loads_no_tool(command: str) -> None:
    """`freight COMMAND --help` (any command's parser) loads none of the libraries its work needs."""
    modules = loaded_after(f"from freight.cli import parser\nparser([{command!r}])")
    assert offenders(modules, HEAVY) == []
    if COMMANDS[command].side == HOST_SIDE:
        assert offenders(modules, (*BUILD_SIDE, "freight.host")) == []


def test_the_installer_hook_loads_no_build_side() -> None:
    """What `freight-host-hook` imports: on a host without jsonschema or createrepo_c it must start."""
    modules = loaded_after("import freight.host.hook")
    assert offenders(modules, BUILD_SIDE) == []
    assert offenders(modules, ("jsonschema", "yaml", "createrepo_c", "dnf", "hawkey")) == []

"""The host commands on a machine that has freight but not freight-host."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

HIDE_HOST = """
import importlib.abc, sys
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "freight.host" or name.startswith("freight.host."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Hide())
from freight.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_without_freight_host(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", HIDE_HOST, *args], cwd=ROOT, capture_output=True, text=True)


def test_freight_builds_without_freight_host() -> None:
    assert run_without_freight_host("schema").returncode == 0
    assert "list" in run_without_freight_host("--help").stdout


def test_a_host_command_says_freight_host_is_missing() -> None:
    proc = run_without_freight_host("list")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: this command needs freight-host, which is not installed here (No module named 'freight.host')"

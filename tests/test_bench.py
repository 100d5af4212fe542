"""The benchmark code (bench/) keeps working: its generator and one tiny run of `make bench`.

Nothing here looks at speed: the bench reports goals, it never fails on them.
This only makes sure the generator and every figure still run end to end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from bench import debianrepo, repogen
from bench.sizes import SIZES

TINY = repogen.Params(packages=8, files=300, megabytes=6)


def test_plan_has_the_requested_shape() -> None:
    plans = repogen.plan(TINY, "x86_64")
    names = [p.name for p in plans]
    assert len(plans) == TINY.packages and len(set(names)) == len(names)
    files = sum(p.nfiles for p in plans)
    assert abs(files - TINY.files) <= TINY.files * 0.1
    assert abs(sum(p.nbytes for p in plans) - TINY.megabytes * 1e6) <= TINY.megabytes * 1e6 * 0.1
    kinds = {e.kind for p in plans for e in p.entries}
    assert {"dir", "text", "code", "blob", "link"} <= kinds
    # every dependency is satisfied inside the repository
    caps = set(names) | {c for p in plans for c in p.provides}
    assert all(r in caps for p in plans for r in p.requires)
    assert repogen.plan(TINY, "x86_64") == plans  # deterministic
    odd = {e.path.rsplit("/", 1)[1] for p in plans for e in p.entries if "/odd names/" in e.path}
    assert odd == set(repogen.ODD_NAMES)  # figure 1's tree holds the names rpm's file lists find hardest


@pytest.mark.slow
def test_tiny_bench_run_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--size", "tiny", "--cache-dir", tmp_path / "cache",
         "--work-dir", tmp_path / "work", "--json", out],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    rows = {f["key"]: f for f in doc["figures"]}
    assert set(rows) >= {"build", "noop", "install", "publish", "instance-zfs", "instance-dir", "derivative", "memory", "debian"}
    measured = ["build", "noop", "install", "publish", "derivative", "memory"] + (["debian"] if debianrepo.available() is None else [])
    for key in measured:
        assert rows[key]["freight"] > 0 and rows[key]["floor"] > 0 and rows[key]["result"] in ("ok", "MISS")
    assert doc["machine"]["cores"] >= 1 and "zstd" in doc["machine"]["tools"]
    for row in rows.values():  # the table names every figure, measured or not
        assert row["figure"] in proc.stdout
    # a second generation with the same parameters reuses the repository
    again = repogen.ensure(SIZES["tiny"].repo, tmp_path / "cache")
    assert again.reused

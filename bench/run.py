"""`make bench`: freight against the floor, side by side, in one table (issue 6).

    python -m bench.run [--size tiny|small|default] [--packages N --files N --megabytes N]
                        [--reps N] [--only build,noop,...] [--json bench/results.json]

Each figure is measured against its floor in the same run, as the median of
several repetitions, because absolute seconds on a shared machine mean little.
The table goes to stdout, the same as JSON (with the machine's cores and the
tools' versions) to bench/results.json. Nothing here fails on speed: a missed
goal is reported, not raised.
"""

from __future__ import annotations

import argparse
import compileall
import time
from dataclasses import asdict
from pathlib import Path

from bench import repogen, startup, workdir  # noqa: F401 (startup registers the start-up figures)
from bench.figures import FIGURES
from bench.report import table, tool_versions, write_json
from bench.sizes import SIZES
from bench.workload import Workload, cores
from freight.common import log as flog

HERE = Path(__file__).resolve().parent


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="default", help="a preset repository shape (default: default)")
    parser.add_argument("--packages", type=int, help="override the preset's package count")
    parser.add_argument("--files", type=int, help="override the preset's file count")
    parser.add_argument("--megabytes", type=int, help="override the preset's installed size (MB)")
    parser.add_argument("--reps", type=int, help="repetitions per figure (default: by size)")
    parser.add_argument("--only", help=f"comma-separated figures (default: all of {', '.join(FIGURES)})")
    parser.add_argument("--cache-dir", type=Path, default=repogen.DEFAULT_CACHE, help="where generated repositories are kept")
    parser.add_argument("--work-dir", type=Path, help="where builds and installs happen (default: a tmpfs when there is room, see workdir)")
    parser.add_argument("--json", type=Path, default=HERE / "results.json", help="where the results go as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    flog.setup()
    size = SIZES[args.size]
    params = repogen.Params(
        packages=args.packages or size.repo.packages,
        files=args.files or size.repo.files,
        megabytes=args.megabytes or size.repo.megabytes,
    )
    keys = args.only.split(",") if args.only else list(FIGURES)
    unknown = [k for k in keys if k not in FIGURES]
    if unknown:
        raise SystemExit(f"unknown figure(s): {', '.join(unknown)} (known: {', '.join(FIGURES)})")
    started = time.monotonic()
    # Measure freight as the freight RPM installs it, with its bytecode: without it (a fresh
    # clone, or PYTHONDONTWRITEBYTECODE set) every command compiles its modules first.
    compileall.compile_dir(str(HERE.parent / "freight"), quiet=1)
    repo = repogen.ensure(params, args.cache_dir)
    flog.step("%s repository %s: %d packages, %d files, %.0f MB installed", "Reusing" if repo.reused else "Made",
              repo.path.name, len(repo.packages), repo.files, repo.bytes / 1e6)
    with workdir.scratch(args.work_dir, repo.bytes, args.cache_dir / "work") as work:
        flog.step("Working in %s (%s)", work, workdir.filesystem(work))
        workload = Workload(repo=repo, work=work, reps=args.reps or size.reps, publish_repo=size.publish_repo, cache=args.cache_dir)
        rows = [FIGURES[key](workload) for key in keys]
        work_fs = workdir.filesystem(work)
    meta = {
        "size": args.size,
        "params": asdict(params),
        "publish_params": asdict(size.publish_repo),
        "repository": {"files": repo.files, "bytes": repo.bytes, "rpm_bytes": repo.rpm_bytes, "packages": len(repo.packages)},
        "repetitions": workload.reps,
        "work_filesystem": work_fs,
        "machine": {"cores": cores(), "tools": tool_versions()},
        "elapsed_s": round(time.monotonic() - started, 1),
        "extras": workload.extras,
        "samples": _samples(workload),
    }
    print(table(rows))
    write_json(args.json, rows, meta)
    flog.step("Wrote %s (%.0f s in all)", args.json, meta["elapsed_s"])
    return 0


def _samples(w: Workload) -> dict[str, object]:
    """Every raw measurement that was made (the cached ones only: nothing is measured here)."""
    out: dict[str, object] = {name: asdict(w.__dict__[name]) for name in ("builds", "installs", "publishes") if name in w.__dict__}
    if "noops" in w.__dict__:
        out["noops"] = [asdict(s) for s in w.noops]
    return out


if __name__ == "__main__":
    raise SystemExit(main())

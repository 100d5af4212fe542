"""Where a `freight build` spends its time, step by step (`make bench-profile`).

    python -m bench.profile [--size small|default] [--work-dir DIR]

One build runs in this process with a stopwatch around each step of
freight.build.pipeline (the dnf child, the file list, the spec, rpmbuild, cleanup),
and the dnf child runs under cProfile, so its time splits into metadata,
resolution, download, the rpm transaction and the scrub. Then, on the very
same staged tree, rpmbuild runs again with the full libmagic database instead
of freight's ELF-only one (freight.build.magic), and once more under `perf` (when
installed) to split rpmbuild's own time by library: classification
(libmagic), digests (libcrypto/libgcrypt), compression (libzstd), the kernel.
The floor's pieces (dnf alone, tar | zstd -T0 alone) are timed on the same
data for comparison, the install figure's `rpm -i` is taken apart the same
way (no digest checks, database only, perf), and the publish figure's
`freight publish` runs under cProfile. Timings are single runs:
read them as shares.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import pstats
import shlex
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from bench import repogen, workdir
from bench.measure import shell, timed
from bench.sizes import SIZES
from bench.workload import Workload
from freight.common import log as flog
from freight.common.run import CommandError, run
from freight.model.paths import RPM_DBPATH

HERE = Path(__file__).resolve().parent
FULL_MAGIC = "/usr/share/misc/magic"  # libmagic's own database (it appends .mgc)
# dnf's steps inside the child, as (file suffix, function) in cProfile's stats.
CHILD_STEPS = (
    ("dnf child: configure", "freight/build/stage.py", "configure"),
    ("dnf child: read metadata (fill_sack)", "dnf/base.py", "fill_sack"),
    ("dnf child: select locked + resolve", "freight/build/stage.py", "_resolve"),
    ("dnf child: download (local repo)", "dnf/base.py", "download_packages"),
    ("dnf child: rpm transaction", "dnf/base.py", "do_transaction"),
    ("dnf child: scrub", "freight/build/stage.py", "scrub"),
)


class Stopwatch:
    """Wall time per label, summed over calls, except while paused (the extra rpmbuild runs)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._paused = False
        self.paused_seconds = 0.0

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if not self._paused:
                    self.seconds[label] += time.perf_counter() - start

        return timed_call

    @contextmanager
    def paused(self) -> Iterator[None]:
        self._paused = True
        start = time.perf_counter()
        try:
            yield
        finally:
            self._paused = False
            self.paused_seconds += time.perf_counter() - start


@contextmanager
def instrumented(watch: Stopwatch, child_profile: Path) -> Iterator[None]:
    """Time freight.build.pipeline's steps where they are looked up (module attributes), and profile the dnf child."""
    from freight.build import package, stage, staging
    from freight.build import pipeline as build
    from freight.manifest import lock

    real_stage_run = stage.run

    def stage_run(argv: list[Any], **kwargs: Any) -> Any:
        python, rest = argv[0], list(argv[1:])
        return real_stage_run([python, "-m", "cProfile", "-o", str(child_profile), *rest], **kwargs)

    with ExitStack() as stack:
        for module, name, label in (
            (lock, "repomd_digest", "repository digests"),
            (stage, "install", "dnf child (all)"),
            (build, "copy_files", "copy manifest files"),
            (build, "write_metadata", "write metadata"),
            (package, "write_filelist", "file list"),
            (package, "render", "render spec"),
            (package, "run", "rpmbuild"),
            (staging.shutil, "rmtree", "remove staging root and temp dirs"),
        ):
            stack.enter_context(mock.patch.object(module, name, watch.wrap(label, getattr(module, name))))
        stack.enter_context(mock.patch.object(stage, "run", stage_run))
        yield


def child_steps(profile: Path) -> dict[str, float]:
    """Cumulative seconds of each dnf step in the child's cProfile output."""
    return _cumulative(profile, CHILD_STEPS)


def rpmbuild_variants(results: dict[str, Any], work: Path, watch: Stopwatch) -> Callable[..., Any]:
    """A build_rpm that, after the real one, packs the same tree again (see _variants), off the stopwatch."""
    from freight.build import package

    real = package.build_rpm

    def build_rpm(*args: Any, **kwargs: Any) -> Path:
        built = real(*args, **kwargs)
        call = inspect.signature(real).bind(*args, **kwargs)
        call.arguments["outdir"] = work / "spare-out"
        with watch.paused():
            _variants(results, work, functools.partial(real, *call.args, **call.kwargs), call.arguments["buildroot"])
        return built

    return build_rpm


def _variants(results: dict[str, Any], work: Path, again: Callable[[], Path], buildroot: Path) -> None:
    """The same staged tree packed again: full libmagic database, the floor's tar | zstd, rpmbuild under perf."""
    from freight.build import package

    flog.step("rpmbuild again with the full libmagic database")
    with mock.patch.object(package, "_magic_db", lambda: FULL_MAGIC):
        start = time.perf_counter()
        again()
        results["rpmbuild_full_magic_s"] = time.perf_counter() - start
    flog.step("The floor's compression alone: tar | zstd -T0 of the staged tree")
    results["tar_zstd_of_stage_s"] = timed(shell(f"tar -C {shlex.quote(str(buildroot))} -cf - . | zstd -T0 -q -c >/dev/null")).seconds
    results["perf_rpmbuild_by_library"] = _perf_rpmbuild(package, again, work)


def _perf_rpmbuild(package: Any, again: Callable[[], Path], work: Path) -> dict[str, float] | str:
    """rpmbuild under `perf record`, its samples grouped by library; a reason string when perf is missing."""
    prefix = perf_prefix(work / "rpmbuild.perf")
    if prefix is None:
        return "perf is not installed"
    real_run = package.run

    def perf_run(argv: list[Any], **kwargs: Any) -> Any:
        return real_run([*prefix, *argv], **kwargs)

    flog.step("rpmbuild under perf")
    with mock.patch.object(package, "run", perf_run):
        again()
    return perf_by_library(work / "rpmbuild.perf")


def perf_prefix(data: Path) -> list[str] | None:
    """`perf record` in front of a command, or None without perf (it is optional)."""
    try:
        run(["perf", "--version"])
    except CommandError:
        return None
    return ["perf", "record", "-q", "-F", "999", "-o", str(data), "--"]


def perf_by_library(data: Path) -> dict[str, float]:
    """The share of perf samples per library (1 % and more)."""
    report = run(["perf", "report", "-i", str(data), "--stdio", "--sort", "dso", "--percent-limit", "1"]).stdout
    shares: dict[str, float] = {}
    for line in report.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0].endswith("%"):
            shares[fields[1]] = float(fields[0].rstrip("%"))
    return shares


# freight publish's steps, as (label, file suffix, function) in cProfile's stats.
PUBLISH_STEPS = (
    ("publish (all but interpreter start and imports)", "freight/cli.py", "main"),
    ("read the previous metadata", "freight/publish/repository.py", "_load_previous"),
    ("new package: check it is whole, then read it", "freight/publish/repository.py", "_read_packages"),
    ("  of which createrepo_c's read (file checksum)", "createrepo_c/__init__.py", "package_from_rpm"),
    ("write the metadata", "freight/publish/repository.py", "_write_metadata"),
)


def profile_publish(w: Workload) -> dict[str, float]:
    """Figure 4's `freight publish` of one more container under cProfile, with the floor's createrepo_c."""
    setup = w.publish_setup
    prof = w.work / "publish.prof"
    os.link(w.rpm, setup.added)
    flog.step("freight publish under cProfile")
    start = time.perf_counter()
    run([setup.argv[0], "-m", "cProfile", "-o", str(prof), *setup.argv[1:]], env=setup.env)
    out = {"freight publish (under cProfile)": time.perf_counter() - start}
    out.update(_cumulative(prof, PUBLISH_STEPS))
    out["full createrepo_c (the floor)"] = timed(["createrepo_c", "--quiet", str(setup.floor)]).seconds
    return out


def _cumulative(profile: Path, steps: tuple[tuple[str, str, str], ...]) -> dict[str, float]:
    """Cumulative seconds of each (label, file suffix, function) in a cProfile output."""
    stats = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    return {
        label: sum(v[3] for (file, _, name), v in stats.items() if name == func and file.endswith(suffix))
        for label, suffix, func in steps
    }


def profile_install(w: Workload) -> dict[str, Any]:
    """Figure 3's rpm -i taken apart: without digest checks, database only, and under perf."""
    out: dict[str, Any] = {}
    rpm_i = ["rpm", "-i", "--dbpath", RPM_DBPATH, "--nodeps", "--noscripts"]
    variants = {
        "rpm -i": [],
        "rpm -i --nodigest --nosignature": ["--nodigest", "--nosignature"],
        "rpm -i --justdb (database only)": ["--justdb"],
    }
    for label, extra in variants.items():
        root = w.work / "install-profile"
        root.mkdir()
        out[label] = timed([*rpm_i, "--root", str(root), *extra, str(w.rpm)], env={"RPM_FORCE_DEBIAN": "1"}).seconds
        shutil.rmtree(root)
    root = w.work / "install-profile"
    root.mkdir()
    prefix = perf_prefix(w.work / "install.perf")
    if prefix is None:
        out["by library"] = "perf is not installed"
    else:
        flog.step("rpm -i under perf")
        timed([*prefix, *rpm_i, "--root", str(root), str(w.rpm)], env={"RPM_FORCE_DEBIAN": "1"})
        out["by library"] = perf_by_library(w.work / "install.perf")
    shutil.rmtree(root)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="default")
    parser.add_argument("--cache-dir", type=Path, default=repogen.DEFAULT_CACHE)
    parser.add_argument("--work-dir", type=Path)
    parser.add_argument("--json", type=Path, default=HERE / "profile.json")
    args = parser.parse_args(argv)
    flog.setup()
    repo = repogen.ensure(SIZES[args.size].repo, args.cache_dir)
    results: dict[str, Any] = {"size": args.size, "files": repo.files, "bytes": repo.bytes}
    with workdir.scratch(args.work_dir, repo.bytes, args.cache_dir / "work") as work:
        w = Workload(repo=repo, work=work, reps=1, publish_repo=SIZES[args.size].publish_repo, cache=args.cache_dir)
        assert w.ready
        os.environ.update(w.freight_env())
        root = work / "floor" / "root"
        results["floor_dnf_s"] = timed(w.dnf_floor(root), env=w.floor_env()).seconds
        results["floor_tar_zstd_s"] = timed(shell(f"tar -C {shlex.quote(str(root))} -cf - . | zstd -T0 -q -c >/dev/null")).seconds
        results["steps"] = _profiled_build(w, results)
        results["install"] = profile_install(w)
        results["publish"] = profile_publish(w)
    _print(results)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    flog.step("Wrote %s", args.json)
    return 0


def _profiled_build(w: Workload, results: dict[str, Any]) -> dict[str, float]:
    from freight.build import package
    from freight.build import pipeline as build
    from freight.manifest import load as manifest

    watch = Stopwatch()
    with tempfile.TemporaryDirectory(dir=w.work) as tmp:
        child_profile = Path(tmp) / "child.prof"
        with instrumented(watch, child_profile), mock.patch.object(package, "build_rpm", rpmbuild_variants(results, w.work, watch)):
            flog.step("Profiled build")
            start = time.perf_counter()
            build.build(manifest.load(w.manifest), build.BuildOptions(outdir=w.outdir, force=True))
            watch.seconds["total (in process, without interpreter start)"] = time.perf_counter() - start - watch.paused_seconds
        steps = dict(watch.seconds)
        steps.update(child_steps(child_profile))
    return steps


def _print(results: dict[str, Any]) -> None:
    print(f"\nWhere a build of {results['files']} files, {results['bytes'] / 1e6:.0f} MB goes (one run, seconds):")
    for label, seconds in results["steps"].items():
        print(f"  {label:<48} {seconds:7.2f}")
    print(f"  {'rpmbuild with the full libmagic database':<48} {results['rpmbuild_full_magic_s']:7.2f}")
    print("floor, same data:")
    for key in ("floor_dnf_s", "floor_tar_zstd_s", "tar_zstd_of_stage_s"):
        print(f"  {key:<48} {results[key]:7.2f}")
    _print_shares("rpmbuild by library (perf samples, %):", results["perf_rpmbuild_by_library"])
    print("install (one run each, seconds):")
    install = dict(results["install"])
    shares = install.pop("by library")
    for label, seconds in install.items():
        print(f"  {label:<48} {seconds:7.2f}")
    _print_shares("rpm -i by library (perf samples, %):", shares)
    print("publish one more container (one run, seconds):")
    for label, seconds in results["publish"].items():
        print(f"  {label:<52} {seconds:7.2f}")


def _print_shares(title: str, shares: dict[str, float] | str) -> None:
    print(title)
    if isinstance(shares, str):
        print(f"  {shares}")
        return
    for dso, share in shares.items():
        print(f"  {dso:<48} {share:6.1f}")


if __name__ == "__main__":
    sys.exit(main())

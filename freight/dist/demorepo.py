"""Small RPM repositories built from spec files, for the offline demo and the tests.

freight needs no network to show what it does: `make demo` and the test suite
build their repositories from `specs/` with the real rpmbuild and createrepo_c.

    python -m freight.dist.demorepo OUTDIR [SPEC...] [-D NAME=VALUE...]
    python -m freight.dist.demorepo --update OUTDIR   # make demo-update

`--update` publishes what a distribution's security update looks like (a
newer demo-www and an advisory naming a CVE) into the demo repository, so
`freight outdated` and `freight affected` have something true to report.
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from freight.common import log as flog
from freight.common.errors import FreightError
from freight.common.run import run

DEMO_SPECS = Path(__file__).resolve().parents[2] / "specs" / "demo"
BUILD_NAME_FMT = "%%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm"


def build_rpm(spec: Path, outdir: Path, defines: Mapping[str, str] | None = None) -> Path:
    """rpmbuild one spec into OUTDIR (flat, no arch folders); return the RPM's path."""
    return build_rpms(spec, outdir, defines)[-1]


def build_rpms(spec: Path, outdir: Path, defines: Mapping[str, str] | None = None, nodeps: bool = False) -> list[Path]:
    """rpmbuild one spec into OUTDIR (flat, no arch folders); return every package it wrote (subpackages too).

    NODEPS skips the BuildRequires check, for build machines whose rpm
    database does not know the system's packages (Debian).
    """
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="freight-rpmbuild-") as top:
        argv = [
            "rpmbuild", "-bb",
            "--define", f"_topdir {top}",
            "--define", f"_rpmdir {outdir}",
            "--define", f"_build_name_fmt {BUILD_NAME_FMT}",
            *(["--nodeps"] if nodeps else []),
        ]
        for name, value in (defines or {}).items():
            argv += ["--define", f"{name} {value}"]
        proc = run([*argv, spec])
    written = [line.split(":", 1)[1].strip() for line in proc.stdout.splitlines() if line.startswith("Wrote:")]
    if not written:
        raise FreightError(f"rpmbuild wrote no package for {spec}")
    return [Path(w) for w in written]


def createrepo(outdir: Path) -> None:
    """Write repodata for every RPM in OUTDIR, the way `freight publish` does (unsigned)."""
    from freight.publish.repository import publish

    publish(outdir)


def make_repo(outdir: Path, specs: Iterable[Path] | None = None, defines: Mapping[str, str] | None = None) -> list[Path]:
    """Build the specs (the demo's by default) into a repository at OUTDIR."""
    specs = sorted(specs) if specs is not None else sorted(DEMO_SPECS.glob("*.spec"))
    rpms = [build_rpm(spec, outdir, defines) for spec in specs]
    createrepo(outdir)
    return rpms


@dataclass(frozen=True)
class Fix:
    """A security fix as a distribution publishes it: a newer build of a package and its advisory."""

    spec: Path
    version: str
    advisory: str
    cve: str
    title: str
    issued: datetime.date = datetime.date(2026, 11, 1)
    defines: Mapping[str, str] = field(default_factory=dict)  # more rpm macros for the spec


# What `make demo-update` publishes; the README's outdated and affected examples show it.
DEMO_FIX = Fix(DEMO_SPECS / "demo-www.spec", "1.1", "DEMO-2026-0001", "CVE-2026-12345",
               "demo-www: the page no longer leaks the server's banner")


def publish_fix(repo: Path, fix: Fix) -> Path:
    """Build FIX's package into REPO, refresh its metadata and give it FIX's advisory (replacing
    the advisories REPO had, as modifyrepo_c does); the new RPM's path. Running it again
    publishes the same."""
    from freight.publish import updateinfo

    built = build_rpm(fix.spec, repo, {**fix.defines, "version_override": fix.version})
    createrepo(repo)
    header = run(["rpm", "-qp", "--qf", "%{NAME} %{EPOCHNUM} %{VERSION} %{RELEASE} %{ARCH}", built]).stdout.split()
    name, epoch, version, release, arch = header
    advisory = updateinfo.Advisory(
        id=fix.advisory,
        type="security",
        severity="Important",
        title=fix.title,
        cves=[fix.cve],
        packages=[updateinfo.AdvisoryPackage(name, int(epoch), version, release, arch, built.name)],
        issued=datetime.datetime.combine(fix.issued, datetime.time()),
    )
    updateinfo.add_to_repo(repo, [advisory])
    return built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m freight.dist.demorepo", description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path, help="the repository folder to write")
    parser.add_argument("specs", type=Path, nargs="*", help="spec files (default: the demo's, in specs/demo)")
    parser.add_argument("-D", "--define", action="append", default=[], metavar="NAME=VALUE", help="an rpm macro for every spec")
    parser.add_argument("--update", action="store_true", help=f"publish {DEMO_FIX.spec.stem} {DEMO_FIX.version} and its advisory {DEMO_FIX.advisory} into OUTDIR, an existing repository")
    args = parser.parse_args(argv)
    flog.setup()
    if args.update:
        if args.specs or args.define:
            parser.error("--update takes the repository only")
        built = publish_fix(args.outdir, DEMO_FIX)
        flog.step("Published %s with the security advisory %s (%s) into %s", built.name, DEMO_FIX.advisory, DEMO_FIX.cve, args.outdir)
        return 0
    defines = dict(d.split("=", 1) for d in args.define)
    flog.step("Building the repository %s", args.outdir)
    for rpm in make_repo(args.outdir, args.specs or None, defines):
        flog.log.info("  %s", rpm.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""freight packaged as RPMs: the source tarball, `freight`, `freight-common` and `freight-host`.

`make rpms` builds them from specs/freight.spec; the tarball holds the files
of the source tree that git tracks or would track (so uncommitted edits are
in it, ignored build outputs are not). For the Debian test host and the
demo, `host_repo()` adds the debian-host-provides package and writes
repodata, so that `dnf install freight-host` works there.

    python -m freight.dist.rpms rpms build/rpms
    python -m freight.dist.rpms host-repo build/host-repo
"""

from __future__ import annotations

import argparse
import logging
import os
import tarfile
import tempfile
from pathlib import Path

from freight import __version__
from freight.dist import demorepo
from freight.common import log as flog
from freight.common.errors import FreightError
from freight.common.run import run

log = logging.getLogger("freight.dist.rpms")

SOURCE_ROOT = Path(__file__).resolve().parents[2]
SPEC = SOURCE_ROOT / "specs" / "freight.spec"
HOST_PROVIDES_SPEC = SOURCE_ROOT / "specs" / "host" / "debian-host-provides.spec"


def source_files(root: Path = SOURCE_ROOT) -> list[str]:
    """The tree's files as git sees them: tracked or not ignored, and present (relative paths)."""
    if not (root / ".git").exists():
        raise FreightError(f"{root} is not a git checkout: cannot tell its source files from build outputs")
    listing = run(["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"]).stdout
    return sorted(name for name in set(listing.split("\0")) if name and os.path.lexists(root / name))


def source_tarball(outdir: Path, root: Path = SOURCE_ROOT) -> Path:
    """Write freight-VERSION.tar.gz (top folder freight-VERSION/) into OUTDIR; return its path."""
    prefix = f"freight-{__version__}"
    out = outdir / f"{prefix}.tar.gz"
    outdir.mkdir(parents=True, exist_ok=True)

    def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(out, "w:gz") as tar:
        for name in source_files(root):
            tar.add(root / name, arcname=f"{prefix}/{name}", recursive=False, filter=owned_by_root)
    return out


def spec_version(spec: Path = SPEC) -> str:
    return run(["rpmspec", "-q", "--srpm", "--qf", "%{VERSION}", spec]).stdout.strip()


def build_rpms(outdir: Path) -> list[Path]:
    """Build `freight`, `freight-common` and `freight-host` from the source tree into OUTDIR; return the RPMs."""
    version = spec_version()
    if version != __version__:
        raise FreightError(f"{SPEC} says Version: {version}, but freight/__init__.py says {__version__}: make them agree")
    nodeps = not rpm_manages_system()
    if nodeps:
        log.info("  rpm does not manage this system's packages (Debian?): not checking BuildRequires")
    with tempfile.TemporaryDirectory(prefix="freight-dist-") as tmp:
        source_tarball(Path(tmp))
        return demorepo.build_rpms(SPEC, outdir, {"_sourcedir": tmp}, nodeps=nodeps)


def rpm_manages_system() -> bool:
    """Whether this machine's rpm database knows its packages: on Debian it knows none, not even python3."""
    return run(["rpm", "-q", "--quiet", "--whatprovides", "python3"], check=False).returncode == 0


def host_repo(outdir: Path) -> list[Path]:
    """A repository for a Debian test host: freight's packages and debian-host-provides(-build), with repodata."""
    rpms = build_rpms(outdir) + demorepo.build_rpms(HOST_PROVIDES_SPEC, outdir)
    demorepo.createrepo(outdir)
    return rpms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m freight.dist.rpms", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["tarball", "rpms", "host-repo"])
    parser.add_argument("outdir", type=Path)
    args = parser.parse_args(argv)
    flog.setup()
    try:
        if args.what == "tarball":
            print(source_tarball(args.outdir))
            return 0
        flog.step("Building freight %s RPMs into %s", __version__, args.outdir)
        for rpm in build_rpms(args.outdir) if args.what == "rpms" else host_repo(args.outdir):
            print(rpm)
    except FreightError as exc:
        flog.log.error("%s", exc)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`freight rebuild --verify`: build a container again from what it carries, and compare.

A container RPM carries its manifest and lock, and its payload is
reproducible (every time clamped to the lock's source date, owners by name,
no build-host identity), so anyone with access to the same repositories can
check that a published package is what its recipe says: rebuild it in a
fresh staging root and compare the two file by file, by what rpm's headers
record of each (paths, modes, owners, digests, link targets, capabilities).
The only input the RPM cannot carry is the manifest's `files:` sources.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freight.build.options import BuildOptions
from freight.common import log as flog
from freight.common.errors import FreightError, UsageError
from freight.common.run import CommandError, run
from freight.manifest.load import load
from freight.model import paths
from freight.trust import rpmfile

# What rpm records of each file that a rebuild must give again (times are left out: a
# derivative of files only is dated by its sources' times, which a copy does not keep).
COMPARED = ("mode", "user", "group", "size", "digest", "linkto", "caps", "rdev", "nlink", "fflags")


@dataclass
class Comparison:
    """How a rebuild compares with the given RPM."""

    rpm: Path
    rebuilt: Path | None = None
    differences: list[str] = field(default_factory=list)
    refused: str | None = None  # why no rebuild could be made from the same inputs

    @property
    def reproduced(self) -> bool:
        return self.refused is None and not self.differences

    def render(self) -> str:
        if self.reproduced:
            return f"{self.rpm}: reproduced"
        if self.refused is not None:
            return f"{self.rpm}: NOT reproduced: {self.refused}"
        return f"{self.rpm}: NOT reproduced, {len(self.differences)} difference(s):\n  " + "\n  ".join(self.differences)


def rebuild(rpm_path: Path, source: Path, outdir: Path | None = None) -> Comparison:
    """Rebuild RPM_PATH from its embedded manifest and lock (relative paths from SOURCE) and compare."""
    hdr, embedded = _embedded(rpm_path)
    comparison = Comparison(rpm_path)
    with tempfile.TemporaryDirectory(prefix="freight-rebuild-") as tmp:
        work = Path(tmp)
        manifest_path = work / "manifest.yaml"
        manifest_path.write_bytes(embedded[paths.MANIFEST_FILE])  # JSON is YAML
        if paths.LOCK_FILE in embedded:
            manifest_path.with_suffix(".lock").write_bytes(embedded[paths.LOCK_FILE])
        manifest = load(manifest_path, relative_to=source)
        from freight.build.pipeline import build

        flog.step("Rebuilding %s from its manifest and lock", rpm_path.name)
        try:
            result = build(manifest, BuildOptions(outdir=outdir or work / "out", force=True))
        except UsageError as exc:
            # The same inputs are not there to be had (a locked package changed or is gone).
            comparison.refused = str(exc)
            return comparison
        comparison.rebuilt = result.rpm if outdir else None
        comparison.differences = differences(_files(hdr), _files(rpmfile.read_files(result.rpm, lambda h: set())[0]))
    return comparison


def _embedded(rpm_path: Path) -> tuple[Any, dict[str, bytes]]:
    """RPM_PATH's header and its manifest and lock, after rpm checked its digests."""
    rpmfile.require_rpm(rpm_path)
    try:
        run(["rpmkeys", "--checksig", "--nosignature", rpm_path])
    except CommandError:
        raise FreightError(f"{rpm_path}: damaged: its digests do not match its contents (rpm -K)") from None

    def wanted(hdr: Any) -> set[str]:
        name = rpmfile.container_name(hdr)
        return {f"{paths.meta_dir(name)}/{leaf}" for leaf in (paths.MANIFEST_FILE, paths.LOCK_FILE)} if name else set()

    hdr, found = rpmfile.read_files(rpm_path, wanted)
    if rpmfile.container_name(hdr) is None:
        raise UsageError(f"{rpm_path}: not a container package (it provides no freight-container(NAME))")
    by_leaf = {path.rsplit("/", 1)[1]: data for path, data in found.items()}
    if paths.MANIFEST_FILE not in by_leaf:
        raise UsageError(f"{rpm_path}: carries no manifest, so it cannot be rebuilt")
    return hdr, by_leaf


def _files(hdr: Any) -> dict[str, dict[str, Any]]:
    import rpm

    return {f.name: {key: getattr(f, key) for key in COMPARED} for f in rpm.files(hdr)}


def differences(given: dict[str, dict[str, Any]], rebuilt: dict[str, dict[str, Any]]) -> list[str]:
    """What differs between two file lists (path -> what rpm records), one line per path, in path order."""
    out = []
    for path in sorted(set(given) | set(rebuilt)):
        if path not in rebuilt:
            out.append(f"{path}: only in the given package (the rebuild has no such file)")
        elif path not in given:
            out.append(f"{path}: missing from the given package (the rebuild has it)")
        else:
            changed = [key for key in COMPARED if given[path][key] != rebuilt[path][key]]
            if changed:
                out.append(f"{path}: {', '.join(changed)} differ" + _detail(given[path], rebuilt[path], changed))
    return out


def _detail(given: dict[str, Any], rebuilt: dict[str, Any], changed: list[str]) -> str:
    def show(key: str, value: Any) -> str:
        return f"{value:o}" if key == "mode" else repr(value)

    shown = [f"{key} {show(key, given[key])} != {show(key, rebuilt[key])}" for key in changed if key in ("mode", "user", "group", "linkto", "caps", "fflags")]
    return f" ({'; '.join(shown)})" if shown else ""

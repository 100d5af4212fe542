"""What a build is asked to do and what its steps hand each other.

Shared by the pipeline and the two kinds of derivative (freight.build.overlay,
freight.build.layer), so none of them imports another's orchestration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from freight.build.components import Facts
from freight.manifest.lock import Lock, LockedPackage
from freight.model.owners import Owners
from freight.common.errors import UsageError
from freight.trust import keys, rpmfile, sign


@dataclass
class BuildOptions:
    outdir: Path
    update_lock: bool = False
    force: bool = False
    gpgcheck: bool = True
    keep_stage: Path | None = None
    sign_key: keys.SigningKey | None = None

    def signed_by(self) -> str:
        """A part of a build's inputs: signed by another key (or not at all) is another output."""
        return f"signed-by:{self.sign_key.fingerprint}" if self.sign_key else ""

    def refuse_to_unsign(self, rpm_path: Path) -> None:
        """An unsigned build must not silently replace a signed package of the same name.

        Otherwise `build`, `sign`, `build` leaves an unsigned RPM where a signed one
        was, and the next `publish --sign-key` refuses the folder."""
        if self.sign_key is not None:
            return
        signer = rpmfile.signer_of(rpm_path)
        if signer is not None:
            raise UsageError(
                f"{rpm_path} is signed (key {signer}) and this build is not: it would replace it with an unsigned "
                "package. Build with --sign KEYID (or set $FREIGHT_SIGN_KEY), or remove the file first"
            )

    def finish(self) -> Callable[[Path], object] | None:
        """What runs on the RPM before it appears in the output folder: signing, when asked."""
        key = self.sign_key
        return None if key is None else lambda rpm: sign.sign_rpms([rpm], key)


@dataclass
class BuildResult:
    rpm: Path
    up_to_date: bool
    lock: Lock | None  # a derivative of files only has none


@dataclass
class Staged:
    """What staging put into the buildroot, as the rest of the pipeline needs it."""

    packages: list[LockedPackage]  # installed by this build: its bundled() provides
    arch: str
    owners: Owners  # the names of the staged files' owners
    base: LockedPackage | None = None  # a layer's base container package
    base_requirement: str | None = None  # a layer's Requires on it
    newest_file_time: int = 0  # the latest file time the staged rpm database records (stage.newest_file_time)
    facts: dict[str, Facts] = field(default_factory=dict)  # the staged packages' header facts, for the SBOM


def host_arch() -> str:
    import rpm

    return rpm.expandMacro("%{_arch}")

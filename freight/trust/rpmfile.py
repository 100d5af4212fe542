"""Reading RPM files: what kind of file it is, its header, who signed it.

Small helpers on top of the rpm bindings that signing, verifying and
publishing share. Nothing here decides whether a package is trustworthy:
that is `freight.trust.verify`.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from freight.common.errors import UsageError

LEAD_SIZE = 96
LEAD_MAGIC = b"\xed\xab\xee\xdb"
HEADER_MAGIC = b"\x8e\xad\xe8\x01"
# The header tags an OpenPGP signature of the header can live in (rpm puts
# RSA signatures in RSAHEADER, every other algorithm in DSAHEADER), and the
# legacy header+payload ones.
SIGNATURE_TAGS = ("RSAHEADER", "DSAHEADER", "SIGPGP", "SIGGPG")
CONTAINER_PROVIDE = "freight-container("


def is_rpm(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == LEAD_MAGIC
    except OSError:
        return False


def require_rpm(path: Path) -> None:
    """Refuse anything that is not a readable RPM file, naming it."""
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    if not path.is_file():
        raise UsageError(f"{path}: not a file")
    if not is_rpm(path):
        raise UsageError(f"{path}: not an RPM package")


def signature(hdr: Any) -> str | None:
    """rpm's description of the header's signature ('RSA/SHA256, <date>, Key ID …'), None when unsigned."""
    for tag in SIGNATURE_TAGS:
        text = hdr.sprintf(f"%{{{tag}:pgpsig}}")
        if text and text != "(none)":
            return text
    return None


def signature_keyid(hdr: Any) -> str | None:
    """The signer's long key id in upper case, None when unsigned."""
    text = signature(hdr)
    if text is None:
        return None
    return text.rsplit("Key ID", 1)[-1].strip().upper() if "Key ID" in text else "?"


def signer_of(path: Path) -> str | None:
    """The long key id that signed the RPM at PATH, None when it is unsigned or unreadable
    (digests and signature are not checked: this only asks whether a signature is there)."""
    import rpm

    ts = rpm.TransactionSet("/", rpm._RPMVSF_NOSIGNATURES | rpm._RPMVSF_NODIGESTS)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return signature_keyid(ts.hdrFromFdno(fd))
    except rpm.error:
        return None
    finally:
        os.close(fd)


def container_name(hdr: Any) -> str | None:
    """NAME when the package provides freight-container(NAME), else None."""
    for provide in hdr[rpmtag("PROVIDENAME")] or []:
        if provide.startswith(CONTAINER_PROVIDE) and provide.endswith(")"):
            return provide[len(CONTAINER_PROVIDE) : -1]
    return None


def rpmtag(name: str) -> int:
    import rpm

    return getattr(rpm, f"RPMTAG_{name}")


def expected_size(fd: int, hdr: Any) -> int | None:
    """Lead + signature header + header + payload, as the (verified) header HDR states it."""
    os.lseek(fd, 0, os.SEEK_SET)
    lead_and_intro = os.read(fd, LEAD_SIZE + 16)
    if len(lead_and_intro) < LEAD_SIZE + 16 or lead_and_intro[LEAD_SIZE : LEAD_SIZE + 4] != HEADER_MAGIC:
        return None
    index_count, data_len = struct.unpack(">II", lead_and_intro[LEAD_SIZE + 8 : LEAD_SIZE + 16])
    sig_end = LEAD_SIZE + 16 + 16 * index_count + data_len
    sig_end += (8 - sig_end % 8) % 8  # the signature header is padded to 8 bytes
    size = hdr[rpmtag("LONGSIGSIZE")] or hdr[rpmtag("SIGSIZE")]
    return sig_end + int(size) if size else None


def payload_files(fd: int, hdr: Any, wanted: set[str]) -> dict[str, bytes]:
    """The contents of the WANTED paths in the payload that starts at FD's offset, by path.

    rpm unpacks its own payload (whatever compressor the header names), so no
    archive format is read here; it stops as soon as every wanted file was seen."""
    import rpm

    found: dict[str, bytes] = {}
    payload = rpm.fd(os.dup(fd), "r", hdr[rpm.RPMTAG_PAYLOADCOMPRESSOR] or "gzip")
    try:
        archive = rpm.files(hdr).archive(payload)
        for entry in archive:
            if entry.name in wanted:
                found[entry.name] = archive.read()
                if len(found) == len(wanted):
                    break
    finally:
        payload.close()
    return found


def read_files(path: Path, wanted: Callable[[Any], set[str]]) -> tuple[Any, dict[str, bytes]]:
    """PATH's header and the contents of the paths WANTED(header) names in its payload (digests
    checked, not signatures: who signed it is `freight verify`'s question)."""
    import rpm

    require_rpm(path)
    ts = rpm.TransactionSet()
    ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES)
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            hdr = ts.hdrFromFdno(fd)
        except rpm.error as exc:
            raise UsageError(f"{path}: rpm cannot read its header ({exc})") from None
        try:
            return hdr, payload_files(fd, hdr, wanted(hdr))
        except (OSError, rpm.error) as exc:
            raise UsageError(f"{path}: the payload cannot be unpacked: {exc}") from None
    finally:
        os.close(fd)

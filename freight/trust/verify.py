"""Strict verification of RPM packages: a trusted signature must be present.

`rpm -K` on an unsigned package prints "digests OK" and exits 0; a host that
trusted that would install anything. freight accepts a package only when

* it is an RPM, whole (not truncated),
* its header carries an OpenPGP signature by a trusted key, and the header
  digests and that signature hold (rpm checks these while reading the header),
* the payload's SHA-256 matches the digest in the signed header (rpm does not
  read the payload when it reads a header, so freight hashes it),
* for a container RPM, the manifest it carries names the same container,
  version and release as the header.

Trusted keys: freight's keyring, key files given on the command line, and the
`gpg-pubkey` entries of the rpm database (what `rpm --import` put there).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from freight.common.errors import UsageError
from freight.model.naming import package_name, release
from freight.model.paths import LOCK_FILE, MANIFEST_FILE, meta_dir
from freight.trust import digest, keys, rpmfile

log = logging.getLogger("freight.trust.verify")

# rpm logs to one process-wide sink, which verification redirects to learn why
# rpm refused a header: one thread at a time may do that (hashing runs freely).
_RPM_LOCK = threading.Lock()
PayloadDigest = Callable[[int, int, str], str]  # (fd, offset, algorithm) -> hex digest
# rpm's PGPHASHALGO numbers, as RPMTAG_PAYLOADDIGESTALGO states them.
_HASHES = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}
# What rpm's Python bindings raise for a header whose signature no key in the keyring
# verifies (RPMRC_NOKEY, RPMRC_NOTTRUSTED); everything else is a damaged package.
_UNTRUSTED_ERRORS = ("public key not available", "public key not trusted")
_ARMOR_BLOCK = re.compile(rb"-----BEGIN PGP PUBLIC KEY BLOCK-----.*?-----END PGP PUBLIC KEY BLOCK-----", re.S)


@dataclass
class Verdict:
    """What `freight verify` concluded about one file."""

    path: str
    ok: bool
    reason: str = ""
    nevra: str | None = None
    signer: str | None = None  # long key id of the signature, when there is one
    signer_uid: str | None = None
    container: str | None = None
    fixes: list[dict[str, Any]] = field(default_factory=list)  # advisories a container's lock records

    def line(self) -> str:
        if self.ok:
            who = f"{self.signer_uid} ({self.signer})" if self.signer_uid else self.signer
            return f"{self.path}: OK, signed by {who}"
        return f"{self.path}: {self.reason}"


@dataclass
class TrustedKeys:
    """The keys a signature may come from, as an rpm keyring, and their names for messages."""

    keyring: Any
    names: dict[str, str] = field(default_factory=dict)  # short (8 hex) key id -> user id
    count: int = 0

    def add_armored(self, data: bytes, origin: str) -> None:
        import rpm

        blocks = _ARMOR_BLOCK.findall(data)
        if not blocks:
            raise UsageError(f"{origin}: no armored OpenPGP public key in it")
        for block in blocks:
            try:
                pubkey = rpm.pubkey(block)
            except (ValueError, rpm.error) as exc:
                raise UsageError(f"{origin}: not a usable public key ({exc})") from None
            self.keyring.addKey(pubkey)
            self.count += 1

    def name(self, keyid: str) -> str | None:
        return self.names.get(keyid[-8:].upper())


def trusted_keys(key_files: Iterable[Path] = (), *, freight_keyring: bool = True, rpmdb: bool = True) -> TrustedKeys:
    """Collect the trusted keys; a key file that is missing or holds no key is a usage error."""
    import rpm

    trusted = TrustedKeys(rpm.keyring())
    if freight_keyring:
        for key in keys.list_keys():
            trusted.add_armored(keys.export(key.fingerprint).encode(), f"key {key.fingerprint}")
            trusted.names[key.fingerprint[-8:]] = key.uid
    for path in key_files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"{path}: cannot read key file: {exc.strerror}") from None
        trusted.add_armored(data, str(path))
    if rpmdb:
        _add_rpmdb_keys(trusted)
    return trusted


def _add_rpmdb_keys(trusted: TrustedKeys) -> None:
    """The keys `rpm --import` put into the host's database (gpg-pubkey-KEYID-DATE)."""
    import rpm

    ts = rpm.TransactionSet()
    try:
        for hdr in ts.dbMatch("name", "gpg-pubkey"):
            armored = hdr[rpm.RPMTAG_DESCRIPTION]
            if armored and "BEGIN PGP PUBLIC KEY BLOCK" in armored:
                trusted.add_armored(armored.encode(), f"rpm database key {hdr[rpm.RPMTAG_VERSION]}")
                summary = hdr[rpm.RPMTAG_SUMMARY] or ""
                trusted.names.setdefault(hdr[rpm.RPMTAG_VERSION].upper(), summary.removeprefix("gpg(").removesuffix(")"))
    except rpm.error as exc:
        log.debug("no keys from the rpm database: %s", exc)
    finally:
        ts.closeDB()


def verify(paths: Iterable[Path], trusted: TrustedKeys | None) -> list[Verdict]:
    return [verify_one(Path(p), trusted) for p in paths]


def verify_one(path: Path, trusted: TrustedKeys | None, payload_digest: PayloadDigest = digest.in_place) -> Verdict:
    """Check one file; never raises for a bad package, the verdict says what is wrong.

    With TRUSTED None only the contents are checked (digests, size, embedded
    manifest), not who signed: what `freight sign` wants to know before signing.
    PAYLOAD_DIGEST hashes the payload (publish has it done on another core).
    """
    verdict = Verdict(path=str(path), ok=False)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        verdict.reason = f"cannot read: {exc.strerror}"
        return verdict
    try:
        verdict.reason = _check(fd, path, trusted, verdict, payload_digest)
    finally:
        os.close(fd)
    verdict.ok = not verdict.reason
    return verdict


def _check(fd: int, path: Path, trusted: TrustedKeys | None, verdict: Verdict, payload_digest: PayloadDigest) -> str:
    """The reason to refuse the package open at FD, or '' when it passes; fills in VERDICT."""
    import rpm

    lead = os.read(fd, rpmfile.LEAD_SIZE)
    if lead[:4] != rpmfile.LEAD_MAGIC:
        return "not an RPM package"
    if len(lead) < rpmfile.LEAD_SIZE:
        return f"truncated: {len(lead)} bytes, shorter than an RPM lead"
    os.lseek(fd, 0, os.SEEK_SET)
    with _RPM_LOCK:
        hdr, reason = _read_header(fd, trusted)
        if hdr is None:
            return reason
        payload_start = os.lseek(fd, 0, os.SEEK_CUR)
        verdict.nevra = hdr[rpm.RPMTAG_NEVRA]
        verdict.signer = rpmfile.signature_keyid(hdr)
        verdict.container = rpmfile.container_name(hdr)
        expected = rpmfile.expected_size(fd, hdr)
        digests = hdr[rpm.RPMTAG_PAYLOADDIGEST]
        algo = _HASHES.get(int(hdr[rpm.RPMTAG_PAYLOADDIGESTALGO] or 0))
    if trusted is not None and verdict.signer is not None:
        verdict.signer_uid = trusted.name(verdict.signer)

    # The contents first: "not signed, digests intact" must not be said of a damaged package.
    size = os.fstat(fd).st_size
    if expected is not None and size < expected:
        return f"truncated: {size} bytes, the package is {expected}"
    if expected is not None and size > expected:
        return f"{size - expected} bytes of trailing data after the payload"
    if not digests or algo is None:
        return "the header states no payload digest (built by rpm older than 4.14), so its payload cannot be proven"
    if payload_digest(fd, payload_start, algo) != digests[0]:
        return f"the payload was altered: its {algo.upper()} does not match the digest in the signed header"
    if verdict.container is not None:
        with _RPM_LOCK:
            if reason := _check_container(fd, hdr, payload_start, verdict):
                return reason
    if trusted is not None and verdict.signer is None:
        return "not signed (its digests are intact, but nothing says who made it)"
    return ""


def _read_header(fd: int, trusted: TrustedKeys | None) -> tuple[Any, str]:
    """The header, with its digests (and, given TRUSTED, its signature) checked; else None and why."""
    import rpm

    if trusted is not None:
        ts = rpm.TransactionSet("/", 0)  # check every digest and signature there is
        ts.setKeyring(trusted.keyring)
    else:
        ts = rpm.TransactionSet("/", rpm._RPMVSF_NOSIGNATURES)
    start = os.lseek(fd, 0, os.SEEK_CUR)
    with _rpm_log() as messages:
        try:
            return ts.hdrFromFdno(fd), ""
        except rpm.error as exc:
            error = str(exc)
    if trusted is not None and error in _UNTRUSTED_ERRORS:
        return None, _untrusted(fd, start)
    return None, _header_failure(error, messages())


def _untrusted(fd: int, start: int) -> str:
    """Why a header whose digests may hold failed for want of a trusted key, naming the key.

    rpm logs "key ID …: NOKEY" only the first time it meets a key in a process, so
    the signer is read from the header itself (digests checked, signature not)."""
    import rpm

    os.lseek(fd, start, os.SEEK_SET)
    ts = rpm.TransactionSet("/", rpm._RPMVSF_NOSIGNATURES)
    with _rpm_log() as messages:
        try:
            hdr = ts.hdrFromFdno(fd)
        except rpm.error as exc:
            return _header_failure(str(exc), messages())
    keyid = rpmfile.signature_keyid(hdr) or "?"
    sources = f"freight's keyring ({keys.home()}), the given key files or the rpm database"
    return f"signed by key {keyid[-8:]}, which is not trusted (not in {sources})"


def _header_failure(error: str, messages: list[str]) -> str:
    """Turn rpm's log lines about a header it refused into one reason."""
    detail = [m.split(": ", 2)[-1] if m.count(": ") >= 2 else m for m in messages]
    bad = [d for d in detail if d.endswith("BAD") or ": BAD" in d]
    if any("read returned" in d or "hdr blob" in d or "hdr size" in d or "hdr data" in d for d in detail):
        return "truncated or damaged: the header cannot be read"
    if bad:
        return "the header was altered: " + "; ".join(b.split(" (Expected")[0] for b in bad)
    if "not an rpm package" in error.lower() or not messages:
        return "damaged: rpm cannot read its header" + (f" ({error})" if error else "")
    return "; ".join(detail)


def _check_container(fd: int, hdr: Any, payload_start: int, verdict: Verdict) -> str:
    """The manifest (and lock) the container carries must describe this very package.

    The advisories its lock records (`fixes`) go into VERDICT for publish."""
    import rpm

    name = str(verdict.container)
    wanted = {f"{meta_dir(name)}/{leaf}": leaf for leaf in (MANIFEST_FILE, LOCK_FILE)}
    os.lseek(fd, payload_start, os.SEEK_SET)
    try:
        found = {wanted[path]: data for path, data in rpmfile.payload_files(fd, hdr, set(wanted)).items()}
    except (OSError, rpm.error) as exc:
        return f"the payload cannot be unpacked: {exc}"
    target = f"{meta_dir(name)}/{MANIFEST_FILE}"
    if MANIFEST_FILE not in found:
        return f"provides freight-container({name}) but carries no {target}"
    try:
        manifest = json.loads(found[MANIFEST_FILE])
        embedded_lock = json.loads(found[LOCK_FILE]) if LOCK_FILE in found else {}
        serial = int(embedded_lock.get("serial", 0))
        verdict.fixes = list(embedded_lock.get("fixes", []))
        # A rebuild after --update-lock carries the lock's serial in its release.
        claimed = (package_name(manifest["name"]), str(manifest["version"]), release(str(manifest["release"]), serial))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"{target} is not a freight manifest ({exc})"
    header = (hdr[rpm.RPMTAG_NAME], hdr[rpm.RPMTAG_VERSION], hdr[rpm.RPMTAG_RELEASE])
    if manifest["name"] != name or claimed != header:
        return (
            f"the embedded manifest says {claimed[0]} {claimed[1]}-{claimed[2]}, "
            f"but the header says {header[0]} {header[1]}-{header[2]} (container {name})"
        )
    return ""


@contextmanager
def _rpm_log() -> Iterator[Any]:
    """Capture what rpm logs while reading a header (its only account of why it refused)."""
    import rpm

    with tempfile.TemporaryFile("w+") as f:
        rpm.setLogFile(f)
        lines: list[str] = []
        try:
            yield lambda: lines
        finally:
            rpm.setLogFile(sys.stderr)
            f.seek(0)
            lines.extend(line.strip() for line in f if line.strip())


def to_json(verdicts: list[Verdict]) -> str:
    return json.dumps([asdict(v) for v in verdicts], indent=2)

"""freight's signing keyring: a GnuPG home that only freight uses by default.

The keyring is `$FREIGHT_GNUPGHOME`, else `$GNUPGHOME` (a user who already
keeps keys there gets them), else `$XDG_DATA_HOME/freight/gnupg`. It is never
inside a source tree or an output folder unless someone points it there, and
`refuse_inside()` lets publishing and building refuse exactly that.

gpg always runs in batch mode: CI must fail with a message, never hang on a
pass-phrase prompt. A protected key gets its pass-phrase from a file
(loopback pinentry) or from a gpg-agent that already has it cached; with
neither, signing fails and says so.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from freight.common.errors import FreightError, UsageError
from freight.common.run import CommandError, run

log = logging.getLogger("freight.trust.keys")

ALGORITHMS = {
    # RSA 4096 verifies with every rpm a host may run; ed25519 is small and
    # fast and rpm >= 4.14 (EdDSA) accepts it, but older hosts do not.
    "rsa4096": "rsa4096",
    "ed25519": "ed25519",
}
DEFAULT_ALGORITHM = "rsa4096"
_PUBKEY_ALGOS = {1: "rsa", 2: "rsa", 3: "rsa", 16: "elgamal", 17: "dsa", 18: "ecdh", 19: "ecdsa", 22: "eddsa"}


@dataclass(frozen=True)
class Key:
    """One key of the keyring, as `gpg --with-colons` describes it."""

    fingerprint: str
    uid: str
    algorithm: str
    created: int
    secret: bool
    can_sign: bool

    @property
    def keyid(self) -> str:
        """The long key id; rpm prints its last 8 hex digits."""
        return self.fingerprint[-16:]


@dataclass(frozen=True)
class SigningKey:
    """A secret key that was checked to sign without prompting, and how to unlock it."""

    key: Key
    home: Path
    passphrase_file: Path | None

    @property
    def fingerprint(self) -> str:
        return self.key.fingerprint

    def pinentry_args(self) -> list[str]:
        """gpg options that never open a pinentry: the pass-phrase file, or the agent's cache only."""
        if self.passphrase_file is not None:
            return ["--pinentry-mode", "loopback", "--passphrase-file", str(self.passphrase_file)]
        return ["--pinentry-mode", "error"]


def home() -> Path:
    """The GnuPG home freight uses; see the module docstring for the order."""
    for var in ("FREIGHT_GNUPGHOME", "GNUPGHOME"):
        if value := os.environ.get(var):
            return Path(value).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "freight" / "gnupg"


def _ensure_home(path: Path) -> Path:
    """gpg insists on a private home; create it 0700 the first time."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def gpg(
    args: list[str | os.PathLike[str]], *, homedir: Path | None = None, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess:
    """Run gpg in batch mode against freight's keyring (or HOMEDIR)."""
    where = _ensure_home(homedir or home())
    return run(
        [gpg_binary(), "--homedir", where, "--batch", "--no-tty", "--no-greeting", *args],
        check=check,
        input=input,
    )


def gpg_binary() -> str:
    """The real gpg: Debian's rpm points %__gpg at a gpg2 that does not exist."""
    found = shutil.which("gpg") or shutil.which("gpg2")
    if not found:
        raise FreightError("gpg is not installed (the gnupg package)")
    return found


def list_keys(pattern: str | None = None, *, homedir: Path | None = None) -> list[Key]:
    """Every key in the keyring (or those matching PATTERN), secret ones flagged."""
    where = homedir or home()
    secret = {k.fingerprint for k in _colons(["--list-secret-keys"], pattern, where)}
    keys = _colons(["--list-keys"], pattern, where)
    return [Key(k.fingerprint, k.uid, k.algorithm, k.created, k.fingerprint in secret, k.can_sign) for k in keys]


def _colons(what: list[str], pattern: str | None, where: Path) -> list[Key]:
    proc = gpg(["--with-colons", "--fixed-list-mode", *what, *([pattern] if pattern else [])], homedir=where, check=False)
    if proc.returncode != 0:
        if pattern or not proc.stdout.strip():
            return []  # gpg fails when nothing matches the pattern (or the keyring is empty)
        raise CommandError(["gpg", *what], proc.returncode, proc.stderr)
    keys: list[Key] = []
    current: dict[str, object] | None = None
    in_primary = False
    for line in proc.stdout.splitlines():
        f = line.split(":")
        if f[0] in ("pub", "sec"):
            if current:
                keys.append(Key(**current))  # type: ignore[arg-type]
            bits = f[2] if f[3] in ("1", "2", "3", "17") else ""
            algo = f[16] if len(f) > 16 and f[16] else _PUBKEY_ALGOS.get(int(f[3] or 0), f"algo{f[3]}") + bits
            usable = f[1] not in ("r", "e", "d", "i")  # revoked, expired, disabled, invalid
            current = {"fingerprint": "", "uid": "", "algorithm": algo, "created": int(f[5] or 0),
                       "secret": f[0] == "sec", "can_sign": usable and "S" in f[11]}
            in_primary = True
        elif f[0] in ("sub", "ssb"):
            in_primary = False  # a subkey's fpr line is not the key's fingerprint
        elif f[0] == "fpr" and in_primary and current is not None and not current["fingerprint"]:
            current["fingerprint"] = f[9]
        elif f[0] == "uid" and current is not None and not current["uid"]:
            current["uid"] = _unescape(f[9])
    if current:
        keys.append(Key(**current))  # type: ignore[arg-type]
    return keys


def _unescape(text: str) -> str:
    """--with-colons escapes ':' and non-printables as \\xNN."""
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), text)


def find(keyid: str, *, secret: bool, homedir: Path | None = None) -> Key:
    """The one key KEYID (fingerprint, key id or e-mail) names; an error saying why otherwise."""
    where = homedir or home()
    spec = keyid.strip()
    if not spec:
        raise UsageError("a key id is empty")
    hexid = spec.upper().removeprefix("0X")
    if re.fullmatch(r"[0-9A-F]{8}", hexid):
        matches = [k for k in list_keys(homedir=where) if k.fingerprint.endswith(hexid)]
    else:
        matches = list_keys(spec, homedir=where)
    if secret:
        matches = [k for k in matches if k.secret]
    if not matches:
        kind = "secret key" if secret else "key"
        raise UsageError(f"no {kind} '{keyid}' in the keyring {where} (see 'freight key list')")
    if len(matches) > 1:
        listed = ", ".join(f"{k.fingerprint} ({k.uid})" for k in matches)
        raise UsageError(f"'{keyid}' names {len(matches)} keys in {where}: {listed}; give a fingerprint")
    return matches[0]


def signing_key(keyid: str, passphrase_file: Path | None = None, *, homedir: Path | None = None) -> SigningKey:
    """Resolve KEYID to a secret key and prove it signs without a prompt, before any long work starts."""
    where = homedir or home()
    if passphrase_file is not None:
        passphrase_file = passphrase_file.resolve()
        if not passphrase_file.is_file() or not os.access(passphrase_file, os.R_OK):
            raise UsageError(f"{passphrase_file}: the pass-phrase file is missing or unreadable")
    key = find(keyid, secret=True, homedir=where)
    if not key.can_sign:
        raise UsageError(f"key {key.fingerprint} ({key.uid}) cannot sign (revoked, expired or not a signing key)")
    signing = SigningKey(key, where, passphrase_file)
    with tempfile.TemporaryDirectory(prefix="freight-keycheck-") as tmp:
        probe = Path(tmp) / "probe"
        probe.write_text("freight signing check\n")
        detach_sign(probe, signing, Path(tmp) / "probe.asc")
    return signing


def detach_sign(path: Path, key: SigningKey, out: Path) -> None:
    """Write an armored detached signature of PATH to OUT (repomd.xml.asc)."""
    proc = gpg(
        [*key.pinentry_args(), "--yes", "--armor", "--detach-sign", "--local-user", key.fingerprint, "--output", out, path],
        homedir=key.home,
        check=False,
    )
    if proc.returncode != 0:
        raise FreightError(_signing_failure(key, proc.stderr))


def _signing_failure(key: SigningKey, stderr: str) -> str:
    if "No pinentry" in stderr or "Inappropriate ioctl" in stderr:
        return (
            f"key {key.fingerprint} ({key.key.uid}) is protected by a pass-phrase: give it with "
            "--passphrase-file FILE (or $FREIGHT_PASSPHRASE_FILE), or cache it in gpg-agent"
        )
    if "Bad passphrase" in stderr or "bad passphrase" in stderr.lower():
        return f"the pass-phrase in {key.passphrase_file} does not unlock key {key.fingerprint}"
    tail = "\n  ".join(stderr.strip().splitlines()[-5:])
    return f"gpg could not sign with key {key.fingerprint}:\n  {tail}"


def generate(name: str, email: str, algorithm: str = DEFAULT_ALGORITHM, passphrase_file: Path | None = None) -> Key:
    """Make a signing-only key that never expires; return it."""
    name, email = name.strip(), email.strip()
    if not name or any(c in name for c in "<>()\n"):
        raise UsageError(f"--name {name!r}: give a plain name (no <, >, parentheses or newlines)")
    if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", email):
        raise UsageError(f"--email {email!r}: not an e-mail address")
    if algorithm not in ALGORITHMS:
        raise UsageError(f"--algorithm {algorithm!r}: expected one of {', '.join(ALGORITHMS)}")
    uid = f"{name} <{email}>"
    existing = [k for k in list_keys(f"<{email}>") if k.secret]
    if existing:
        raise UsageError(f"the keyring {home()} already has a key for {email}: {existing[0].fingerprint}")
    if passphrase_file is not None:
        if not passphrase_file.is_file():
            raise UsageError(f"{passphrase_file}: the pass-phrase file is missing")
        unlock = ["--pinentry-mode", "loopback", "--passphrase-file", str(passphrase_file)]
    else:
        unlock = ["--pinentry-mode", "loopback", "--passphrase", ""]
    proc = gpg([*unlock, "--status-fd", "1", "--quick-gen-key", uid, ALGORITHMS[algorithm], "sign", "never"])
    created = [line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("[GNUPG:] KEY_CREATED")]
    if not created:
        raise FreightError(f"gpg made no key:\n  {proc.stderr.strip()}")
    return find(created[0], secret=True)


def export(keyid: str) -> str:
    """The armored public key: the RPM-GPG-KEY file hosts import."""
    key = find(keyid, secret=False)
    text = gpg(["--armor", "--export-options", "export-minimal", "--export", key.fingerprint]).stdout
    if "BEGIN PGP PUBLIC KEY BLOCK" not in text:
        raise FreightError(f"gpg exported nothing for {key.fingerprint}")
    return text


def import_file(path: Path, passphrase_file: Path | None = None) -> list[str]:
    """Import the keys in PATH (public, or secret for a CI signer); return their fingerprints."""
    if not path.is_file():
        raise UsageError(f"{path}: no such key file")
    unlock = ["--pinentry-mode", "loopback", "--passphrase-file", str(passphrase_file)] if passphrase_file else ["--pinentry-mode", "error"]
    proc = gpg([*unlock, "--status-fd", "1", "--import", path], check=False)
    imported = sorted({line.split()[3] for line in proc.stdout.splitlines() if line.startswith("[GNUPG:] IMPORT_OK")})
    if not imported:
        reason = "no OpenPGP key in it" if "no valid OpenPGP data" in proc.stderr or proc.returncode != 0 else proc.stderr.strip()
        raise UsageError(f"{path}: {reason}")
    if proc.returncode != 0:
        log.warning("%s: gpg imported %d key(s) but complained:\n  %s", path, len(imported), proc.stderr.strip())
    return imported


def refuse_inside(folder: Path, what: str) -> None:
    """Private keys never land in an output folder: refuse when the keyring is inside FOLDER."""
    keyring = home().resolve()
    target = folder.resolve()
    if keyring == target or target in keyring.parents:
        raise UsageError(f"the keyring {keyring} is inside the {what} {target}; keep private keys outside it (set $FREIGHT_GNUPGHOME)")

"""`freight sign` and `freight verify` with the real rpmsign, gpg and rpm.

`rpm -K` says "digests OK" for an unsigned package; freight verify must refuse
it, and every other way a package can be untrustworthy, naming file and reason.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Signer, freight, gnupg_home, make_signer, rpm_from_spec, webapp_manifest, write_manifest

from freight.trust import keys, sign

pytestmark = pytest.mark.slow  # every test here uses the built container


def _rpm(*args: str | Path, dbpath: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["rpm", "--dbpath", str(dbpath), *map(str, args)], capture_output=True, text=True)


def test_signed_container_passes_rpm_checksig_once_the_key_is_imported(signed_webapp: Path, signer: Signer, tmp_path: Path) -> None:
    db = tmp_path / "rpmdb"
    before = _rpm("--checksig", "-v", signed_webapp, dbpath=db)
    assert before.returncode != 0 and "NOKEY" in before.stdout
    assert _rpm("--import", signer.pubkey, dbpath=db).returncode == 0
    after = _rpm("--checksig", "-v", signed_webapp, dbpath=db)
    assert after.returncode == 0, after.stdout + after.stderr
    assert f"key ID {signer.fingerprint[-8:].lower()}: OK" in after.stdout


def test_rpm_k_accepts_an_unsigned_package_but_freight_verify_refuses_it(built_webapp: Path, tmp_path: Path) -> None:
    rpm_k = _rpm("-K", built_webapp, dbpath=tmp_path / "db")
    assert rpm_k.returncode == 0 and "digests OK" in rpm_k.stdout  # why freight has its own check
    result = freight("verify", built_webapp)
    assert result.returncode == 1
    assert f"{built_webapp}: not signed" in result.stdout


def test_verify_accepts_the_signed_container(signed_webapp: Path, signer: Signer) -> None:
    result = freight("verify", "--json", signed_webapp, env=signer.env)
    assert result.returncode == 0, result.stdout + result.stderr
    [verdict] = json.loads(result.stdout)
    assert verdict == {
        "path": str(signed_webapp),
        "ok": True,
        "reason": "",
        "nevra": "container-webapp-1.0-1.x86_64",
        "signer": signer.fingerprint[-16:],
        "signer_uid": "freight tests <signer@example.com>",
        "container": "webapp",
        "fixes": [],
    }


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


@pytest.fixture(scope="module")
def bad_packages(signed_webapp: Path, built_webapp: Path, stranger: Signer, signer: Signer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file per way a package can be untrustworthy."""
    out = tmp_path_factory.mktemp("bad")
    good = signed_webapp.read_bytes()
    files: dict[str, Path] = {}

    def write(name: str, data: bytes) -> None:
        files[name] = out / f"{name}.rpm"
        files[name].write_bytes(data)

    write("unsigned", built_webapp.read_bytes())
    strange = out / "unknown-key.rpm"
    shutil.copy2(built_webapp, strange)
    assert freight("sign", "--key", stranger.fingerprint, strange, env=stranger.env).returncode == 0
    files["unknown-key"] = strange
    summary = good.index(b"demo web server")  # the Summary, inside the signed header
    write("tampered-header", _flip(good, summary))
    write("tampered-payload", _flip(good, len(good) - 5000))
    write("truncated-header", good[:3000])
    write("truncated-payload", good[: len(good) - 100])
    unsigned = built_webapp.read_bytes()
    write("unsigned-truncated", unsigned[: len(unsigned) - 100])
    write("unsigned-corrupted", _flip(unsigned, len(unsigned) - 5000))
    write("not-an-rpm", b"#!/bin/sh\necho this is not a package\n")
    write("empty", b"")
    liar = rpm_from_spec("fake-container.spec", out / "liar", manifest_version="6.6.6")
    # `freight sign` refuses to vouch for it (see below), so sign it with rpmsign directly.
    sign.sign_rpms([liar], keys.signing_key(signer.fingerprint, homedir=signer.home))
    files["manifest-mismatch"] = liar
    return files


REASONS = {
    "unsigned": "not signed",
    "unknown-key": "which is not trusted",
    "tampered-header": "the header was altered",
    "tampered-payload": "the payload was altered",
    "truncated-header": "truncated or damaged",
    "truncated-payload": "truncated:",
    "unsigned-truncated": "truncated:",
    "unsigned-corrupted": "the payload was altered",
    "not-an-rpm": "not an RPM package",
    "empty": "not an RPM package",
    "manifest-mismatch": "the embedded manifest says container-fake 6.6.6-1, but the header says container-fake 1.0-1",
}


@pytest.mark.parametrize("kind", sorted(REASONS))
def test_verify_refuses(kind: str, bad_packages: dict[str, Path], signer: Signer) -> None:
    path = bad_packages[kind]
    result = freight("verify", path, env=signer.env)
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith(f"{path}: ")
    assert REASONS[kind] in result.stdout
    assert "1 of 1 package(s) refused" in result.stderr


def test_verify_reports_every_package_and_fails_if_any_is_bad(bad_packages: dict[str, Path], signed_webapp: Path, signer: Signer) -> None:
    paths = [signed_webapp, *bad_packages.values()]
    result = freight("verify", "--json", *paths, env=signer.env)
    assert result.returncode == 1
    verdicts = json.loads(result.stdout)
    assert [v["path"] for v in verdicts] == [str(p) for p in paths]
    assert [v["ok"] for v in verdicts] == [True] + [False] * len(bad_packages)
    assert all(v["reason"] for v in verdicts[1:])


def test_a_damaged_unsigned_package_is_called_damaged_as_rpm_k_does(bad_packages: dict[str, Path], signer: Signer, tmp_path: Path) -> None:
    """Not "not signed, its digests are intact": rpm -K itself says the digests are not OK."""
    for kind in ("unsigned-truncated", "unsigned-corrupted"):
        rpm_k = _rpm("-K", bad_packages[kind], dbpath=tmp_path / "db")
        assert rpm_k.returncode != 0 and "NOT OK" in rpm_k.stdout, rpm_k.stdout
        result = freight("verify", bad_packages[kind], env=signer.env)
        assert result.returncode == 1 and "not signed" not in result.stdout and "intact" not in result.stdout, result.stdout


def test_every_package_of_an_untrusted_signer_names_the_key(built_webapp: Path, stranger: Signer, signer: Signer, tmp_path: Path) -> None:
    """rpm logs a missing key once per process: the second package must not be called damaged."""
    copies = []
    for i in range(3):
        copies.append(tmp_path / f"c{i}" / built_webapp.name)
        copies[-1].parent.mkdir()
        shutil.copy2(built_webapp, copies[-1])
    assert freight("sign", "--key", stranger.fingerprint, *copies, env=stranger.env).returncode == 0
    result = freight("verify", *copies, env=signer.env)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout
    for path, line in zip(copies, lines):
        assert line.startswith(f"{path}: signed by key {stranger.fingerprint[-8:]}, which is not trusted"), line


def test_unknown_key_names_the_key(bad_packages: dict[str, Path], stranger: Signer, signer: Signer) -> None:
    result = freight("verify", bad_packages["unknown-key"], env=signer.env)
    assert f"signed by key {stranger.fingerprint[-8:]}" in result.stdout


def test_trust_from_key_files_and_the_rpm_database(signed_webapp: Path, signer: Signer, tmp_path: Path) -> None:
    empty = {"FREIGHT_GNUPGHOME": str(gnupg_home(tmp_path))}
    assert freight("verify", signed_webapp, env=empty).returncode == 1
    by_file = freight("verify", "--key", signer.pubkey, signed_webapp, env=empty)
    assert by_file.returncode == 0, by_file.stdout + by_file.stderr

    # `rpm --import` into the host database (here a private HOME's %_dbpath) is trusted too.
    home = tmp_path / "home"
    home.mkdir()
    (home / ".rpmmacros").write_text(f"%_dbpath {tmp_path / 'hostdb'}\n")
    host = {**empty, "HOME": str(home)}
    assert freight("verify", "--no-keyring", signed_webapp, env=host).returncode == 1
    subprocess.run(["rpm", "--import", str(signer.pubkey)], env={"HOME": str(home), "PATH": "/usr/bin:/bin"}, check=True)
    by_db = freight("verify", "--no-keyring", signed_webapp, env=host)
    assert by_db.returncode == 0, by_db.stdout + by_db.stderr


def test_bad_key_file_is_a_usage_error(signed_webapp: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.asc"
    junk.write_text("not a key\n")
    result = freight("verify", "--key", junk, signed_webapp)
    assert result.returncode == 2 and f"{junk}: no armored OpenPGP public key" in result.stderr
    result = freight("verify", "--key", tmp_path / "absent.asc", signed_webapp)
    assert result.returncode == 2 and "absent.asc: cannot read key file" in result.stderr


def test_sign_refuses_a_non_rpm_before_signing_anything(built_webapp: Path, signer: Signer, tmp_path: Path) -> None:
    rpm = tmp_path / built_webapp.name
    shutil.copy2(built_webapp, rpm)
    bogus = tmp_path / "bogus.rpm"
    bogus.write_text("not a package\n")
    before = rpm.read_bytes()
    result = freight("sign", "--key", signer.fingerprint, rpm, bogus, env=signer.env)
    assert result.returncode == 2 and f"{bogus}: not an RPM package" in result.stderr
    assert rpm.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([rpm.name, "bogus.rpm"])


def test_sign_needs_a_key(built_webapp: Path, tmp_path: Path) -> None:
    empty = {"FREIGHT_GNUPGHOME": str(gnupg_home(tmp_path))}
    result = freight("sign", built_webapp, env=empty)
    assert result.returncode == 2 and "has no signing key" in result.stderr
    result = freight("sign", "--key", "nobody@example.com", built_webapp, env=empty)
    assert result.returncode == 2 and "no secret key 'nobody@example.com'" in result.stderr


def test_sign_uses_the_only_key_and_resigns(built_webapp: Path, signer: Signer, stranger: Signer, tmp_path: Path) -> None:
    rpm = tmp_path / built_webapp.name
    shutil.copy2(built_webapp, rpm)
    assert freight("sign", rpm, env=stranger.env).returncode == 0
    assert freight("verify", rpm, env=signer.env).returncode == 1
    result = freight("sign", rpm, env=signer.env)  # the only key of that keyring; replaces the signature
    assert result.returncode == 0, result.stderr
    assert freight("verify", rpm, env=signer.env).returncode == 0


def test_sign_refuses_to_vouch_for_a_lying_container(signer: Signer, tmp_path: Path) -> None:
    liar = rpm_from_spec("fake-container.spec", tmp_path, manifest_version="2.0")
    before = liar.read_bytes()
    result = freight("sign", "--key", signer.fingerprint, liar, env=signer.env)
    assert result.returncode == 1
    assert "refusing to sign (nothing was signed)" in result.stderr
    assert "the embedded manifest says container-fake 2.0-1" in result.stderr
    assert liar.read_bytes() == before


def test_a_release_bumped_by_the_lock_serial_matches_its_manifest(signer: Signer, tmp_path: Path) -> None:
    bumped = rpm_from_spec("fake-container.spec", tmp_path, lock_serial="2")
    assert bumped.name == "container-fake-1.0-1.2.noarch.rpm"
    result = freight("sign", "--key", signer.fingerprint, bumped, env=signer.env)
    assert result.returncode == 0, result.stderr
    assert freight("verify", bumped, env=signer.env).returncode == 0


def _signer_of(path: Path) -> str:
    return subprocess.run(["rpm", "-qp", "--qf", "%{RSAHEADER:pgpsig}|%{DSAHEADER:pgpsig}", path], capture_output=True, text=True, check=True).stdout


def test_an_unsigned_build_does_not_replace_a_signed_package(demo_repo: Path, signer: Signer, tmp_path: Path) -> None:
    """build, sign, build again: the second build must not leave an unsigned RPM where the signed one was."""
    manifest = webapp_manifest(tmp_path / "w", demo_repo)
    out = tmp_path / "out"
    built = freight("build", manifest, "-o", out, env=signer.env)
    assert built.returncode == 0, built.stderr
    rpm = Path(built.last_line)
    assert freight("sign", "--key", signer.fingerprint, rpm, env=signer.env).returncode == 0
    signed = rpm.read_bytes()

    again = freight("build", manifest, "-o", out, "--force", env=signer.env)
    assert again.returncode == 2, again.stderr
    assert f"{rpm} is signed (key {signer.fingerprint[-16:]}) and this build is not" in again.stderr
    assert rpm.read_bytes() == signed and sorted(p.name for p in out.iterdir()) == [rpm.name]

    # $FREIGHT_SIGN_KEY signs a build as it signs `freight sign` and `freight publish`
    by_env = freight("build", manifest, "-o", out, "--force", env={**signer.env, "FREIGHT_SIGN_KEY": signer.fingerprint})
    assert by_env.returncode == 0, by_env.stderr
    assert "Signing with" in by_env.stderr and "FREIGHT_SIGN_KEY" in by_env.stderr
    assert freight("verify", rpm, env=signer.env).returncode == 0
    assert signer.fingerprint[-16:].lower() in _signer_of(rpm)


def test_an_unsigned_derivative_does_not_replace_a_signed_one(signer: Signer, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d/page.html").write_text("<h1>prod</h1>\n")
    manifest = write_manifest(tmp_path / "d", """\
        name: webapp-prod
        version: "1.0"
        summary: a derivative
        license: MIT
        base: webapp
        files: [{src: page.html, dest: /srv/www/index.html}]
        """)
    out = tmp_path / "out"
    signed = freight("build", manifest, "-o", out, "--sign", signer.fingerprint, env=signer.env)
    assert signed.returncode == 0, signed.stderr
    before = Path(signed.last_line).read_bytes()
    unsigned = freight("build", manifest, "-o", out, env=signer.env)
    assert unsigned.returncode == 2 and "and this build is not" in unsigned.stderr
    assert Path(signed.last_line).read_bytes() == before


def test_the_default_rsa4096_key_signs_and_verifies(built_webapp: Path, tmp_path: Path) -> None:
    """The key `freight key generate` makes by default (the other tests use ed25519 for speed)."""
    rsa = make_signer(tmp_path / "rsa", "rsa@example.com", algorithm="rsa4096")
    rpm = tmp_path / built_webapp.name
    shutil.copy2(built_webapp, rpm)
    assert freight("sign", rpm, env=rsa.env).returncode == 0
    assert "RSA/SHA256" in _rpm("-qp", "--qf", "%{RSAHEADER:pgpsig}", rpm, dbpath=tmp_path / "q").stdout
    verified = freight("verify", "--json", rpm, env=rsa.env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)[0]["signer"] == rsa.fingerprint[-16:]
    db = tmp_path / "rpmdb"
    assert _rpm("--import", rsa.pubkey, dbpath=db).returncode == 0
    checked = _rpm("--checksig", "-v", rpm, dbpath=db)
    assert checked.returncode == 0 and f"RSA/SHA256 Signature, key ID {rsa.fingerprint[-8:].lower()}: OK" in checked.stdout, checked.stdout

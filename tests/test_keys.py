"""`freight key`: generating, listing, exporting and importing keys with the real gpg."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import Signer, freight, gnupg_home, make_signer


def test_generate_prints_a_fingerprint_that_list_shows(signer: Signer) -> None:
    listed = freight("key", "list", "--json", env=signer.env)
    assert listed.returncode == 0, listed.stderr
    keys = json.loads(listed.stdout)
    assert [k["fingerprint"] for k in keys] == [signer.fingerprint]
    assert keys[0]["secret"] and keys[0]["can_sign"]
    assert keys[0]["algorithm"] == "ed25519"
    assert keys[0]["uid"] == "freight tests <signer@example.com>"
    plain = freight("key", "list", env=signer.env)
    assert plain.stdout.startswith(f"sec  {signer.fingerprint}")


def test_export_is_an_armored_public_key_without_secrets(signer: Signer) -> None:
    text = signer.pubkey.read_text()
    assert text.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert "PRIVATE" not in text
    out = freight("key", "export", "signer@example.com", env=signer.env)
    assert out.returncode == 0 and out.stdout == text


@pytest.mark.slow
def test_rsa4096_is_the_default(tmp_path: Path) -> None:
    home = gnupg_home(tmp_path)
    gen = freight("key", "generate", "--name", "RSA signer", "--email", "rsa@example.com", env={"FREIGHT_GNUPGHOME": str(home)})
    assert gen.returncode == 0, gen.stderr
    keys = json.loads(freight("key", "list", "--json", env={"FREIGHT_GNUPGHOME": str(home)}).stdout)
    assert keys[0]["algorithm"] == "rsa4096"


def test_import_public_key_into_another_keyring(signer: Signer, tmp_path: Path) -> None:
    env = {"FREIGHT_GNUPGHOME": str(gnupg_home(tmp_path))}
    result = freight("key", "import", signer.pubkey, env=env)
    assert result.returncode == 0, result.stderr
    assert result.last_line == signer.fingerprint
    keys = json.loads(freight("key", "list", "--json", env=env).stdout)
    assert [(k["fingerprint"], k["secret"]) for k in keys] == [(signer.fingerprint, False)]


def test_keyring_defaults_to_gnupghome_then_xdg(tmp_path: Path) -> None:
    home = gnupg_home(tmp_path)
    env = {"FREIGHT_GNUPGHOME": "", "GNUPGHOME": str(home)}
    assert freight("key", "generate", "--name", "G", "--email", "g@example.com", "--algorithm", "ed25519", env=env).returncode == 0
    assert list(home.glob("pubring.kbx"))
    xdg = tmp_path / "xdg"
    env = {"FREIGHT_GNUPGHOME": "", "GNUPGHOME": "", "XDG_DATA_HOME": str(xdg)}
    result = freight("key", "list", env=env)
    assert result.returncode == 0, result.stderr
    assert (xdg / "freight" / "gnupg").is_dir()
    assert (xdg / "freight" / "gnupg").stat().st_mode & 0o777 == 0o700
    subprocess.run(["gpgconf", "--homedir", str(xdg / "freight" / "gnupg"), "--kill", "gpg-agent"], capture_output=True)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--name", "A", "--email", "not-an-address"], "not an e-mail address"),
        (["--name", "<evil>", "--email", "a@example.com"], "give a plain name"),
        (["--name", "A", "--email", "signer@example.com"], "already has a key for signer@example.com"),
    ],
)
def test_generate_refuses_bad_input(signer: Signer, args: list[str], message: str) -> None:
    result = freight("key", "generate", "--algorithm", "ed25519", *args, env=signer.env)
    assert result.returncode == 2
    assert message in result.stderr


def test_bad_key_ids_and_files(signer: Signer, tmp_path: Path) -> None:
    missing = freight("key", "export", "nobody@example.com", env=signer.env)
    assert missing.returncode == 2 and "no key 'nobody@example.com'" in missing.stderr
    not_a_key = tmp_path / "notakey.asc"
    not_a_key.write_text("hello\n")
    result = freight("key", "import", not_a_key, env=signer.env)
    assert result.returncode == 2 and f"{not_a_key}: no OpenPGP key in it" in result.stderr
    result = freight("key", "import", tmp_path / "absent.asc", env=signer.env)
    assert result.returncode == 2 and "absent.asc: no such key file" in result.stderr


@pytest.mark.slow
def test_protected_key_needs_its_passphrase_and_never_prompts(tmp_path: Path, built_webapp: Path) -> None:
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("correct horse\n")
    protected = make_signer(tmp_path, "protected@example.com", passphrase_file=passphrase)
    rpm = tmp_path / built_webapp.name
    rpm.write_bytes(built_webapp.read_bytes())
    before = rpm.read_bytes()

    # No pass-phrase and nothing cached in gpg-agent: a clear error, not a hang (stdin is not a tty here).
    subprocess.run(["gpgconf", "--homedir", str(protected.home), "--kill", "gpg-agent"], capture_output=True)
    result = freight("sign", "--key", protected.fingerprint, rpm, env=protected.env)
    assert result.returncode == 1
    assert "protected by a pass-phrase" in result.stderr
    assert rpm.read_bytes() == before

    wrong = tmp_path / "wrong"
    wrong.write_text("wrong\n")
    result = freight("sign", "--key", protected.fingerprint, "--passphrase-file", wrong, rpm, env=protected.env)
    assert result.returncode == 1 and "does not unlock" in result.stderr
    assert rpm.read_bytes() == before

    result = freight("sign", "--key", protected.fingerprint, rpm, env={**protected.env, "FREIGHT_PASSPHRASE_FILE": str(passphrase)})
    assert result.returncode == 0, result.stderr
    assert rpm.read_bytes() != before

    # gpg-agent now has the pass-phrase cached: no file needed until it forgets.
    again = freight("sign", "--key", protected.fingerprint, rpm, env=protected.env)
    assert again.returncode == 0, again.stderr

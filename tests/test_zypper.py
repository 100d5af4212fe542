"""openSUSE's zypper, a second rpm client, against repositories freight published.

zypper finds a repository's key at `repodata/repomd.xml.key` (zypper's own
`zypper addrepo URL` names no key); it trusts keys in the root's rpm database.
The scratch root below gets the .repo file `freight repo-file` prints, less
its gpgkey= line where the test is about the key publish offers. Everything
is file:// on this machine.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Signer, freight, signed_repository, zypper

pytestmark = pytest.mark.slow

if shutil.which("zypper") is None:
    pytest.skip("zypper is not installed (make setup installs it)", allow_module_level=True)


def without_gpgkey(repo_file: str) -> str:
    """The .repo file as `zypper addrepo` would write it: the key comes from the repository itself."""
    return "".join(line for line in repo_file.splitlines(keepends=True) if not line.startswith("gpgkey="))


def trust(root: Path, signer: Signer) -> None:
    """Import SIGNER's public key into ROOT's rpm database, as an administrator would."""
    (root / "usr/lib/sysimage/rpm").mkdir(parents=True, exist_ok=True)
    subprocess.run(["rpm", "--root", str(root), "--dbpath", "/usr/lib/sysimage/rpm", "--import", str(signer.pubkey)],
                   check=True, capture_output=True)


def cached(root: Path, rpm: Path) -> list[Path]:
    return list((root / "var/cache/zypp/packages").rglob(rpm.name))


def refused_download(root: Path, repo_file: str, signer: Signer, rpm: Path) -> str:
    """With SIGNER trusted, the repository refreshes but zypper refuses to download RPM and keeps
    nothing of it; what zypper said."""
    trust(root, signer)
    assert zypper(root, repo_file, "refresh").returncode == 0
    proc = zypper(root, repo_file, "install", "--download-only", "container-webapp")
    assert proc.returncode != 0
    assert not cached(root, rpm)
    return proc.stdout + proc.stderr


def test_zypper_takes_the_key_from_repomd_xml_key_and_downloads_the_signed_container(
    signed_webapp: Path, signer: Signer, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo_file = without_gpgkey(signed_repository(repo, signer, signed_webapp))
    assert (repo / "repodata/repomd.xml.key").read_text() == signer.pubkey.read_text()
    root = tmp_path / "root"
    refresh = zypper(root, repo_file, "--gpg-auto-import-keys", "refresh")
    assert refresh.returncode == 0, refresh.stdout + refresh.stderr
    fingerprint = " ".join(signer.fingerprint[i : i + 8] for i in range(0, 40, 8))
    assert fingerprint in refresh.stdout, refresh.stdout
    keys = subprocess.run(["rpm", "--root", str(root), "--dbpath", "/usr/lib/sysimage/rpm", "-q", "gpg-pubkey"],
                          capture_output=True, text=True)
    assert keys.stdout.strip() == f"gpg-pubkey-{signer.fingerprint[-8:].lower()}-" + keys.stdout.strip().rsplit("-", 1)[1]

    search = zypper(root, repo_file, "search", "container-webapp")
    assert search.returncode == 0 and "container-webapp" in search.stdout, search.stdout + search.stderr
    info = zypper(root, repo_file, "info", "--provides", "container-webapp")
    assert info.returncode == 0, info.stdout + info.stderr
    assert "bundled(demo-www) = 1.0-1" in info.stdout and "freight-container(webapp) = 1.0-1" in info.stdout, info.stdout
    # Downloading checks the package's own signature (pkg_gpgcheck=1 in the .repo file).
    download = zypper(root, repo_file, "install", "--download-only", "container-webapp")
    assert download.returncode == 0, download.stdout + download.stderr
    [got] = cached(root, signed_webapp)
    assert got.read_bytes() == signed_webapp.read_bytes()


def test_zypper_refuses_a_repository_signed_by_a_key_it_does_not_trust(
    signed_webapp: Path, signer: Signer, stranger: Signer, tmp_path: Path
) -> None:
    """Key A trusted, no auto-import: a repository signed by A reads, one signed by B (offering B) does not."""
    good = without_gpgkey(signed_repository(tmp_path / "good", signer, signed_webapp))
    root = tmp_path / "root"
    trust(root, signer)
    ok = zypper(root, good, "refresh")
    assert ok.returncode == 0, ok.stdout + ok.stderr

    other = tmp_path / "other"
    other.mkdir()
    shutil.copy2(signed_webapp, other / signed_webapp.name)
    bad = without_gpgkey(signed_repository(other / "repo", stranger, signed_webapp, "--allow-unsigned"))
    assert (other / "repo/repodata/repomd.xml.key").read_text() == stranger.pubkey.read_text()
    refused = zypper(root, bad, "refresh")
    assert refused.returncode != 0
    assert "Signature verification failed for repomd.xml" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
    assert zypper(root, bad, "install", "--download-only", "container-webapp").returncode != 0
    assert not cached(root, signed_webapp)


def test_zypper_refuses_a_package_signed_by_another_key(
    built_webapp: Path, signer: Signer, stranger: Signer, tmp_path: Path
) -> None:
    """Metadata signed by the trusted key, the package by a stranger's: the package is refused."""
    rpm = tmp_path / built_webapp.name
    shutil.copy2(built_webapp, rpm)
    assert freight("sign", "--key", stranger.fingerprint, rpm, env=stranger.env).returncode == 0
    out = refused_download(tmp_path / "root", signed_repository(tmp_path / "repo", signer, rpm), signer, rpm)
    assert "Signature verification failed" in out and "public key is not available" in out, out


def test_zypper_refuses_a_package_changed_after_publishing(signed_webapp: Path, signer: Signer, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo_file = signed_repository(repo, signer, signed_webapp)
    published = repo / signed_webapp.name
    data = bytearray(published.read_bytes())
    data[-100] ^= 0xFF  # in the payload: the size is unchanged, the digests are not
    published.write_bytes(bytes(data))
    out = refused_download(tmp_path / "root", repo_file, signer, signed_webapp)
    assert "Payload SHA256 digest: BAD" in out and "Signature verification failed [2-Signature does not verify]" in out, out

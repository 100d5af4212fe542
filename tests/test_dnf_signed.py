"""A host's real dnf, with gpgcheck=1 and repo_gpgcheck=1, against repositories freight published.

The host side is a scratch installroot and the repository file `freight
repo-file` prints: dnf installs the signed container, and refuses an unsigned
package, a package signed by a key the repository does not name, and a
repomd.xml altered after it was signed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import Signer, dnf, freight, signed_repository

pytestmark = pytest.mark.slow


def test_dnf_installs_the_signed_container(signed_webapp: Path, signer: Signer, tmp_path: Path) -> None:
    repo_file = signed_repository(tmp_path / "repo", signer, signed_webapp)
    root = tmp_path / "root"
    proc = dnf(root, repo_file, "install", "container-webapp")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert f"Importing GPG key 0x{signer.fingerprint[-8:]}" in out and "Key imported successfully" in out, out
    assert (root / "var/lib/freight/images/webapp/usr/bin/busybox").is_file()
    assert (root / "usr/share/freight/containers/webapp/manifest.json").is_file()


def test_dnf_refuses_an_unsigned_package(built_webapp: Path, signer: Signer, tmp_path: Path) -> None:
    repo_file = signed_repository(tmp_path / "repo", signer, built_webapp, "--allow-unsigned")
    root = tmp_path / "root"
    proc = dnf(root, repo_file, "install", "container-webapp")
    assert proc.returncode != 0
    assert "is not signed" in proc.stdout + proc.stderr
    assert not (root / "var/lib/freight/images/webapp").exists()


def test_dnf_refuses_a_package_signed_by_another_key(built_webapp: Path, signer: Signer, stranger: Signer, tmp_path: Path) -> None:
    other = tmp_path / built_webapp.name
    shutil.copy2(built_webapp, other)
    assert freight("sign", "--key", stranger.fingerprint, other, env=stranger.env).returncode == 0
    repo_file = signed_repository(tmp_path / "repo", signer, other)
    proc = dnf(tmp_path / "root", repo_file, "install", "container-webapp")
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    # dnf imports the repository's key, which does not verify this package's signature, and refuses it
    assert f"Importing GPG key 0x{signer.fingerprint[-8:]}" in out and "Import of key(s) didn't help, wrong key(s)?" in out, out
    assert f"Public key for {other.name} is not installed" in out and "Error: GPG check FAILED" in out, out
    assert not (tmp_path / "root/var/lib/freight/images/webapp").exists()


def test_dnf_refuses_repomd_altered_after_signing(signed_webapp: Path, signer: Signer, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo_file = signed_repository(repo, signer, signed_webapp)
    repomd = repo / "repodata/repomd.xml"
    repomd.write_text(repomd.read_text().replace("<revision>", "<revision>9"))
    proc = dnf(tmp_path / "root", repo_file, "install", "container-webapp")
    assert proc.returncode != 0
    assert "repomd.xml GPG signature verification error" in proc.stdout + proc.stderr
    assert not (tmp_path / "root/var/lib/freight/images/webapp").exists()

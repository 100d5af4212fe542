"""`freight build --sign`: the RPM appears in the output folder already signed."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Signer, freight, make_signer, webapp_manifest, write_manifest

pytestmark = pytest.mark.slow


def test_build_signs_before_the_rpm_appears(demo_repo: Path, signer: Signer, tmp_path: Path) -> None:
    manifest = webapp_manifest(tmp_path / "src", demo_repo)
    out = tmp_path / "out"
    unsigned = freight("build", manifest, "-o", out)
    assert unsigned.returncode == 0, unsigned.stderr
    assert freight("verify", unsigned.last_line, env=signer.env).returncode == 1

    # Signing is part of the build's inputs: the unsigned RPM is not "up to date".
    signed = freight("build", manifest, "-o", out, "--sign", signer.fingerprint, env=signer.env)
    assert signed.returncode == 0, signed.stderr
    assert "up to date" not in signed.stderr
    verdict = freight("verify", signed.last_line, env=signer.env)
    assert verdict.returncode == 0, verdict.stdout
    assert [p.name for p in out.iterdir()] == [Path(signed.last_line).name]  # no temporary or unsigned file left

    again = freight("build", manifest, "-o", out, "--sign", signer.fingerprint, env=signer.env)
    assert again.returncode == 0 and "is up to date" in again.stderr


def test_build_with_an_unknown_key_fails_before_building(demo_repo: Path, signer: Signer, tmp_path: Path) -> None:
    manifest = webapp_manifest(tmp_path / "src", demo_repo)
    result = freight("build", manifest, "-o", tmp_path / "out", "--sign", "nobody@example.com", env=signer.env)
    assert result.returncode == 2 and "no secret key 'nobody@example.com'" in result.stderr
    assert "Resolving" not in result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    assert not manifest.with_suffix(".lock").exists()


def test_build_refuses_a_keyring_inside_the_output_folder(demo_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    inside = make_signer(out / "keys", "inside@example.com")
    manifest = webapp_manifest(tmp_path / "src", demo_repo)
    result = freight("build", manifest, "-o", out, "--sign", inside.fingerprint, env=inside.env)
    assert result.returncode == 2 and "is inside the output folder" in result.stderr
    assert not list(out.glob("*.rpm"))


def test_a_derivative_is_signed_as_it_is_built(signer: Signer, tmp_path: Path) -> None:
    src = tmp_path / "d"
    (src / "site").mkdir(parents=True)
    (src / "site/index.html").write_text("<h1>production</h1>\n")
    manifest = write_manifest(
        src,
        """\
        name: webapp-prod
        version: "1.0"
        summary: The demo web server with the production page
        license: MIT
        base: webapp
        files:
          - src: site/index.html
            dest: /srv/www/index.html
        """,
    )
    result = freight("build", manifest, "-o", tmp_path / "out", "--sign", signer.fingerprint, env=signer.env)
    assert result.returncode == 0, result.stderr
    verdict = freight("verify", "--json", result.last_line, env=signer.env)
    assert verdict.returncode == 0, verdict.stdout
    assert '"container": "webapp-prod"' in verdict.stdout

"""`freight rebuild --verify`: a published container is reproduced, and each kind of tampering is named.

Everything is real: the published RPM is signed and in a createrepo_c
repository; the changed library package is a real rpmbuild of the same NEVRA
with other contents; the injected file is packed by freight's own packer and
validly signed, so only the file comparison can catch it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import ROOT, Signer, copy_repo, freight, webapp_manifest, write_manifest

from test_derivative import built_layer, containers_repo  # noqa: F401 (fixtures)

from freight.dist import demorepo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def published(demo_repo: Path, signer: Signer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(library repo, container repo, the published signed container-webapp RPM)."""
    work = tmp_path_factory.mktemp("rebuild")
    repo = copy_repo(demo_repo, work / "repo")
    manifest = webapp_manifest(work / "w", repo)
    containers = work / "containers"
    built = freight("build", manifest, "-o", containers, "--sign", signer.fingerprint, env=signer.env)
    assert built.returncode == 0, built.stderr
    assert freight("publish", containers, "--sign-key", signer.fingerprint, env=signer.env).returncode == 0
    return repo, containers, Path(built.last_line)


def rebuild(*args: str | Path, cwd: Path | None = None):
    return freight("rebuild", "--verify", *args, cwd=cwd)


def test_a_published_container_is_reproduced(published: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, _, rpm = published
    result = rebuild(rpm, "-o", tmp_path / "kept")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{rpm}: reproduced"
    assert [p.name for p in (tmp_path / "kept").glob("*.rpm")] == [rpm.name]


def test_a_changed_package_under_the_same_nevra_is_named(published: tuple[Path, Path, Path], tmp_path: Path) -> None:
    repo, _, rpm = published
    changed = copy_repo(repo, tmp_path / "changed")
    for old in changed.glob("demo-www-1.0-1.*"):
        old.unlink()
    demorepo.build_rpm(ROOT / "specs/demo/demo-www.spec", changed, {"page_text": "Not the page the lock pinned"})
    demorepo.createrepo(changed)
    # The same repository URL, now serving the other package: swap the folders.
    shutil.move(repo, tmp_path / "original")
    shutil.move(changed, repo)
    try:
        result = rebuild(rpm)
    finally:
        shutil.move(repo, changed)
        shutil.move(tmp_path / "original", repo)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "NOT reproduced" in result.stdout
    assert "demo-www-1.0-1.noarch changed in repository demo" in result.stdout


def test_an_injected_file_in_a_validly_signed_rpm_is_named(published: tuple[Path, Path, Path], signer: Signer, tmp_path: Path) -> None:
    repo, _, rpm = published
    # The container again, with one more file, packed by freight's own packer and signed with the real key.
    manifest = webapp_manifest(tmp_path / "w", repo)
    stage = tmp_path / "stage"
    assert freight("build", manifest, "-o", tmp_path / "scratch", "--keep-stage", stage).returncode == 0
    (stage / "var/lib/freight/images/webapp/usr/bin/helper").write_text("#!/bin/sh\necho owned\n")
    tampered = _repack(manifest, stage, tmp_path / "tampered")
    assert freight("sign", "--key", signer.fingerprint, tampered, env=signer.env).returncode == 0
    assert freight("verify", "--key", signer.pubkey, tampered).returncode == 0  # validly signed: not what catches it
    result = rebuild(tampered)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "/var/lib/freight/images/webapp/usr/bin/helper: only in the given package" in result.stdout
    assert result.stdout.count("\n  ") == 1, result.stdout  # that file, and nothing else


def _repack(manifest: Path, stage: Path, outdir: Path) -> Path:
    """What someone holding the signing key could publish: freight's packer over a changed tree."""
    from freight.build import package
    from freight.manifest import lock
    from freight.manifest.load import load
    from freight.model.owners import Owners

    loaded = load(manifest)
    the_lock = lock.read(loaded.lock_path)
    assert the_lock is not None
    outdir.mkdir()
    image = stage / "var/lib/freight/images/webapp"
    return package.build_rpm(
        loaded, the_lock.release(loaded.release), the_lock.packages, stage, outdir, the_lock.source_date_epoch, "x86_64", owners=Owners.of(image), history=the_lock.history
    )


def test_a_different_files_source_is_named(demo_repo: Path, tmp_path: Path) -> None:
    sources = tmp_path / "src"
    manifest = webapp_manifest(sources, copy_repo(demo_repo, tmp_path / "repo"))
    manifest.write_text(manifest.read_text() + "files:\n  - {src: page.html, dest: /srv/www/index.html}\n")
    (sources / "page.html").write_text("<h1>the page that was published</h1>\n")
    built = freight("build", manifest, "-o", tmp_path / "out")
    assert built.returncode == 0, built.stderr
    rpm = Path(built.last_line)

    assert rebuild(rpm, "--source", sources).returncode == 0
    assert rebuild(rpm, cwd=sources).returncode == 0  # the current folder by default
    (sources / "page.html").write_text("<h1>another page</h1>\n")
    result = rebuild(rpm, "--source", sources)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "/var/lib/freight/images/webapp/srv/www/index.html: size, digest differ" in result.stdout

    nowhere = rebuild(rpm, "--source", tmp_path)
    assert nowhere.returncode == 2
    assert "no such file" in nowhere.stderr and "page.html" in nowhere.stderr


def test_bad_inputs(published: tuple[Path, Path, Path], tmp_path: Path) -> None:
    repo, _, rpm = published
    library = next(p for p in repo.glob("demo-base-*.rpm") if not p.name.endswith(".src.rpm"))
    damaged = tmp_path / "damaged.rpm"
    damaged.write_bytes(rpm.read_bytes()[:-100])
    cases = {
        ("rebuild", rpm): "say what to do with the rebuild",
        ("rebuild", "--verify", library): "not a container package",
        ("rebuild", "--verify", tmp_path / "none.rpm"): "no such file",
        ("rebuild", "--verify", rpm, "--source", tmp_path / "nope"): "no such folder",
    }
    for args, message in cases.items():
        result = freight(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
    broken = freight("rebuild", "--verify", damaged)
    assert broken.returncode == 1
    assert "damaged" in broken.stderr


def test_a_layer_is_reproduced_on_its_pinned_base(built_layer: tuple[Path, Path]) -> None:
    manifest, rpm = built_layer
    result = rebuild(rpm, "--source", manifest.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{rpm}: reproduced"

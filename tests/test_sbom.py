"""Every container carries its SBOM: built with the real rpmbuild, read back, checked by the formats' validators.

The SPDX document is parsed and validated by spdx-tools, the CycloneDX one by
cyclonedx-python-lib's JSON schema validator; what they list is compared with
the lock and with what `rpm -qp` says of the packages in the repository.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import Signer, copy_repo, dnf, freight, rpm_from_spec, webapp_manifest, write_manifest
from test_derivative import built_layer, containers_repo  # noqa: F401 (fixtures)
from test_host_updates import Host

pytestmark = pytest.mark.slow

SPDX_CONTAINER = "SPDXRef-Container-container-webapp"


@pytest.fixture(scope="module")
def webapp(demo_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(repo, manifest, RPM): container-webapp with three packages, one of which requires another."""
    work = tmp_path_factory.mktemp("sbom")
    repo = copy_repo(demo_repo, work / "repo")
    manifest = webapp_manifest(work / "w", repo)
    manifest.write_text(manifest.read_text().replace("[demo-www]", "[demo-www, demo-ssl]"))
    built = freight("build", manifest, "-o", work / "out")
    assert built.returncode == 0, built.stderr
    return repo, manifest, Path(built.last_line)


def sbom(*args: str | Path) -> str:
    result = freight("sbom", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def validated_spdx(text: str, tmp_path: Path) -> object:
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    path = tmp_path / "sbom.spdx.json"
    path.write_text(text)
    document = parse_file(str(path))
    assert validate_full_spdx_document(document) == []
    return document


def validated_cyclonedx(text: str) -> dict:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    return json.loads(text)


def lock_of(manifest: Path) -> dict:
    return json.loads(manifest.with_suffix(".lock").read_text())


def repo_license(repo: Path, name: str) -> str:
    [path] = [p for p in repo.glob(f"{name}-*.rpm") if not p.name.endswith(".src.rpm")][:1]
    return subprocess.run(["rpm", "-qp", "--qf", "%{LICENSE}", path], capture_output=True, text=True, check=True).stdout


def test_spdx_lists_every_locked_package_with_license_checksum_and_requires(webapp: tuple[Path, Path, Path], tmp_path: Path) -> None:
    repo, manifest, rpm = webapp
    document = validated_spdx(sbom(rpm), tmp_path)
    locked = {p["name"]: p for p in lock_of(manifest)["packages"]}
    assert set(locked) == {"demo-base", "demo-www", "demo-ssl"}
    packages = {p.name: p for p in document.packages}
    assert packages["container-webapp"].primary_package_purpose.name == "CONTAINER"
    for name, pinned in locked.items():
        p = packages[name]
        assert p.version == f"{pinned['version']}-{pinned['release']}"
        assert [c.value for c in p.checksums] == [pinned["checksum"].removeprefix("sha256:")]
        assert str(p.license_declared) == repo_license(repo, name)
        assert f"from repository {pinned['repo']}" in p.source_info
        assert [r.locator for r in p.external_references] == [f"pkg:rpm/{name}@{p.version}?arch={pinned['arch']}&repository_id=demo"]
    relations = {(r.spdx_element_id, r.relationship_type.name, r.related_spdx_element_id) for r in document.relationships}
    ids = {p.name: p.spdx_id for p in document.packages}
    assert {(SPDX_CONTAINER, "CONTAINS", ids[n]) for n in locked} <= relations
    # demo-www and demo-ssl each require demo-base, as the image's rpm database says.
    assert (ids["demo-www"], "DEPENDS_ON", ids["demo-base"]) in relations
    assert (ids["demo-base"], "DEPENDS_ON", ids["demo-www"]) not in relations


def test_cyclonedx_lists_the_same_packages(webapp: tuple[Path, Path, Path]) -> None:
    repo, manifest, rpm = webapp
    bom = validated_cyclonedx(sbom(rpm, "--format", "cyclonedx"))
    assert bom["metadata"]["component"]["name"] == "container-webapp"
    assert bom["metadata"]["component"]["type"] == "container"
    locked = {p["name"]: p for p in lock_of(manifest)["packages"]}
    components = {c["name"]: c for c in bom["components"]}
    assert set(components) == set(locked)
    for name, pinned in locked.items():
        c = components[name]
        assert c["hashes"] == [{"alg": "SHA-256", "content": pinned["checksum"].removeprefix("sha256:")}]
        assert [lic.get("expression") or lic["license"].get("id") or lic["license"].get("name") for lic in c["licenses"]] == [repo_license(repo, name)]
    depends = {d["ref"]: set(d.get("dependsOn", [])) for d in bom["dependencies"]}
    assert depends[bom["metadata"]["component"]["bom-ref"]] == {c["bom-ref"] for c in components.values()}
    assert depends[components["demo-www"]["bom-ref"]] == {components["demo-base"]["bom-ref"]}


def test_two_builds_of_one_lock_carry_the_same_sbom_and_the_manifest_gives_it_too(webapp: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, manifest, rpm = webapp
    again = freight("build", manifest, "-o", tmp_path / "again", "--force")
    assert again.returncode == 0, again.stderr
    for fmt in ("spdx", "cyclonedx"):
        first = sbom(rpm, "--format", fmt)
        assert sbom(again.last_line, "--format", fmt) == first
        assert sbom(manifest, "--format", fmt) == first  # from the repositories' metadata, no staging


def test_a_derivative_names_its_base(webapp: tuple[Path, Path, Path], tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text("<h1>prod</h1>\n")
    manifest = write_manifest(
        tmp_path,
        """\
        name: webapp-prod
        version: "1.0"
        summary: production page
        license: MIT
        base: webapp
        base_version: ">= 1.0"
        files:
          - {src: page.html, dest: /srv/www/index.html}
        """,
    )
    built = freight("build", manifest, "-o", tmp_path / "out")
    assert built.returncode == 0, built.stderr
    document = validated_spdx(sbom(built.last_line), tmp_path)
    relations = {(r.spdx_element_id, r.relationship_type.name, r.related_spdx_element_id) for r in document.relationships}
    assert ("SPDXRef-Container-container-webapp-prod", "DESCENDANT_OF", "SPDXRef-Base-container-webapp") in relations
    bom = validated_cyclonedx(sbom(built.last_line, "--format", "cyclonedx"))
    assert [a["name"] for a in bom["metadata"]["component"]["pedigree"]["ancestors"]] == ["container-webapp"]
    assert bom.get("components", []) == []


def test_the_installed_containers_sbom_is_the_rpms(webapp: tuple[Path, Path, Path], signer: Signer, tmp_path: Path) -> None:
    _, _, rpm = webapp
    containers = tmp_path / "containers"
    containers.mkdir()
    signed = containers / rpm.name
    signed.write_bytes(rpm.read_bytes())
    stub = rpm_from_spec("freight-host-stub.spec", containers)
    assert freight("sign", "--key", signer.fingerprint, signed, stub, env=signer.env).returncode == 0
    assert freight("publish", containers, "--sign-key", signer.fingerprint, env=signer.env).returncode == 0
    repo_file = freight("repo-file", "--name", "containers", "--baseurl", containers.as_uri()).stdout
    host = Host(tmp_path / "host", repo_file)
    done = dnf(host.root, repo_file, "install", "container-webapp")
    assert done.returncode == 0, done.stderr
    for fmt in ("spdx", "cyclonedx"):
        installed = freight("sbom", "--installed", "webapp", "--format", fmt, "--root", host.root, env=host.env)
        assert installed.returncode == 0, installed.stderr
        assert installed.stdout == sbom(rpm, "--format", fmt)
    missing = freight("sbom", "--installed", "nosuch", "--root", host.root, env=host.env)
    assert missing.returncode == 2
    assert "no installed package provides freight-container(nosuch)" in missing.stderr


def test_bad_inputs(webapp: tuple[Path, Path, Path], tmp_path: Path) -> None:
    repo, manifest, rpm = webapp
    library = next(p for p in repo.glob("demo-base-*.rpm") if not p.name.endswith(".src.rpm"))
    cases = {
        ("sbom", library): "not a container package",
        ("sbom", rpm, "--installed", "webapp"): "not both",
        ("sbom",): "name a container RPM or manifest",
        ("sbom", rpm, "--root", tmp_path): "--root goes with --installed",
        ("sbom", tmp_path / "missing.rpm"): "no such file",
        ("sbom", rpm, "--format", "swid"): "invalid choice",
    }
    unlocked = webapp_manifest(tmp_path / "unlocked", repo)
    cases[("sbom", unlocked)] = "no lock file (manifest.lock)"
    for args, message in cases.items():
        result = freight(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
    out = tmp_path / "written.json"
    assert freight("sbom", rpm, "-o", out).returncode == 0
    assert out.read_text() == sbom(rpm)


def test_publish_places_the_sboms_beside_the_packages_and_prunes_them(webapp: tuple[Path, Path, Path], tmp_path: Path) -> None:
    repo, manifest, rpm = webapp
    containers = tmp_path / "containers"
    containers.mkdir()
    (containers / rpm.name).write_bytes(rpm.read_bytes())
    library = next(p for p in repo.glob("demo-base-*.rpm") if not p.name.endswith(".src.rpm"))
    (containers / library.name).write_bytes(library.read_bytes())
    assert freight("publish", containers, "--sbom").returncode == 0
    stem = rpm.name.removesuffix(".rpm")
    assert sorted(p.name for p in containers.glob("*.json")) == [f"{stem}.cdx.json", f"{stem}.spdx.json"]  # none for demo-base
    assert (containers / f"{stem}.spdx.json").read_text() == sbom(rpm)
    assert (containers / f"{stem}.cdx.json").read_text() == sbom(rpm, "--format", "cyclonedx")
    # A newer release, and --keep 1: the old package goes, and its SBOMs with it.
    second = tmp_path / "w2" / "manifest.yaml"
    second.parent.mkdir()
    second.write_text(manifest.read_text() + 'release: "2"\n')
    second.with_suffix(".lock").write_text(manifest.with_suffix(".lock").read_text())
    newer = freight("build", second, "-o", containers)
    assert newer.returncode == 0, newer.stderr
    assert freight("publish", containers, "--sbom", "--keep", "1").returncode == 0
    stems = {p.name.removesuffix(".rpm") for p in containers.glob("container-*.rpm")}
    assert {p.name.split(".spdx.json")[0].split(".cdx.json")[0] for p in containers.glob("*.json")} == stems
    assert stem not in stems


def test_a_layer_lists_what_it_adds_and_pins_its_base(built_layer: tuple[Path, Path], tmp_path: Path) -> None:
    manifest, rpm = built_layer
    the_lock = lock_of(manifest)
    document = validated_spdx(sbom(rpm), tmp_path)
    names = {p.name for p in document.packages}
    assert names == {"container-webapp-extra", "container-webapp", *(p["name"] for p in the_lock["packages"])}
    base = next(p for p in document.packages if p.name == "container-webapp")
    assert base.version == f"{the_lock['base']['version']}-{the_lock['base']['release']}"
    assert [c.value for c in base.checksums] == [the_lock["base"]["checksum"].removeprefix("sha256:")]
    relations = {(r.spdx_element_id, r.relationship_type.name, r.related_spdx_element_id) for r in document.relationships}
    assert ("SPDXRef-Container-container-webapp-extra", "DESCENDANT_OF", "SPDXRef-Base-container-webapp") in relations
    bom = validated_cyclonedx(sbom(rpm, "--format", "cyclonedx"))
    assert {c["name"] for c in bom["components"]} == {p["name"] for p in the_lock["packages"]}
    assert [a["name"] for a in bom["metadata"]["component"]["pedigree"]["ancestors"]] == ["container-webapp"]

"""Update and security visibility with real createrepo_c updateinfo, dnf and rpm.

A repository holds demo-ssl 1.0; a container is built against it; then demo-ssl
2.0 arrives with a security advisory naming a CVE.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import rpm
from conftest import ROOT, Signer, copy_repo, dnf, freight, rpm_from_spec, webapp_manifest, write_manifest

from freight.dist import demorepo
from freight.publish import updateinfo

pytestmark = pytest.mark.slow

CVE = "CVE-2026-12345"


def fix_demo_ssl(repo: Path) -> None:
    """demo-ssl 2.0 with a security advisory, as a distribution would publish it."""
    demorepo.publish_fix(repo, demorepo.Fix(ROOT / "tests/specs/demo-ssl.spec", "2.0", "FREIGHT-2026-0001", CVE,
                                            "demo-ssl: fix for a heap overflow"))


@pytest.fixture
def scenario(demo_repo: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(library repo, manifest, container output folder) with the container built against demo-ssl 1.0."""
    repo = copy_repo(demo_repo, tmp_path / "repo")
    manifest = webapp_manifest(tmp_path / "w", repo)
    manifest.write_text(manifest.read_text().replace("[demo-www]", "[demo-www, demo-ssl]"))
    out = tmp_path / "w/out"
    result = freight("build", manifest, "-o", out)
    assert result.returncode == 0, result.stderr
    demorepo.createrepo(out)
    return repo, manifest, out


def test_outdated_reports_the_security_fix(scenario: tuple[Path, Path, Path]) -> None:
    repo, manifest, _ = scenario
    clean = freight("outdated", manifest)
    assert clean.returncode == 0, clean.stderr
    assert "container-webapp" in clean.stdout and "up to date" in clean.stdout

    fix_demo_ssl(repo)
    due = freight("outdated", manifest)
    assert due.returncode == 100, due.stderr
    assert "1 outdated, 1 with security fixes" in due.stdout
    assert f"demo-ssl  1.0-1 -> 2.0-1  security (Important): {CVE} [FREIGHT-2026-0001]" in due.stdout

    report = json.loads(freight("outdated", "--json", manifest).stdout)
    assert report[0]["packages"] == [
        {
            "name": "demo-ssl",
            "arch": "noarch",
            "locked": "1.0-1",
            "available": "2.0-1",
            "security": True,
            "advisories": [{"id": "FREIGHT-2026-0001", "type": "security", "severity": "Important", "cves": [CVE]}],
        }
    ]


def test_outdated_without_a_lock_is_a_usage_error(tmp_path: Path) -> None:
    manifest = webapp_manifest(tmp_path, tmp_path / "repo")
    result = freight("outdated", manifest)
    assert result.returncode == 2
    assert "no lock file (manifest.lock); build it once first" in result.stderr


def test_affected_by_cve_and_by_version(scenario: tuple[Path, Path, Path]) -> None:
    repo, _, out = scenario
    fix_demo_ssl(repo)
    by_cve = freight("affected", out, repo, "--cve", CVE)
    assert by_cve.returncode == 100, by_cve.stderr
    assert "container-webapp-1.0-1.x86_64  bundles demo-ssl 1.0-1  fixed in 2.0-1 by security (Important)" in by_cve.stdout

    below = freight("affected", out, "--package", "demo-ssl", "--below", "2.0", "--json")
    assert below.returncode == 100
    assert json.loads(below.stdout) == [
        {"container": "container-webapp-1.0-1.x86_64", "repo": str(out), "package": "demo-ssl", "bundled": "1.0-1"}
    ]
    none = freight("affected", out, "--package", "demo-ssl", "--below", "1.0")
    assert (none.returncode, none.stdout.strip()) == (0, "no container package is affected")
    # the repositories may follow the options, or stand on both sides of them; a CVE id in lower case is the same CVE
    for args in (["--cve", CVE.lower(), out, repo], [out, "--cve", CVE, repo]):
        after = freight("affected", *args)
        assert (after.returncode, after.stdout) == (100, by_cve.stdout), (args, after.stderr)


def test_affected_by_a_cve_no_advisory_names_is_an_error_not_a_clean_bill(scenario: tuple[Path, Path, Path]) -> None:
    repo, _, out = scenario
    fix_demo_ssl(repo)
    for args in ([out, repo, "--cve", "CVE-1999-0001"], [out, "--cve", CVE]):  # unknown CVE; the containers' repository alone
        result = freight("affected", *args)
        assert result.returncode == 1, result.stdout
        assert "no container package is affected" not in result.stdout
        assert f"no advisory in {', '.join(map(str, args[:-2]))} names a fixed package for {args[-1]}" in result.stderr
    malformed = freight("affected", out, repo, "--cve", "1999-0001")
    assert malformed.returncode == 2 and "--cve: expected a CVE id such as CVE-2024-12345, got '1999-0001'" in malformed.stderr


def test_plain_dnf_answers_the_same_question(scenario: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, _, out = scenario
    config = tmp_path / "dnf.conf"  # nothing from this machine's dnf setup
    config.write_text("")
    proc = subprocess.run(
        [
            "dnf", "repoquery", "-q", "--config", config, "--setopt=reposdir=/nonexistent",
            "--setopt", f"cachedir={tmp_path / 'dnfcache'}", "--releasever=1",
            f"--repofrompath=containers,{out}", "--repo=containers",
            "--whatprovides", "bundled(demo-ssl) < 2.0",
        ],
        capture_output=True, text=True, check=True,
    )
    assert proc.stdout.split() == ["container-webapp-0:1.0-1.x86_64"]


def test_update_lock_makes_a_newer_release(scenario: tuple[Path, Path, Path]) -> None:
    repo, manifest, out = scenario
    fix_demo_ssl(repo)
    first = Path(freight("build", manifest, "-o", out).last_line)  # the lock still pins 1.0
    assert first.name == "container-webapp-1.0-1.x86_64.rpm"
    rebuilt = freight("build", manifest, "-o", out, "--update-lock")
    assert rebuilt.returncode == 0, rebuilt.stderr
    second = Path(rebuilt.last_line)
    assert second.name == "container-webapp-1.0-1.1.x86_64.rpm"
    written = json.loads(manifest.with_suffix(".lock").read_text())
    assert written["serial"] == 1
    # the lock says which advisories the update brought in; publish makes them the container's advisory
    assert written["fixes"] == [
        {"id": "FREIGHT-2026-0001", "type": "security", "severity": "Important", "cves": [CVE], "package": "demo-ssl", "from": "1.0-1", "to": "2.0-1"}
    ]

    def evr(path: Path) -> tuple[str, str, str]:
        ts = rpm.TransactionSet()
        ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES)
        with path.open("rb") as f:
            hdr = ts.hdrFromFdno(f.fileno())
        return (str(hdr[rpm.RPMTAG_EPOCH] or 0), hdr[rpm.RPMTAG_VERSION], hdr[rpm.RPMTAG_RELEASE])

    assert rpm.labelCompare(evr(second), evr(first)) == 1
    provides = subprocess.run(["rpm", "-qp", "--provides", second], capture_output=True, text=True, check=True).stdout
    assert "bundled(demo-ssl) = 2.0-1" in provides and "freight-container(webapp) = 1.0-1.1" in provides
    # updating the lock again without new packages keeps the release
    again = freight("build", manifest, "-o", out, "--update-lock")
    assert Path(again.last_line).name == "container-webapp-1.0-1.1.x86_64.rpm"
    assert json.loads(manifest.with_suffix(".lock").read_text())["serial"] == 1

    # a new version starts its rebuilds afresh: 1.1-1, not 1.1-1.1, and without 1.0-1.1's advisories
    manifest.write_text(manifest.read_text().replace('version: "1.0"', 'version: "1.1"'))
    bumped = freight("build", manifest, "-o", out)
    assert bumped.returncode == 0, bumped.stderr
    assert Path(bumped.last_line).name == "container-webapp-1.1-1.x86_64.rpm"
    written = json.loads(manifest.with_suffix(".lock").read_text())
    assert (written["serial"], written["serial_of"], "fixes" in written) == (0, "1.1-1", False)
    assert rpm.labelCompare(evr(Path(bumped.last_line)), evr(second)) == 1
    provides = subprocess.run(["rpm", "-qp", "--provides", bumped.last_line], capture_output=True, text=True, check=True).stdout
    assert "freight-container(webapp) = 1.1-1" in provides and "bundled(demo-ssl) = 2.0-1" in provides


def test_publish_gives_the_rebuilt_container_an_advisory_dnf_acts_on(
    scenario: tuple[Path, Path, Path], signer: Signer, tmp_path: Path
) -> None:
    """dnf's own security workflow sees the rebuilt container as a security update."""
    repo, manifest, out = scenario
    containers = tmp_path / "containers"
    containers.mkdir()
    old = Path(freight("build", manifest, "-o", containers, "--sign", signer.fingerprint, env=signer.env).last_line)
    stub = rpm_from_spec("freight-host-stub.spec", containers)
    assert freight("sign", "--key", signer.fingerprint, stub, env=signer.env).returncode == 0
    assert freight("publish", containers, "--sign-key", signer.fingerprint, env=signer.env).returncode == 0
    repo_file = freight("repo-file", "--name", "containers", "--baseurl", containers.as_uri()).stdout
    root = tmp_path / "host"
    installed = dnf(root, repo_file, "install", "container-webapp")
    assert installed.returncode == 0, installed.stderr

    fix_demo_ssl(repo)
    rebuilt = freight("build", manifest, "-o", containers, "--update-lock", "--sign", signer.fingerprint, env=signer.env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    published = freight("publish", containers, "--sign-key", signer.fingerprint, env=signer.env)
    assert published.returncode == 0, published.stderr
    assert "advisory FREIGHT-container-webapp-1.0-1.1 (security, CVE-2026-12345)" in published.stderr
    records = {r.id: r for r in updateinfo.read_repo(containers)}
    advisory = records["FREIGHT-container-webapp-1.0-1.1"]
    assert (advisory.type, advisory.severity) == ("security", "Important")
    assert [ref.id for ref in advisory.references] == [CVE]
    assert "demo-ssl 1.0-1 -> 2.0-1: security FREIGHT-2026-0001" in advisory.description
    assert old.name not in {p.filename for c in advisory.collections for p in c.packages}

    listed = dnf(root, repo_file, "updateinfo", "list", "--security")
    assert listed.returncode == 0, listed.stderr
    assert "FREIGHT-container-webapp-1.0-1.1" in listed.stdout and "container-webapp-1.0-1.1.x86_64" in listed.stdout
    upgraded = dnf(root, repo_file, "upgrade", "--security")
    assert upgraded.returncode == 0, upgraded.stderr
    after = dnf(root, repo_file, "list", "--installed", "container-webapp")
    assert "1.0-1.1" in after.stdout, after.stdout
    # a second publish with nothing new keeps the advisory (it comes from the publish state)
    assert freight("publish", containers, "--sign-key", signer.fingerprint, env=signer.env).returncode == 0
    assert "FREIGHT-container-webapp-1.0-1.1" in {r.id for r in updateinfo.read_repo(containers)}


def test_outdated_of_a_files_only_derivative_answers_for_its_base(scenario: tuple[Path, Path, Path]) -> None:
    """A derivative of files only has no lock: right after it built, outdated answers for the base it runs on."""
    repo, manifest, _ = scenario
    folder = manifest.parent.parent / "webapp-prod"  # beside the base's folder, as in examples/
    folder.mkdir()
    (folder / "index.html").write_text("<h1>prod</h1>\n")
    derivative = write_manifest(folder, """\
        name: webapp-prod
        version: "1.0"
        summary: a derivative
        license: MIT
        base: webapp
        files: [{src: index.html, dest: /srv/www/index.html}]
        """)
    assert freight("build", derivative, "-o", folder / "out").returncode == 0
    (manifest.parent.parent / "webapp").symlink_to(manifest.parent.name)  # BASE/manifest.yaml beside it
    fix_demo_ssl(repo)
    result = freight("outdated", derivative)
    assert result.returncode == 100, result.stdout + result.stderr
    assert "no lock file" not in result.stderr
    assert f"container-webapp-prod ({derivative}): a derivative of files only, it runs on webapp; its base's packages: see" in result.stdout
    assert f"demo-ssl  1.0-1 -> 2.0-1  security (Important): {CVE}" in result.stdout
    # named together, the base is reported once; a base that cannot be found is said so, not an error
    both = json.loads(freight("outdated", "--json", derivative, manifest).stdout)
    assert [r["container"] for r in both] == ["container-webapp-prod", "container-webapp"]
    (manifest.parent.parent / "webapp").unlink()
    alone = freight("outdated", derivative)
    assert alone.returncode == 0, alone.stderr
    assert "name webapp's manifest too to check the packages it runs on" in alone.stdout


def changelog(rpm_file: Path) -> str:
    return subprocess.run(["rpm", "-qp", "--changelog", rpm_file], capture_output=True, text=True, check=True).stdout


def test_the_changelog_tells_each_release_with_the_cves_it_brought_in(scenario: tuple[Path, Path, Path]) -> None:
    """The lock's history becomes %changelog: `rpm -q --changelog | grep CVE` answers for a container."""
    import time

    repo, manifest, out = scenario
    lock_file = manifest.with_suffix(".lock")
    first = json.loads(lock_file.read_text())
    [entry] = first["history"]
    assert (entry["serial"], entry["evr"], entry["date"]) == (0, "1.0-1", first["source_date_epoch"])

    fix_demo_ssl(repo)
    rebuilt = freight("build", manifest, "-o", out, "--update-lock")
    assert rebuilt.returncode == 0, rebuilt.stderr
    written = json.loads(lock_file.read_text())
    assert [h["evr"] for h in written["history"]] == ["1.0-1", "1.0-1.1"]
    newest = written["history"][-1]
    assert newest["changes"] == ["demo-ssl 1.0-1 -> 2.0-1"] and newest["fixes"][0]["cves"] == [CVE]
    day = time.strftime("%a %b %d %Y", time.gmtime(newest["date"]))
    text = changelog(Path(rebuilt.last_line))
    assert text.startswith(f"* {day} freight - 1.0-1.1\n- demo-ssl 1.0-1 -> 2.0-1\n"), text
    assert f"- FREIGHT-2026-0001 (security, Important) for demo-ssl 2.0-1: {CVE}\n" in text, text
    assert text.rstrip().endswith("- 1.0-1\n- first lock: 3 packages"), text
    assert CVE in subprocess.run(["grep", CVE], input=text, capture_output=True, text=True).stdout

    # a rebuild of the same lock adds nothing; a new version adds its own entry, without advisories
    assert freight("build", manifest, "-o", out, "--force").returncode == 0
    assert len(json.loads(lock_file.read_text())["history"]) == 2
    manifest.write_text(manifest.read_text().replace('version: "1.0"', 'version: "1.1"') + "packager: Jane Doe <jane@example.com>\n")
    bumped = freight("build", manifest, "-o", out)
    assert bumped.returncode == 0, bumped.stderr
    text = changelog(Path(bumped.last_line))
    assert text.startswith("* ") and " Jane Doe <jane@example.com> - 1.1-1\n- packages unchanged\n\n" in text, text
    assert text.count(CVE) == 1  # in 1.0-1.1's entry only
    header = subprocess.run(["rpm", "-qp", "--qf", "%{PACKAGER}|%{VENDOR}", bumped.last_line], capture_output=True, text=True).stdout
    assert header == "Jane Doe <jane@example.com>|(none)"

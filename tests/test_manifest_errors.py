"""Bad manifests: each one gets its message (file, line, key, what was expected),
exit code 2, and leaves nothing behind (no lock, no RPM, no staging root)."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest
from conftest import freight

GOOD = """\
name: webapp
version: "1.0"
summary: demo web server
license: MIT
repos:
  - name: demo
    baseurl: file:repo
packages: [demo-www]
"""


def _replace(key: str, new: str) -> str:
    """GOOD with the line starting with KEY replaced by NEW (or dropped when NEW is empty)."""
    lines = [new if line.startswith(key) else line for line in GOOD.splitlines()]
    return "\n".join(line for line in lines if line) + "\n"


CASES = [
    # (id, manifest text, expected fragment of stderr)
    ("empty", "", "manifest.yaml:1: the manifest is empty"),
    ("not-a-mapping", "- a\n- b\n", "manifest.yaml:1: a manifest is a mapping"),
    ("bad-yaml", "name: [unclosed\n", "manifest.yaml:2: invalid YAML"),
    ("missing-name", _replace("name:", ""), "missing required key 'name' (a container name"),
    ("missing-packages", _replace("packages:", ""), "missing required key 'packages'"),
    ("bad-name-case", _replace("name:", "name: WebApp"), "manifest.yaml:1: name: expected a container name"),
    ("name-injection", _replace("name:", 'name: "web; rm -rf /"'), "manifest.yaml:1: name: expected a container name"),
    ("name-path", _replace("name:", "name: ../etc"), "manifest.yaml:1: name: expected a container name"),
    ("version-dash", _replace("version:", "version: 1.0-2"), "manifest.yaml:2: version: expected an RPM version"),
    ("version-macro", _replace("version:", 'version: "%{lua:os.exit()}"'), "manifest.yaml:2: version: expected an RPM version"),
    ("packager-macro", GOOD + "packager: '%{name} <x@example.com>'\n", "packager: expected who builds the container"),
    ("vendor-lines", GOOD + 'vendor: "a\\nb"\n', "vendor: expected the organisation that distributes the container"),
    ("release-space", GOOD + 'release: "1 2"\n', "release: expected an RPM release"),
    ("summary-macro", _replace("summary:", "summary: '%(id)'"), "manifest.yaml:3: summary: expected a one-line summary without '%'"),
    ("misspelt-key", GOOD.replace("packages:", "pakages:"), "manifest.yaml:8: pakages: unknown key 'pakages' (did you mean 'packages'?)"),
    ("misspelt-nested", GOOD.replace("    baseurl:", "    baseurl: file:repo\n    gpgchek: true\n    x:"), "repos[0].gpgchek: unknown key 'gpgchek' (did you mean 'gpgcheck'?)"),
    ("packages-not-list", _replace("packages:", "packages: demo-www"), "manifest.yaml:8: packages: expected a list"),
    ("packages-empty", _replace("packages:", "packages: []"), "packages: must not be empty"),
    ("package-injection", _replace("packages:", 'packages: ["demo-www; curl evil"]'), "packages[0]: expected a package name"),
    ("repos-missing-baseurl", GOOD.replace("    baseurl: file:repo\n", ""), "manifest.yaml:6: repos[0]: missing required key 'baseurl'"),
    ("repo-twice", GOOD.replace("packages:", "  - name: demo\n    baseurl: file:other\npackages:"), "repos[1].name: repository 'demo' is listed twice"),
    ("duplicate-key", GOOD + "name: other\n", "manifest.yaml:9: name: key given twice"),
    ("file-missing", GOOD + "files:\n  - src: nothere.conf\n    dest: /etc/x.conf\n", "files[0].src: no such file"),
    ("file-dest-escape", GOOD + "files:\n  - src: manifest.yaml\n    dest: /etc/../../x\n", "files[0].dest: expected an absolute path inside the container"),
    ("file-mode", GOOD + "files:\n  - src: manifest.yaml\n    dest: /etc/x\n    mode: 999\n", "files[0].mode: expected an octal mode"),
    ("boot-and-command", GOOD + "run:\n  boot: true\n  command: [/bin/sh]\n", "run.boot: 'boot: true' and 'command' exclude each other"),
    ("env-name", GOOD + "run:\n  environment:\n    BAD-NAME: x\n", "manifest.yaml:11: run.environment.BAD-NAME: expected an environment variable name"),
    ("memory-limit", GOOD + "run:\n  limits:\n    memory: lots\n", "manifest.yaml:11: run.limits.memory: expected a size such as 512M"),
    ("weak-deps-type", GOOD + "install_weak_deps: sometimes\n", "install_weak_deps: expected true or false"),
    ("own-base", GOOD + "base: webapp\n", "base: a container cannot derive from itself"),
    ("base-version-without-base", GOOD + "base_version: '>= 1.0'\n", "missing required key 'base' (the name of the container this one derives from"),
    ("bad-base-version", GOOD + "base: web\nbase_version: 'newest'\n", "base_version: expected a version constraint"),
    ("derivative-packages-without-repos", "name: site\nversion: '1'\nsummary: s\nlicense: MIT\nbase: webapp\npackages: [x]\n", "missing required key 'repos'"),
    ("idle-and-command", GOOD + "run:\n  idle: true\n  command: [/bin/sh]\n", "run.idle: 'idle: true' runs no command and boots nothing"),
    ("cpu-quota", GOOD + "run:\n  limits:\n    cpu_quota: '150'\n", "run.limits.cpu_quota: expected a share of one CPU such as 50% or 150%"),
    ("io-weight", GOOD + "run:\n  limits:\n    io_weight: 0\n", "run.limits.io_weight"),
    ("ports-on-host-network", GOOD + "run:\n  network: host\n  ports: ['8080:80']\n", "run.ports: publishing ports needs a network of its own"),
    ("port-clash-in-manifest", GOOD + "run:\n  ports: ['8080:80', 'tcp:8080:81']\n", "both take tcp port 8080 of the host"),
    ("port-number", GOOD + "run:\n  ports: ['70000:80']\n", "70000 is not a port number"),
    ("host-address-on-veth", GOOD + "run:\n  network: veth\n  ports: ['127.0.0.1:8080:80']\n", "needs network 'bridge'"),
]


@pytest.mark.parametrize("text,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_manifest_is_refused_cleanly(tmp_path: Path, text: str, expected: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    manifest = work / "manifest.yaml"
    manifest.write_text(text)
    cache = tmp_path / "cache"
    result = freight("build", manifest, "-o", tmp_path / "out", env={"FREIGHT_CACHE_DIR": str(cache)})
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr, result.stderr
    assert str(manifest) in result.stderr  # every message names the file
    assert sorted(os.listdir(work)) == ["manifest.yaml"]  # no lock
    assert not (tmp_path / "out").exists()
    stage = cache / "stage"
    assert not stage.exists() or not os.listdir(stage)


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(
        textwrap.dedent(
            """\
            name: Bad_Name
            version: 1-0
            summary: s
            license: MIT
            repos: [{name: demo, baseurl: file:repo}]
            packages: [a]
            colour: blue
            """
        )
    )
    result = freight("build", manifest)
    assert result.returncode == 2
    assert re.findall(r"manifest\.yaml:(\d+):", result.stderr) == ["1", "2", "7"], result.stderr


def test_unreadable_manifest(tmp_path: Path) -> None:
    result = freight("build", tmp_path / "missing.yaml")
    assert result.returncode == 2
    assert "missing.yaml: cannot read manifest: No such file or directory" in result.stderr


def test_version_keeps_its_text(tmp_path: Path) -> None:
    """YAML would read 1.10 as the float 1.1; an RPM version must stay as written."""
    from freight.manifest import load as m

    (tmp_path / "repo").mkdir()
    path = tmp_path / "manifest.yaml"
    path.write_text(_replace("version:", "version: 1.10") + "release: 02\nfiles:\n  - src: repo\n    dest: /srv\n    mode: 0755\n")
    loaded = m.load(path)
    assert (loaded.version, loaded.release) == ("1.10", "02")
    assert loaded.files[0].mode == 0o755
    assert loaded.repos[0].baseurl == (tmp_path / "repo").as_uri()


def test_the_published_schema_accepts_what_freight_builds_and_refuses_what_it_refuses(tmp_path: Path) -> None:
    """freight, `freight schema` used with a standard YAML loader (as editors and linters do), and the
    README agree on `version: 1.10` unquoted: freight builds 1.10, and the schema does not refuse it."""
    import json

    import jsonschema
    import yaml

    from freight.manifest import load as m

    schema = json.loads(freight("schema").stdout)
    (tmp_path / "repo").mkdir()
    unquoted = _replace("version:", "version: 1.10") + "release: 02\nreleasever: 39\nfiles:\n  - src: repo\n    dest: /srv\n    mode: 0755\n"
    path = tmp_path / "manifest.yaml"
    path.write_text(unquoted)
    assert m.load(path).version == "1.10"
    jsonschema.validate(yaml.safe_load(unquoted), schema)  # raises if a linter would refuse it
    for bad in ("version: 1-0", "version: [1]"):  # refused by both
        path.write_text(_replace("version:", bad))
        with pytest.raises(m.ManifestError):
            m.load(path)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(yaml.safe_load(_replace("version:", bad)), schema)
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "YAML reads 1.10 as 1.1" not in readme  # freight does not; the README must say what freight does
    assert "version: 1.10" in readme and "stays 1.10" in readme


@pytest.mark.parametrize("value", ['"no"', '"yes"', "no", "yes", "false", "pick", "identity"])
def test_private_users_takes_what_systemd_nspawn_takes(value: str, tmp_path: Path) -> None:
    from freight.manifest import load as m

    path = tmp_path / "manifest.yaml"
    path.write_text(GOOD + f"run:\n  private_users: {value}\n")
    assert m.load(path).data["run"]["private_users"] in (False, True, "no", "yes", "pick", "identity")


def test_schema_command_prints_json_schema() -> None:
    import json

    result = freight("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"].endswith("2020-12/schema")
    assert set(schema["required"]) == {"name", "version", "summary", "license"}
    # repos and packages are required unless the manifest derives from a base
    assert {"if": {"not": {"required": ["base"]}}, "then": {"required": ["repos", "packages"]}} in schema["allOf"]
    assert "autostart" in schema["properties"]["run"]["properties"]

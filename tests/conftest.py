"""Shared fixtures: real repositories built from specs, real container builds.

Every fixture here drives the real tools (rpmbuild, createrepo_c, dnf); the
expensive ones are session-scoped so the suite builds each thing once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from freight.testhost import TestHost

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One freight cache for the whole run, never the user's own."""
    os.environ["FREIGHT_CACHE_DIR"] = str(tmp_path_factory.mktemp("freight-cache"))


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        lines = self.stdout.strip().splitlines()
        return lines[-1] if lines else ""


def freight(*args: str | os.PathLike[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
    """Run the real `freight` command line in a subprocess, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "freight", *map(str, args)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def demo_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo repository (demo-base, demo-www 1.0) from specs/demo, plus the test packages in tests/specs."""
    from freight import demorepo

    out = tmp_path_factory.mktemp("demo-repo")
    demorepo.make_repo(out, [*demorepo.DEMO_SPECS.glob("*.spec"), *(ROOT / "tests/specs").glob("*.spec")])
    return out


def write_manifest(folder: Path, text: str, name: str = "manifest.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def webapp_manifest(folder: Path, repo: Path, **extra: str) -> Path:
    """A manifest for the demo web server against REPO (extra top-level YAML lines appended)."""
    body = f"""\
        name: webapp
        version: "1.0"
        summary: demo web server
        license: MIT
        repos:
          - name: demo
            baseurl: {repo.as_uri()}
        packages: [demo-www]
        run:
          command: [/usr/bin/httpd, -f, -p, "8080", -h, /srv/www]
        """
    text = textwrap.dedent(body) + "".join(f"{k}: {v}\n" for k, v in extra.items())
    return write_manifest(folder, text)


@pytest.fixture(scope="session")
def built_webapp(demo_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """container-webapp built once by the real `freight build`; the path of the RPM."""
    work = tmp_path_factory.mktemp("webapp")
    manifest = webapp_manifest(work, demo_repo)
    result = freight("build", manifest, "-o", work / "out")
    assert result.returncode == 0, result.stderr
    return Path(result.last_line)


def copy_repo(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


DBPATH = "/usr/lib/sysimage/rpm"
# Files rpm and sqlite create whenever a database is opened, even to read it.
DB_RUNTIME = {f"{DBPATH[1:]}/{n}" for n in (".rpm.lock", "rpmdb.sqlite-shm", "rpmdb.sqlite-wal")}


def tree(root: Path) -> dict[str, tuple]:
    """Everything that defines a tree's content: type, mode, owner, digest or link target."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = os.lstat(path)
            rel = str(path.relative_to(root))
            if rel in DB_RUNTIME:
                continue
            if stat.S_ISLNK(st.st_mode):
                what = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                what = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                what = None
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, what)
    return out


def gpg_key(path: Path) -> Path:
    """A fresh signing key in a keyring of its own beside PATH; its public half exported to PATH."""
    gnupg = path.parent / "gnupg"
    gnupg.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(gnupg)}
    subprocess.run(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "Test <t@example.invalid>", "rsa2048", "sign", "never"],
        check=True, env=env, capture_output=True,
    )
    path.write_bytes(subprocess.run(["gpg", "--armor", "--export"], check=True, env=env, capture_output=True).stdout)
    return path


# --- the booted test host (freight.testhost) ----------------------------------

HOST_SHARE = "/srv/freight-test"  # where the host sees `host_share`, read-only
HOST_RPMS = "freight-rpms"  # host_share's repository of freight, freight-host, debian-host-provides


@pytest.fixture(scope="session")
def host_share(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder the test host sees at HOST_SHARE (read-only): put repositories here for it."""
    return tmp_path_factory.mktemp("host-share")


@pytest.fixture(scope="session")
def test_host(host_share: Path) -> Iterator[TestHost]:
    """One booted Debian host with systemd for the whole session (see freight.testhost).

    Tests share it, so each one cleans up what it starts in it (machines,
    pools). Booting needs root; the debootstrapped root is cached in
    /var/cache/freight-testhost, so only the first run ever pays for it.
    """
    from freight.testhost import Bind, TestHost

    if os.geteuid() != 0:
        pytest.skip("booting the test host needs root")
    host = TestHost.boot(binds=[Bind(host_share, HOST_SHARE)])
    try:
        yield host
    finally:
        host.shutdown()


@pytest.fixture(scope="session")
def freight_rpms(host_share: Path) -> list[Path]:
    """freight, freight-host and debian-host-provides built from this tree, as a repository in host_share."""
    from freight import dist

    return dist.host_repo(host_share / HOST_RPMS)


@pytest.fixture(scope="session")
def freight_host(test_host: TestHost, freight_rpms: list[Path]) -> TestHost:
    """The test host with freight and freight-host installed by dnf from freight_rpms."""
    from freight.testhost.provision import install_freight

    install_freight(test_host, test_host.inside(freight_rpms[0].parent))
    return test_host

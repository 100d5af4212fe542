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


@pytest.fixture(scope="session", autouse=True)
def _no_gpg_agents_left(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """gpg (run by the tests, and by dnf importing keys into scratch roots) starts an agent per
    keyring; stop every one whose keyring is under this run's temporary folder."""
    yield
    base = str(tmp_path_factory.getbasetemp())
    subprocess.run(["pkill", "-f", f"gpg-agent --homedir {base}"], check=False)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def last_line(self) -> str:
        lines = self.stdout.strip().splitlines()
        return lines[-1] if lines else ""


def freight(
    *args: str | os.PathLike[str], cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float | None = None
) -> Result:
    """Run the real `freight` command line in a subprocess, as a user would (TIMEOUT: where a defect would hang it)."""
    proc = subprocess.run(
        [sys.executable, "-m", "freight", *map(str, args)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def demo_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo repository (demo-base, demo-www 1.0) from specs/demo, plus the test packages in tests/specs."""
    from freight.dist import demorepo

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


def as_the_hook(root: Path, name: str, tree_root: Path) -> None:
    """What freight-host-hook does once rpm wrote container-NAME's files below ROOT (a scratch host that
    runs no scriptlets): TREE_ROOT (the image, or an instance with NAME's overlay laid over) gets the
    owners the package recorded, by TREE_ROOT's own users."""
    from freight.model.owners import RecordedOwners

    RecordedOwners.load(root / "usr/share/freight/containers" / name).apply(tree_root)


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
    from freight.dist import rpms as dist

    return dist.host_repo(host_share / HOST_RPMS)


@pytest.fixture(scope="session")
def freight_host(test_host: TestHost, freight_rpms: list[Path]) -> TestHost:
    """The test host with freight and freight-host installed by dnf from freight_rpms."""
    from freight.testhost.provision import install_freight

    install_freight(test_host, test_host.inside(freight_rpms[0].parent))
    return test_host


# --- keys, signed packages, repositories (signing and publishing tests) ------

# Not in tests/specs itself: demo_repo builds every spec there into the demo repository.
SIGN_SPECS = ROOT / "tests" / "specs" / "sign"
_GNUPG_HOMES: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _isolated_keyring(tmp_path_factory: pytest.TempPathFactory):
    """An empty keyring of the run's own, never the user's; gpg-agents stopped at the end."""
    for var in ("FREIGHT_SIGN_KEY", "FREIGHT_PASSPHRASE_FILE", "GNUPGHOME"):
        os.environ.pop(var, None)
    os.environ["FREIGHT_GNUPGHOME"] = str(gnupg_home(tmp_path_factory.mktemp("keyring-empty")))
    yield
    for home in _GNUPG_HOMES:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], capture_output=True)


def gnupg_home(folder: Path) -> Path:
    """A fresh GnuPG home under FOLDER (a short path: gpg-agent's socket lives in it)."""
    folder.mkdir(parents=True, exist_ok=True)
    home = folder / "gnupg"
    home.mkdir(mode=0o700)
    _GNUPG_HOMES.append(home)
    return home


@dataclass
class Signer:
    home: Path
    fingerprint: str
    pubkey: Path  # the armored public key, as `freight key export` writes it

    @property
    def env(self) -> dict[str, str]:
        return {"FREIGHT_GNUPGHOME": str(self.home)}


def make_signer(folder: Path, email: str, algorithm: str = "ed25519", passphrase_file: Path | None = None) -> Signer:
    """A keyring with one key made by the real `freight key generate`."""
    home = gnupg_home(folder)
    extra = ["--passphrase-file", passphrase_file] if passphrase_file else []
    gen = freight("key", "generate", "--name", "freight tests", "--email", email, "--algorithm", algorithm, *extra,
                  env={"FREIGHT_GNUPGHOME": str(home)})
    assert gen.returncode == 0, gen.stderr
    pubkey = folder / "RPM-GPG-KEY-test"
    exp = freight("key", "export", gen.last_line, "-o", pubkey, env={"FREIGHT_GNUPGHOME": str(home)})
    assert exp.returncode == 0, exp.stderr
    return Signer(home, gen.last_line, pubkey)


@pytest.fixture(scope="session")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Signer:
    """The tests' trusted signing key (ed25519: rpm 4.18 verifies it, and it is made in milliseconds)."""
    return make_signer(tmp_path_factory.mktemp("signer"), "signer@example.com")


@pytest.fixture(scope="session")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Signer:
    """A key nobody trusts: its keyring is not the one verification looks at."""
    return make_signer(tmp_path_factory.mktemp("stranger"), "stranger@example.com")


@pytest.fixture(scope="session")
def signed_webapp(built_webapp: Path, signer: Signer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """container-webapp signed by `signer` with the real `freight sign` (a copy; built_webapp stays unsigned)."""
    rpm = tmp_path_factory.mktemp("signed-webapp") / built_webapp.name
    shutil.copy2(built_webapp, rpm)
    result = freight("sign", "--key", signer.fingerprint, rpm, env=signer.env)
    assert result.returncode == 0, result.stderr
    return rpm


@pytest.fixture(scope="session")
def bulk_rpms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 small packages (bulk-001 … bulk-200) from one rpmbuild run; copy them, do not publish here."""
    from freight.dist import demorepo

    out = tmp_path_factory.mktemp("bulk")
    demorepo.build_rpm(SIGN_SPECS / "bulk.spec", out, {"count": "200"})
    assert len(list(out.glob("bulk-*.rpm"))) == 200
    return out


def publish_signed_build(manifest: Path, repo: Path, signer: Signer, update_lock: bool = True) -> str:
    """Rebuild MANIFEST (with --update-lock, unless it is a derivative of files only, which has no lock) into REPO,
    signed, and publish REPO signed; the RPM's VERSION-RELEASE."""
    built = freight("build", manifest, "-o", repo, "--sign", signer.fingerprint, *(["--update-lock"] if update_lock else []), env=signer.env)
    assert built.returncode == 0, built.stderr
    published = freight("publish", repo, "--sign-key", signer.fingerprint, env=signer.env)
    assert published.returncode == 0, published.stderr
    query = subprocess.run(["rpm", "-qp", "--qf", "%{VERSION}-%{RELEASE}", built.last_line], capture_output=True, text=True, check=True)
    return query.stdout


def rpm_from_spec(spec: str, outdir: Path, **defines: str) -> Path:
    """rpmbuild one of tests/specs/sign into OUTDIR."""
    from freight.dist import demorepo

    return demorepo.build_rpm(SIGN_SPECS / spec, outdir, defines)


def dnf(root: Path, repo_file_text: str, *args: str) -> subprocess.CompletedProcess:
    """The real dnf command line against one .repo file only, installing into the scratch ROOT.

    Debian's rpm keeps its database in ~/.rpmdb unless `_dbpath` is defined: a
    private HOME with a .rpmmacros puts it where a host's would be.
    """
    work = root.parent / f"{root.name}.dnf"
    (work / "repos.d").mkdir(parents=True, exist_ok=True)
    (work / "home").mkdir(exist_ok=True)
    (work / "home" / ".rpmmacros").write_text("%_dbpath /usr/lib/sysimage/rpm\n")
    (work / "repos.d" / "test.repo").write_text(repo_file_text)
    argv = [
        "dnf", "-y", "--installroot", str(root), "--releasever", "1",
        "--setopt", f"reposdir={work / 'repos.d'}", "--setopt", f"cachedir={work / 'cache'}",
        "--setopt", "metadata_expire=0", "--setopt", "install_weak_deps=False", "--disableplugin=*",
        # A scratch root has no freight-host hook (nor a shell) for container scriptlets to call.
        "--setopt", "tsflags=noscripts",
        *args,
    ]
    return subprocess.run(argv, env={**os.environ, "HOME": str(work / "home"), "RPM_FORCE_DEBIAN": "1"},
                          capture_output=True, text=True)


def signed_repository(folder: Path, signer: Signer, container: Path, *publish_args: str) -> str:
    """Publish CONTAINER (as it is) and the freight-host stand-in into FOLDER; return the host's .repo file."""
    folder.mkdir(parents=True)
    shutil.copy2(container, folder / container.name)
    stub = rpm_from_spec("freight-host-stub.spec", folder)
    assert freight("sign", "--key", signer.fingerprint, stub, env=signer.env).returncode == 0
    result = freight("publish", folder, "--sign-key", signer.fingerprint, *publish_args, env=signer.env)
    assert result.returncode == 0, result.stderr
    repo_file = freight("repo-file", "--name", "freight-test", "--baseurl", folder.as_uri())
    assert repo_file.returncode == 0, repo_file.stderr
    assert "gpgcheck=1\nrepo_gpgcheck=1\n" in repo_file.stdout
    return repo_file.stdout


def zypper(root: Path, repo_file_text: str, *args: str) -> subprocess.CompletedProcess:
    """The real zypper command line, non-interactive, with one .repo file, on the scratch ROOT.

    As with dnf, a private HOME's .rpmmacros puts the root's rpm database
    (where zypper keeps the keys it trusts) where a host's would be. zypper
    reads only ROOT's configuration (`--root`), so nothing of this machine's
    leaks in; file:// repositories mean no traffic at all.
    """
    work = root.parent / f"{root.name}.zypper"
    (work / "home").mkdir(parents=True, exist_ok=True)
    (work / "home" / ".rpmmacros").write_text("%_dbpath /usr/lib/sysimage/rpm\n")
    (root / "etc/zypp/repos.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/zypp/repos.d/test.repo").write_text(repo_file_text)
    return subprocess.run(["zypper", "--root", str(root), "--non-interactive", *args],
                          env={**os.environ, "HOME": str(work / "home"), "RPM_FORCE_DEBIAN": "1"},
                          capture_output=True, text=True)


# The host side's fixtures (a zfs-fuse pool, hosts in temporary folders).
pytest_plugins = ["hostfixtures", "rpmhost", "e2ehost"]

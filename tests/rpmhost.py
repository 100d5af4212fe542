"""A temporary host with its own rpm database, and container RPMs built by the real `freight build`.

Shared by the hook and instance tests: rpm installs, upgrades and erases the
packages with their real scriptlets, relocated (`--badreloc`) into the host,
whose host.conf points every location there.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, freight, write_manifest
from hostfixtures import FakeHost

from freight.common.run import run
from freight.host.registry import Registry

IMAGES = "/var/lib/freight/images"
CONTAINERS = "/usr/share/freight/containers"
OVERLAYS = "/var/lib/freight/overlays"


def webapp_manifest_at(folder: Path, repo: Path, version: str, page: str, *, old_file: bool, state: list[str]) -> Path:
    (folder / "www").mkdir(parents=True)
    (folder / "www/page.html").write_text(page)
    (folder / "seed").mkdir()
    (folder / "seed/seed.txt").write_text("seeded by the image\n")
    files = [("www/page.html", "/srv/www/page.html"), ("seed", "/srv/data")]
    if old_file:
        (folder / "www/old.html").write_text("only in 1.0\n")
        files.append(("www/old.html", "/srv/www/old.html"))
    listing = "".join(f"  - src: {src}\n    dest: {dest}\n" for src, dest in files)
    return write_manifest(
        folder,
        f"""\
name: webapp
version: "{version}"
summary: demo web server
license: MIT
repos:
  - name: demo
    baseurl: {repo.as_uri()}
packages: [demo-www, demo-private]
files:
{listing}run:
  command: [/usr/bin/httpd, -f, -p, "8080", -h, /srv/www]
  network: host
  state: [{", ".join(state)}]
  autostart: true
  limits: {{memory: 64M}}
""",
    )


@pytest.fixture(scope="session")
def webapp_rpms(demo_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """container-webapp 1.0, 1.1 and 1.2, built by `freight build`: pages differ, 1.0 has a file the
    others drop, 1.1 adds a state path."""
    out: dict[str, Path] = {}
    for version, old, state in (("1.0", True, ["/srv/data"]), ("1.1", False, ["/srv/data", "/var/lib/extra"]), ("1.2", False, ["/srv/data", "/var/lib/extra"])):
        work = tmp_path_factory.mktemp(f"webapp-{version}")
        manifest = webapp_manifest_at(work, demo_repo, version, f"page {version}\n", old_file=old, state=state)
        result = freight("build", manifest, "-o", work / "out")
        assert result.returncode == 0, result.stderr
        out[version] = Path(result.last_line)
    return out


@dataclass
class RpmHost:
    """A FakeHost with an rpm database, and rpm run the way dnf would, scriptlets and all."""

    host: FakeHost
    db: Path

    @classmethod
    def make(cls, host: FakeHost, db: Path) -> RpmHost:
        hook = host.top / "bin/freight-host-hook"
        hook.parent.mkdir(parents=True, exist_ok=True)
        hook.write_text(f'#!/bin/sh\nPYTHONPATH={ROOT} exec /usr/bin/python3 -m freight.host.hook "$@"\n')
        hook.chmod(0o755)
        home = host.top.parent / "rpm-home"  # rpm's configuration names this database, for the hook's reads too
        home.mkdir(exist_ok=True)
        (home / ".rpmmacros").write_text(f"%_dbpath {db}\n")
        return cls(host, db)

    @property
    def env(self) -> dict[str, str]:
        """What rpm, the hook and freight's host commands run with here: this host's config and database."""
        return {
            "RPM_FORCE_DEBIAN": "1", "FREIGHT_HOST_CONF": str(self.host.conf), "SYSTEMD_OFFLINE": "1",
            "HOME": str(self.host.top.parent / "rpm-home"),
        }

    def rpm(self, *args: str | Path) -> subprocess.CompletedProcess:
        nodeps = ["--nodeps"] if args[0] in ("-i", "-U", "-e") else []  # freight-host is not in this database
        return run(
            [
                "rpm", "--dbpath", self.db, *nodeps,
                "--define", f"_install_script_path {self.host.top}/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                *args,
            ],
            env=self.env,
            check=False,
        )

    def put(self, mode: str, package: Path, *extra: str) -> subprocess.CompletedProcess:
        top = self.host.top
        return self.rpm(
            mode, "--badreloc",
            "--relocate", f"{IMAGES}={top}/images",
            "--relocate", f"{CONTAINERS}={top}/containers",
            "--relocate", f"{OVERLAYS}={top}/overlays",
            *extra, package,
        )

    def installed(self) -> list[str]:
        proc = self.rpm("-qa", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}\n")
        return sorted(proc.stdout.split())

    def hook(self, *args: str) -> subprocess.CompletedProcess:
        return run([self.host.top / "bin/freight-host-hook", *args], env=self.env, check=False)


@pytest.fixture
def rpm_host(fake_host: FakeHost, tmp_path: Path) -> RpmHost:
    return RpmHost.make(fake_host, tmp_path / "rpmdb")


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stderr


def registry(h: RpmHost) -> Registry:
    return Registry(h.host.cfg.registry_dir)


# Left on purpose: machines.target enabled, as `machinectl enable` leaves it (it is systemd's,
# and may carry machines freight does not know).
KEPT = {"units/multi-user.target.wants/machines.target"}


def leftovers(h: RpmHost) -> list[str]:
    """Whatever the host holds beyond what is KEPT and the empty folders of the locations themselves."""
    locations = {"images", "machines", "lib", "nspawn", "units", "units/multi-user.target.wants", "containers", "overlays", "protected", "bin"}
    return [p for p in h.host.files() if p not in KEPT and p not in locations]

"""The test host's root filesystem: Debian made by debootstrap, kept in a cache.

debootstrap takes over a minute, so its result is kept under a cache folder,
keyed by everything that decides what it contains (suite, mirror,
architecture, package list) and rebuilt only when one of those changes. Boots
never run in the cached tree: each gets its own copy (`copy_root`), so a test
may change anything in its host without touching the next run's. What the
tests need on top of the packages (rpm's database path, the zfs-fuse unit
fitted to this sandbox, …) is applied to that copy by `freight.testhost.setup`,
so changing it needs no new debootstrap.

The cache holds `debian-SUITE-ARCH-KEY/` folders (each with `root/` and the
`recipe.json` it was made from) and a lock file: building takes it
exclusively, copying shares it, so a build never removes a tree a copy is
reading.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from freight.common import log as flog
from freight.common import progress
from freight.common.errors import FreightError
from freight.common.run import CommandError, run

log = logging.getLogger("freight.testhost.image")

SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))

# What a freight host needs (systemd, dbus, rpm, dnf, pystemd, zfs-fuse) and
# what freight itself imports or runs, so that every capability the
# debian-host-provides package claims is really there (see
# specs/host/debian-host-provides.spec). busybox-static makes tiny nested
# container roots; iproute2 shows the addresses of nested machines; catatonit is
# the init of a machine with no command (`run: {idle: true}`); python3-pyroute2,
# nftables and dnsmasq-base are what bridged networks use (freight.host.network).
PACKAGES = (
    "systemd", "systemd-sysv", "systemd-container", "dbus",
    "rpm", "dnf", "python3-dnf", "python3-rpm", "python3-pystemd",
    "python3-jinja2", "python3-yaml", "python3-jsonschema", "python3-rich",
    "createrepo-c", "python3-createrepo-c", "gnupg", "file",
    "zfs-fuse", "curl", "iproute2", "busybox-static", "catatonit",
    "python3-pyroute2", "nftables", "dnsmasq-base",
)


def default_mirror() -> str:
    """`$FREIGHT_TESTHOST_MIRROR`, else the mirror apt uses here for SUITE, else deb.debian.org."""
    if env := os.environ.get("FREIGHT_TESTHOST_MIRROR"):
        return env
    for path in APT_SOURCES:
        try:
            text = path.read_text()
        except OSError:
            continue
        if found := (_deb822_mirror(text) if path.suffix == ".sources" else _one_line_mirror(text)):
            return found
    return DEFAULT_MIRROR


def _deb822_mirror(text: str) -> str | None:
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(
            (key.strip().lower(), value.split())
            for key, _, value in (line.partition(":") for line in stanza.splitlines() if not line.startswith("#"))
            if value
        )
        if "deb" in fields.get("types", []) and SUITE in fields.get("suites", []) and fields.get("uris"):
            return fields["uris"][0].rstrip("/")
    return None


def _one_line_mirror(text: str) -> str | None:
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", "", line).split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
            return words[1].rstrip("/")
    return None


def dpkg_arch() -> str:
    return run(["dpkg", "--print-architecture"]).stdout.strip()


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the content of a debootstrapped root."""

    suite: str = SUITE
    mirror: str = field(default_factory=default_mirror)
    arch: str = field(default_factory=dpkg_arch)
    packages: tuple[str, ...] = PACKAGES

    @property
    def key(self) -> str:
        data = {**asdict(self), "packages": sorted(set(self.packages))}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def folder_name(self) -> str:
        return f"debian-{self.suite}-{self.arch}-{self.key}"


def cache_dir() -> Path:
    """`$FREIGHT_TESTHOST_CACHE`, else /var/cache/freight-testhost (the trees are root's: debootstrap needs root)."""
    return Path(os.environ.get("FREIGHT_TESTHOST_CACHE") or "/var/cache/freight-testhost")


@contextmanager
def locked(cache: Path, exclusive: bool) -> Iterator[None]:
    """Hold the cache's lock: exclusively to build or prune, shared to copy."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield


def ensure_image(recipe: Recipe | None = None, cache: Path | None = None) -> Path:
    """The cached root for RECIPE, made by debootstrap first if the cache lacks it."""
    recipe = recipe or Recipe()
    cache = cache or cache_dir()
    final = cache / recipe.folder_name
    if (final / "recipe.json").exists():
        return final / "root"
    with locked(cache, exclusive=True):
        if not (final / "recipe.json").exists():  # another run may have built it while we waited
            _build(recipe, cache, final)
            _prune(cache, keep=final)
    return final / "root"


def _build(recipe: Recipe, cache: Path, final: Path) -> None:
    work = cache / f".build-{recipe.key}"
    shutil.rmtree(work, ignore_errors=True)  # a build that died; we hold the lock, so nobody else's
    root = work / "root"
    flog.step("Making the test host's Debian %s root with debootstrap (once; cached in %s)", recipe.suite, cache)
    start = time.monotonic()
    try:
        with progress.spinner(f"debootstrap {recipe.suite} from {recipe.mirror}"):
            run([
                "debootstrap", "--variant=minbase", f"--arch={recipe.arch}", "--components=main",
                "--include=" + ",".join(sorted(set(recipe.packages))),
                recipe.suite, root, recipe.mirror,
            ])
        # The downloaded .debs and package lists are a third of the tree and no boot needs them.
        for leftover in (root / "var/cache/apt/archives").glob("*.deb"):
            leftover.unlink()
        for leftover in (root / "var/lib/apt/lists").glob("*_*"):
            leftover.unlink()
        (work / "recipe.json").write_text(json.dumps({**asdict(recipe), "built": time.time()}, indent=2) + "\n")
        os.rename(work, final)
    except CommandError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise FreightError(f"debootstrap could not make the test host's root from {recipe.mirror}:\n{exc.stderr[-3000:]}") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("  debootstrap took %.0f s", time.monotonic() - start)


KEEP_RECENT = 2 * 24 * 3600  # seconds: branches with other package lists share the cache


def _prune(cache: Path, keep: Path) -> None:
    """Remove the trees of older recipes: a stale image is 450 MB nobody will boot again.

    A tree built in the last two days stays: another checkout with another package list
    (a branch that adds one) may be booting it, and would have to debootstrap it again."""
    for old in cache.glob("debian-*"):
        try:
            recent = time.time() - old.stat().st_mtime < KEEP_RECENT
        except OSError:
            continue
        if old != keep and old.is_dir() and not recent:
            log.info("  removing the outdated test host root %s", old)
            shutil.rmtree(old, ignore_errors=True)


def copy_root(image: Path, dest: Path) -> float:
    """Copy the cached IMAGE to DEST for one boot (reflinks where the filesystem has them); return seconds taken.

    `cp -a` keeps what a root filesystem needs: owners, modes, hard links,
    device nodes and extended attributes (file capabilities).
    """
    start = time.monotonic()
    with locked(image.parent.parent, exclusive=False):
        run(["cp", "-a", "--reflink=auto", image, dest])
    return time.monotonic() - start

"""The work the figures measure: freight's commands and their floors, on one bench repository.

A `Workload` is set up once per run (a manifest for every package of the
repository, a first build that resolves the lock and fills the caches) and
measures each pair of commands lazily, so figures that share measurements
(build time, no-op rebuild, memory) run the expensive builds once.
Every repetition runs freight and its floor back to back, so a burst of load
from other work on the machine hits both sides.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from bench import repogen
from bench.measure import Sample, shell, timed, timed_call
from bench.repogen import ROOT, Params, Repo, write_config_files
from freight.commands.common import SIGN_KEY_ENV
from freight.common import log as flog
from freight.manifest import lock
from freight.model.paths import RPM_DBPATH

NAME = "bench"
IMAGE = f"var/lib/freight/images/{NAME}"
META = f"usr/share/freight/containers/{NAME}"
SMALL_IMAGE_BYTES = 10_000_000  # figure 5: "a 300 MB image against a 10 MB one"


@dataclass
class Pairs:
    """Repeated measurements of freight and of its floor, in the order they ran."""

    freight: list[Sample] = field(default_factory=list)
    floor: list[Sample] = field(default_factory=list)
    floor_parts: dict[str, list[float]] = field(default_factory=dict)  # seconds of each step of a two-step floor


@dataclass
class PublishSetup:
    folder: Path  # published, without the container
    floor: Path  # the same packages and the container, for createrepo_c
    argv: list[str]  # freight publish FOLDER
    env: dict[str, str]
    added: Path  # where the container goes in FOLDER


@dataclass
class Workload:
    repo: Repo
    work: Path
    reps: int
    publish_repo: Params  # the shape of the repository figure 4 publishes into
    cache: Path  # where generated repositories are kept
    extras: dict[str, float] = field(default_factory=dict)  # measurements that are no figure, for the JSON

    # --- paths and commands --------------------------------------------------

    @property
    def manifest(self) -> Path:
        return self.work / "container" / "manifest.yaml"

    @property
    def outdir(self) -> Path:
        return self.work / "out"

    @property
    def rpm(self) -> Path:
        return next(self.outdir.glob(f"container-{NAME}-*.rpm"))

    def freight_env(self) -> dict[str, str]:
        """This tree's freight, with a cache of its own (kept for the whole run, as on a build machine)."""
        return {"FREIGHT_CACHE_DIR": str(self.work / "freight-cache"), "PYTHONPATH": str(ROOT)}

    def freight_build(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "freight", "build", "-q", str(self.manifest), "-o", str(self.outdir), *extra]

    def locked_nevras(self) -> list[str]:
        the_lock = lock.read(self.manifest.with_suffix(".lock"))
        assert the_lock is not None, "the first build writes the lock"
        return [p.nevra for p in the_lock.packages]

    def dnf_floor(self, root: Path) -> list[str]:
        """Plain `dnf --installroot` of the locked set: the host's dnf CLI, configured from nothing."""
        conf = self.work / "floor" / "dnf.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.touch()
        return [
            "dnf", "-y", "-q", "--noplugins", f"--config={conf}", f"--installroot={root}",
            "--setopt=reposdir=", "--setopt=varsdir=", f"--setopt=cachedir={self.work / 'floor' / 'cache'}",
            "--setopt=keepcache=True", "--setopt=install_weak_deps=False", "--nogpgcheck", "--releasever=1",
            f"--repofrompath={NAME},{self.repo.path.as_uri()}", f"--repo={NAME}",
            "install", *self.locked_nevras(),
        ]

    def floor_env(self) -> dict[str, str]:
        """The same rpm database location freight gives its staging roots (see freight.build.stage)."""
        home = self.work / "floor" / "home"
        home.mkdir(parents=True, exist_ok=True)
        (home / ".rpmmacros").write_text(f"%_dbpath {RPM_DBPATH}\n")
        return {"HOME": str(home)}

    # --- setup -----------------------------------------------------------------

    @cached_property
    def ready(self) -> bool:
        """Write the manifest and run the first build (resolves the lock, fills the caches); not a figure."""
        self.manifest.parent.mkdir(parents=True)
        self.manifest.write_text(
            f"name: {NAME}\nversion: \"1.0\"\nsummary: every package of the bench repository\nlicense: MIT\n"
            f"repos:\n  - name: {NAME}\n    baseurl: {self.repo.path.as_uri()}\n"
            f"packages: [{', '.join(self.repo.packages)}]\n"
        )
        flog.step("First build (resolves the lock, fills freight's cache)")
        self.extras["first_build_s"] = timed(self.freight_build(), env=self.freight_env()).seconds
        flog.step("First floor run (fills dnf's cache)")
        root = self.work / "floor" / "root"
        self.extras["first_floor_dnf_s"] = timed(self.dnf_floor(root), env=self.floor_env()).seconds
        shutil.rmtree(root)
        return True

    # --- the measured pairs ------------------------------------------------------

    @cached_property
    def builds(self) -> Pairs:
        """`freight build --force` against `dnf --installroot` + `tar | zstd -T0`, REPS times each."""
        assert self.ready
        pairs = Pairs()
        root, tarball = self.work / "floor" / "root", self.work / "floor" / "root.tar.zst"
        for rep in range(self.reps):
            flog.step("Build %d/%d: freight, then the floor", rep + 1, self.reps)
            pairs.freight.append(timed(self.freight_build("--force"), env=self.freight_env()))
            dnf = timed(self.dnf_floor(root), env=self.floor_env())
            pack = timed(shell(f"tar -C {shlex.quote(str(root))} -cf - . | zstd -T0 -q -f -o {shlex.quote(str(tarball))}"))
            pairs.floor.append(dnf + pack)
            pairs.floor_parts.setdefault("dnf", []).append(dnf.seconds)
            pairs.floor_parts.setdefault("tar | zstd", []).append(pack.seconds)
            shutil.rmtree(root)
        return pairs

    @cached_property
    def noops(self) -> list[Sample]:
        """`freight build` with nothing changed since the last build."""
        assert self.builds.freight
        flog.step("No-op rebuilds")
        return [timed(self.freight_build(), env=self.freight_env()) for _ in range(max(self.reps, 3))]

    @cached_property
    def installs(self) -> Pairs:
        """`rpm -i` of the container RPM into an empty root against `tar -x` of the same tree from .tar.zst."""
        assert self.builds.freight
        base = self.work / "install"
        tarball = base / "image.tar.zst"
        reference = base / "reference"
        rpm_i = self._rpm_install(reference)
        timed(rpm_i, env={"RPM_FORCE_DEBIAN": "1"})
        q = shlex.quote
        timed(shell(f"tar -C {q(str(reference))} -cf - {IMAGE} {META} | zstd -T0 -q -f -o {q(str(tarball))}"))
        shutil.rmtree(reference)
        pairs = Pairs()
        for rep in range(self.reps):
            flog.step("Install %d/%d: rpm -i, then tar -x", rep + 1, self.reps)
            target = base / "rpm-root"
            pairs.freight.append(timed(self._rpm_install(target), env={"RPM_FORCE_DEBIAN": "1"}))
            shutil.rmtree(target)
            target = base / "tar-root"
            target.mkdir(parents=True)
            pairs.floor.append(timed(shell(f"zstd -dc -T0 {q(str(tarball))} | tar -x -C {q(str(target))}")))
            shutil.rmtree(target)
        return pairs

    @cached_property
    def publish_setup(self) -> PublishSetup:
        """A folder of the publish repository's packages, published once, and a copy with the container for the floor."""
        assert self.builds.freight  # the container RPM to add
        packages = repogen.ensure(self.publish_repo, self.cache)
        base = self.work / "publish"
        setup = PublishSetup(
            folder=base / "repo",
            floor=base / "floor",
            argv=[sys.executable, "-m", "freight", "publish", "-q", str(base / "repo")],
            env={**self.freight_env(), SIGN_KEY_ENV: ""},  # unsigned, whatever this machine's default key
            added=base / "repo" / self.rpm.name,
        )
        setup.folder.mkdir(parents=True)
        setup.floor.mkdir()
        for rpm in packages.path.glob("*.rpm"):
            shutil.copyfile(rpm, setup.folder / rpm.name)
            os.link(setup.folder / rpm.name, setup.floor / rpm.name)
        os.link(self.rpm, setup.floor / self.rpm.name)
        flog.step("Publish: first publish of %d packages", len(packages.packages))
        timed(setup.argv, env=setup.env)
        return setup

    @cached_property
    def publishes(self) -> Pairs:
        """`freight publish` of the published folder plus the container, against a full `createrepo_c` of the same."""
        setup = self.publish_setup
        pairs = Pairs()
        for rep in range(self.reps):
            flog.step("Publish %d/%d: freight publish of one more container, then a full createrepo_c", rep + 1, self.reps)
            os.link(self.rpm, setup.added)
            pairs.freight.append(timed(setup.argv, env=setup.env))
            setup.added.unlink()
            timed(setup.argv, env=setup.env)  # back to the packages alone
            shutil.rmtree(setup.floor / "repodata", ignore_errors=True)
            pairs.floor.append(timed(["createrepo_c", "--quiet", str(setup.floor)]))
        return pairs

    @cached_property
    def instances(self) -> dict[str, Pairs]:
        """Per storage backend: an instance of the container's image (300 MB) against one of a 10 MB image."""
        from bench import hoststorage  # freight.host is the host side's; imported only for this figure

        logging.getLogger("freight.host").setLevel(logging.WARNING)  # not every dataset it makes and destroys

        assert self.installs.freight  # leaves the image tree as a tarball
        base = self.work / "instance"
        tree, small = base / "tree", base / "small"
        tree.mkdir(parents=True)
        timed(shell(f"zstd -dc {shlex.quote(str(self.work / 'install' / 'image.tar.zst'))} | tar -x -C {shlex.quote(str(tree))}"))
        big = tree / IMAGE
        copy_first_bytes(big, small, SMALL_IMAGE_BYTES)
        out: dict[str, Pairs] = {}
        with ExitStack() as stack:
            parents = {"dir": "nopool/freight"}
            if hoststorage.zfs_available():
                parents["zfs"] = stack.enter_context(hoststorage.zfs_pool(base / "zfs-pool")) + "/bench"
            for backend, parent in parents.items():
                flog.step("Instances on %s: images of %d MB and %d MB", backend, _du(big) // 10**6, _du(small) // 10**6)
                store = hoststorage.storage(base / backend, backend, parent)
                for image, source in (("big", big), ("small", small)):
                    hoststorage.add_image(store, image, source, "1.0-1")
                pairs = out[backend] = Pairs()
                for _ in range(self.reps):
                    pairs.freight.append(timed_call(store.instance_create, "big", "1.0-1", "instance-big"))
                    store.instance_destroy("instance-big")
                    pairs.floor.append(timed_call(store.instance_create, "small", "1.0-1", "instance-small"))
                    store.instance_destroy("instance-small")
                for image in ("big", "small"):
                    store.image_destroy(image)
        return out

    @cached_property
    def debian(self) -> Workload:
        """The same measurements on Debian 12's minbase (bench.debianrepo), in a folder of their own."""
        from bench import debianrepo

        flog.step("Debian minbase: the corpus repository")
        return Workload(repo=debianrepo.ensure(), work=self.work / "debian", reps=self.reps,
                        publish_repo=self.publish_repo, cache=self.cache)

    @cached_property
    def derivative(self) -> tuple[int, int, int]:
        """A configuration overlay on the bench container, built by freight: (RPM bytes, file bytes, files)."""
        assert self.ready
        folder = self.work / "derivative"
        count = 12
        file_bytes = write_config_files(folder / "conf", count, self.repo.params.seed)
        manifest = folder / "manifest.yaml"
        manifest.write_text(
            f"name: {NAME}-prod\nversion: \"1.0\"\nsummary: configuration for the bench container\nlicense: MIT\n"
            f"base: {NAME}\nbase_version: \">= 1.0\"\nfiles:\n  - {{src: conf, dest: /etc/{NAME}-prod}}\n"
        )
        flog.step("Derivative: a configuration overlay of %d files", count)
        out = folder / "out"
        timed([sys.executable, "-m", "freight", "build", "-q", str(manifest), "-o", str(out)], env=self.freight_env())
        rpm = next(out.glob(f"container-{NAME}-prod-*.rpm"))
        return rpm.stat().st_size, file_bytes, count

    def _rpm_install(self, root: Path) -> list[str]:
        root.mkdir(parents=True, exist_ok=True)
        return ["rpm", "-i", "--root", str(root), "--dbpath", RPM_DBPATH, "--nodeps", "--noscripts", str(self.rpm)]


def copy_first_bytes(src: Path, dest: Path, limit: int) -> None:
    """A smaller image: SRC's files in walk order until LIMIT bytes, with their folders and modes."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel = Path(dirpath).relative_to(src)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in sorted(filenames):
            if total >= limit:
                return
            target = dest / rel / name
            shutil.copy2(Path(dirpath) / name, target, follow_symlinks=False)
            total += os.lstat(target).st_size


def _du(path: Path) -> int:
    return sum(os.lstat(Path(d) / f).st_size for d, _, files in os.walk(path) for f in files)


def cores() -> int:
    return len(os.sched_getaffinity(0))

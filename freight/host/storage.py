"""Where images, snapshots, instances and kept state live: ZFS datasets or directories.

One interface, two backends. With ZFS (the design's choice) an image is a
dataset the RPM writes into, a version is a snapshot `@VERSION-RELEASE`, an
instance is a clone of a snapshot (instant, and writes stay in the clone),
and each declared state path is a dataset of its own, so upgrades and
re-clones never touch it. Where there is no ZFS the `dir` backend does the
same with directories: a snapshot and an instance are copies
(`cp -a --reflink=auto`, cheap on btrfs or xfs, a full copy elsewhere).

Layout (IMAGES, MACHINES and LIB from host.conf; PARENT the ZFS parent):

    image      IMAGES/NAME                   PARENT/images/NAME
    snapshot   LIB/snapshots/NAME/EVR        PARENT/images/NAME@EVR
    instance   MACHINES/INSTANCE             PARENT/machines/INSTANCE (a clone)
    state      LIB/state/INSTANCE/PATH       PARENT/state/INSTANCE/PATH

Names are escaped for ZFS (which takes only letters, digits and `_-.:`):
`1.0~rc1-1` becomes `1.0_7erc1-1`, and the state path `/var/lib/my-db`
becomes `var-lib-my_2ddb`. The backends never decide policy (which snapshot
to keep, when to clone): the hook does, and registers the inverse of each
step so a failure rolls back.
"""

from __future__ import annotations

import logging
import os
import shutil
import string
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from freight.common.errors import FreightError
from freight.common.run import CommandError, run
from freight.host.config import HostConfig

log = logging.getLogger("freight.host.storage")

_ALNUM = string.ascii_letters + string.digits
BUSY_TIMEOUT = 15.0


def _escape(text: str, safe: str) -> str:
    return "".join(c if c in safe else f"_{ord(c):02x}" for c in text)


def snapshot_name(evr: str) -> str:
    """A VERSION-RELEASE as a ZFS snapshot (and directory) name."""
    return _escape(evr, _ALNUM + ".-")


def state_name(path: str) -> str:
    """A container path as one ZFS dataset (and directory) name: `/var/lib/db` -> `var-lib-db`."""
    return _escape(path.strip("/"), _ALNUM + "./").replace("/", "-")


def zfs_letting_go(*args: str) -> None:
    """`zfs ARGS` (destroy, unmount), waiting while zfs-fuse calls the dataset busy.

    zfs-fuse counts a dataset busy while the kernel still caches inodes of
    it, which FUSE only gives back when the kernel drops them: measured
    here, a destroy right after a listing and a write failed 8 times out of
    8, and passed 8 of 8 after dropping the dentry and inode caches
    (`/proc/sys/vm/drop_caches`, which costs only re-reads). So on "busy"
    the caches are dropped and the command retried for a few seconds; any
    other error, or a dataset still busy then (a process really uses it),
    is raised.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            run(["zfs", *args])
            return
        except CommandError as exc:
            if "busy" not in exc.stderr or time.monotonic() > deadline:
                raise
            log.debug("zfs %s: busy; dropping the kernel's inode cache and retrying", " ".join(args))
            try:
                Path("/proc/sys/vm/drop_caches").write_text("2\n")
            except OSError:
                pass
            time.sleep(0.2)


def _require_empty(path: Path, what: str) -> None:
    """Refuse to put something where a leftover would be hidden or mixed in."""
    if path.is_symlink() or path.is_file():
        raise FreightError(f"cannot create {what} at {path}: a file is in the way; move it away")
    if path.is_dir() and any(path.iterdir()):
        raise FreightError(f"cannot create {what} at {path}: the directory exists and is not empty; move it away")


def _rmdir_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


class Storage(ABC):
    """The operations the hook needs, on one backend."""

    kind: ClassVar[str]

    def __init__(self, cfg: HostConfig, parent: str | None = None) -> None:
        self.cfg = cfg
        # Where this backend's datasets live: host.conf's parent for what is made now, the
        # recorded one for what was made before (host.conf may have changed since).
        self.parent = (parent or cfg.parent) if self.kind == "zfs" else None

    def image_dir(self, image: str) -> Path:
        return self.cfg.images_dir / image

    def machine_dir(self, instance: str) -> Path:
        return self.cfg.machines_dir / instance

    def state_dir(self, instance: str, path: str) -> Path:
        return self.cfg.state_dir / instance / state_name(path)

    @abstractmethod
    def check(self) -> None:
        """Raise FreightError, saying what to fix in host.conf, if this backend cannot work."""

    @abstractmethod
    def image_create(self, image: str) -> bool:
        """Make the empty image the RPM will write into; False if it already existed."""

    @abstractmethod
    def image_exists(self, image: str) -> bool: ...

    @abstractmethod
    def image_destroy(self, image: str) -> None:
        """Remove the image and all its snapshots (its instances must be gone)."""

    @abstractmethod
    def image_set_writable(self, image: str, writable: bool) -> None:
        """Open the image for rpm, or close it between transactions (where the backend can)."""

    @abstractmethod
    def snapshot_create(self, image: str, evr: str) -> None: ...

    @abstractmethod
    def image_rollback(self, image: str, evr: str) -> None:
        """Put the image's files back as its snapshot EVR holds them (EVR must be its newest)."""

    @abstractmethod
    def snapshot_exists(self, image: str, evr: str) -> bool: ...

    @abstractmethod
    def snapshot_destroy(self, image: str, evr: str) -> None: ...

    @abstractmethod
    def instance_create(self, image: str, evr: str, instance: str) -> Path:
        """Make MACHINES/INSTANCE from the image's snapshot EVR; return its root."""

    @abstractmethod
    def instance_exists(self, instance: str) -> bool: ...

    @abstractmethod
    def instance_destroy(self, instance: str) -> None: ...

    @abstractmethod
    def state_create(self, instance: str, path: str) -> Path:
        """Make the empty, separate home of one state path; return it (the host side of Bind=)."""

    @abstractmethod
    def state_exists(self, instance: str, path: str) -> bool: ...

    @abstractmethod
    def state_destroy(self, instance: str, path: str | None = None) -> None:
        """Remove the kept state of one path, or all of an instance's (only `freight purge` does)."""

    @abstractmethod
    def describe_instance(self, instance: str) -> str:
        """Where the instance lives, for `freight status`."""

    @abstractmethod
    def room(self, image: str) -> tuple[str, int]:
        """Where IMAGE's files go, and how many bytes can still be written there."""


class ZfsStorage(Storage):
    """Datasets under the configured parent, through the real `zfs` command."""

    kind = "zfs"

    def _ds(self, *parts: str) -> str:
        assert self.parent is not None
        return "/".join((self.parent, *parts))

    def _image_ds(self, image: str) -> str:
        return self._ds("images", image)

    def _snap(self, image: str, evr: str) -> str:
        return f"{self._image_ds(image)}@{snapshot_name(evr)}"

    def _instance_ds(self, instance: str) -> str:
        return self._ds("machines", instance)

    def _state_ds(self, instance: str, path: str | None = None) -> str:
        return self._ds("state", instance, *([state_name(path)] if path else []))

    @staticmethod
    def _exists(dataset: str) -> bool:
        return run(["zfs", "list", "-H", "-o", "name", "-t", "all", dataset], check=False).returncode == 0

    @staticmethod
    def _destroy(*args: str) -> None:
        zfs_letting_go("destroy", *args)

    def _container(self, dataset: str) -> None:
        """A dataset that only groups others: mounted nowhere, created on first use."""
        if not self._exists(dataset):
            run(["zfs", "create", "-o", "mountpoint=none", dataset])

    def _drop_container(self, dataset: str) -> None:
        """Destroy a grouping dataset once its last member is gone, so an erase leaves no dataset."""
        proc = run(["zfs", "list", "-H", "-o", "name", "-t", "all", "-r", dataset], check=False)
        if proc.returncode == 0 and proc.stdout.split() == [dataset]:
            self._destroy(dataset)

    def check(self) -> None:
        if shutil.which("zfs") is None:
            raise FreightError(f"storage = zfs in {self.cfg.path}, but this host has no zfs command; install ZFS or set storage = dir")
        try:
            run(["zfs", "list", "-H", "-o", "name", self._ds()])
        except CommandError as exc:
            said = exc.stderr.strip().splitlines()[-1] if exc.stderr.strip() else f"exit code {exc.returncode}"
            if self.parent != self.cfg.parent:
                raise FreightError(
                    f"the ZFS parent dataset {self.parent}, where this container's datasets were made, "
                    f"does not exist (zfs: {said}); import its pool again"
                ) from None
            raise FreightError(
                f"the ZFS parent dataset {self.parent} does not exist (zfs: {said}); "
                f"{self.cfg.path} says storage = zfs with parent = {self.parent}: "
                f"create it (zfs create -p {self.parent}) or change parent or storage there"
            ) from None

    def image_create(self, image: str) -> bool:
        dataset = self._image_ds(image)
        if self._exists(dataset):
            log.info("image dataset %s exists already: reusing it", dataset)
            return False
        mountpoint = self.image_dir(image)
        _require_empty(mountpoint, f"the image dataset {dataset}")
        self._container(self._ds("images"))
        run(["zfs", "create", "-o", f"mountpoint={mountpoint}", "-o", f"freight:image={image}", dataset])
        log.info("created dataset %s at %s", dataset, mountpoint)
        return True

    def image_exists(self, image: str) -> bool:
        return self._exists(self._image_ds(image))

    def image_destroy(self, image: str) -> None:
        dataset = self._image_ds(image)
        if self._exists(dataset):
            self._destroy("-r", dataset)
            log.info("destroyed dataset %s and its snapshots", dataset)
        self._drop_container(self._ds("images"))
        _rmdir_if_empty(self.image_dir(image))

    def image_set_writable(self, image: str, writable: bool) -> None:
        run(["zfs", "set", f"readonly={'off' if writable else 'on'}", self._image_ds(image)])

    def snapshot_create(self, image: str, evr: str) -> None:
        run(["zfs", "snapshot", self._snap(image, evr)])
        log.info("snapshot %s", self._snap(image, evr))

    def snapshot_exists(self, image: str, evr: str) -> bool:
        return self._exists(self._snap(image, evr))

    def image_rollback(self, image: str, evr: str) -> None:
        # Clones of the snapshot (the running machines) are not touched by a rollback to it.
        # Mounted, as it is: zfs-fuse fails to roll back an unmounted dataset (I/O error), and
        # drops the kernel's caches for a mounted one (/proc/sys/vm/drop_caches must be writable).
        run(["zfs", "rollback", self._snap(image, evr)])
        log.info("rolled %s back to %s", self._image_ds(image), self._snap(image, evr))

    def snapshot_destroy(self, image: str, evr: str) -> None:
        self._destroy(self._snap(image, evr))
        log.info("destroyed snapshot %s", self._snap(image, evr))

    def instance_create(self, image: str, evr: str, instance: str) -> Path:
        dataset, root = self._instance_ds(instance), self.machine_dir(instance)
        if self._exists(dataset):
            raise FreightError(f"cannot create the instance {instance}: the dataset {dataset} exists already")
        _require_empty(root, f"the instance {instance}")
        self._container(self._ds("machines"))
        run(["zfs", "clone", "-o", f"mountpoint={root}", "-o", f"freight:instance={instance}", self._snap(image, evr), dataset])
        log.info("cloned %s to %s at %s", self._snap(image, evr), dataset, root)
        return root

    def instance_exists(self, instance: str) -> bool:
        return self._exists(self._instance_ds(instance))

    def instance_destroy(self, instance: str) -> None:
        dataset = self._instance_ds(instance)
        if self._exists(dataset):
            self._destroy(dataset)
            log.info("destroyed clone %s", dataset)
        self._drop_container(self._ds("machines"))
        _rmdir_if_empty(self.machine_dir(instance))

    def state_create(self, instance: str, path: str) -> Path:
        self._container(self._ds("state"))
        self._container(self._state_ds(instance))
        where = self.state_dir(instance, path)
        _require_empty(where, f"the state of {instance}:{path}")
        run(["zfs", "create", "-o", f"mountpoint={where}", "-o", f"freight:path={path}", self._state_ds(instance, path)])
        log.info("created state dataset %s for %s", self._state_ds(instance, path), path)
        return where

    def state_exists(self, instance: str, path: str) -> bool:
        return self._exists(self._state_ds(instance, path))

    def state_destroy(self, instance: str, path: str | None = None) -> None:
        dataset = self._state_ds(instance, path)
        if self._exists(dataset):
            self._destroy("-r", dataset)
            log.info("destroyed state %s", dataset)
        self._drop_container(self._state_ds(instance))
        self._drop_container(self._ds("state"))
        _remove_state_dirs(self.cfg.state_dir / instance, path)

    def describe_instance(self, instance: str) -> str:
        return f"zfs {self._instance_ds(instance)}"

    def room(self, image: str) -> tuple[str, int]:
        # `available` counts the pool's free space and every quota above the dataset
        dataset = self._image_ds(image) if self.image_exists(image) else self._ds()
        out = run(["zfs", "get", "-H", "-p", "-o", "value", "available", dataset]).stdout.strip()
        return f"the ZFS dataset {dataset}", int(out)


class DirStorage(Storage):
    """Plain directories; snapshots and instances are copies."""

    kind = "dir"

    def _snap_dir(self, image: str, evr: str) -> Path:
        return self.cfg.snapshots_dir / image / snapshot_name(evr)

    @staticmethod
    def _copy(src: Path, dest: Path) -> None:
        """Copy a tree to DEST whole or not at all (a temporary name, then a rename)."""
        if dest.exists():
            raise FreightError(f"cannot copy {src} to {dest}: it exists already")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            tmp.rmdir()  # cp creates it, as a copy of SRC
            run(["cp", "-a", "--reflink=auto", "--", src, tmp])
            os.rename(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def check(self) -> None:
        pass

    def image_create(self, image: str) -> bool:
        root = self.image_dir(image)
        if root.is_dir():
            log.info("image directory %s exists already: reusing it", root)
            return False
        root.mkdir(parents=True)
        return True

    def image_exists(self, image: str) -> bool:
        return self.image_dir(image).is_dir()

    def image_destroy(self, image: str) -> None:
        shutil.rmtree(self.cfg.snapshots_dir / image, ignore_errors=True)
        _rmdir_if_empty(self.cfg.snapshots_dir)
        shutil.rmtree(self.image_dir(image), ignore_errors=True)
        log.info("removed %s and its snapshots", self.image_dir(image))

    def image_set_writable(self, image: str, writable: bool) -> None:
        pass  # a directory has no cheap read-only switch; instances are copies anyway

    def snapshot_create(self, image: str, evr: str) -> None:
        self._copy(self.image_dir(image), self._snap_dir(image, evr))
        log.info("snapshot %s", self._snap_dir(image, evr))

    def snapshot_exists(self, image: str, evr: str) -> bool:
        return self._snap_dir(image, evr).is_dir()

    def image_rollback(self, image: str, evr: str) -> None:
        # a copy of the snapshot takes the image's place whole, then the old files go
        root = self.image_dir(image)
        fresh = root.with_name(f".{root.name}.rollback")
        shutil.rmtree(fresh, ignore_errors=True)
        self._copy(self._snap_dir(image, evr), fresh)
        old = root.with_name(f".{root.name}.old")
        os.rename(root, old)
        os.rename(fresh, root)
        shutil.rmtree(old)
        log.info("put %s back as its snapshot %s", root, evr)

    def snapshot_destroy(self, image: str, evr: str) -> None:
        shutil.rmtree(self._snap_dir(image, evr))
        _rmdir_if_empty(self.cfg.snapshots_dir / image)
        log.info("removed snapshot %s", self._snap_dir(image, evr))

    def instance_create(self, image: str, evr: str, instance: str) -> Path:
        root = self.machine_dir(instance)
        self._copy(self._snap_dir(image, evr), root)
        log.info("copied %s to %s", self._snap_dir(image, evr), root)
        return root

    def instance_exists(self, instance: str) -> bool:
        return self.machine_dir(instance).is_dir()

    def instance_destroy(self, instance: str) -> None:
        if self.machine_dir(instance).exists():
            shutil.rmtree(self.machine_dir(instance))
            log.info("removed %s", self.machine_dir(instance))

    def state_create(self, instance: str, path: str) -> Path:
        where = self.state_dir(instance, path)
        where.mkdir(parents=True)
        return where

    def state_exists(self, instance: str, path: str) -> bool:
        return self.state_dir(instance, path).is_dir()

    def state_destroy(self, instance: str, path: str | None = None) -> None:
        _remove_state_dirs(self.cfg.state_dir / instance, path)

    def describe_instance(self, instance: str) -> str:
        return f"dir {self.machine_dir(instance)}"

    def room(self, image: str) -> tuple[str, int]:
        folder = self.image_dir(image)
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        return f"the filesystem of {folder}", shutil.disk_usage(folder).free


def _remove_state_dirs(folder: Path, path: str | None) -> None:
    """Remove an instance's state folder (or one path's), and the parents it leaves empty."""
    target = folder / state_name(path) if path else folder
    if target.is_dir():
        shutil.rmtree(target)
    for parent in ([folder] if path else []) + [folder.parent]:
        _rmdir_if_empty(parent)


BACKENDS: dict[str, type[Storage]] = {"zfs": ZfsStorage, "dir": DirStorage}


def open_storage(cfg: HostConfig, kind: str, parent: str | None = None) -> Storage:
    """KIND's backend; on zfs under PARENT (a record's) or else host.conf's parent."""
    try:
        return BACKENDS[kind](cfg, parent)
    except KeyError:
        raise FreightError(f"unknown storage backend {kind!r} (expected zfs or dir)") from None

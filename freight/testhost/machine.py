"""A booted test host: systemd as PID 1 in systemd-nspawn, driven through nsenter.

There is no systemd on the machine that runs the tests, so the host is started
the way DESIGN.md found to work here: `systemd-nspawn -b --register=no
--keep-unit` with `SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1`, in a cgroup of its own
(see `freight.testhost.cgroups`), with a private network namespace (nspawn
may then create veth links for nested machines; in the machine's own
namespace it would lack CAP_NET_ADMIN) and `/dev/fuse` bound in for zfs-fuse.
Commands enter all of the container's namespaces with `nsenter -t PID -a`,
with a clean environment, so nothing of the test process (PYTHONPATH, a
virtual environment, HOME) leaks into the host.

Each boot keeps a small state file next to its root copy, so that a host can
be found again by name (`python -m freight.testhost`), and so that a host
whose test session died is found and removed by the next boot instead of
running on.
"""

from __future__ import annotations

import ctypes
import io
import json
import logging
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from freight.common import log as flog
from freight.common import procs
from freight.common.errors import FreightError
from freight.common.run import run, spawn
from freight.testhost import cgroups, image
from freight.testhost.prepare import prepare

log = logging.getLogger("freight.testhost")

BOOT_TIMEOUT = 120.0
POWEROFF_TIMEOUT = 60.0
NAME_PREFIX = "freight-th-"
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_ENV = {"PATH": HOST_PATH, "HOME": "/root", "LANG": "C.UTF-8", "SYSTEMD_COLORS": "0"}
NSPAWN_LOCKS = Path("/run/systemd/nspawn/locks")
NSPAWN_PROPAGATE = Path("/run/systemd/nspawn/propagate")
_PR_SET_PDEATHSIG = 1


class TestHostError(FreightError):
    """The test host could not be booted, reached, or stopped."""


@dataclass(frozen=True)
class Bind:
    """A folder of the machine running the tests, seen at TARGET inside the host."""

    source: Path
    target: str
    readonly: bool = True

    def option(self) -> str:
        return f"--bind{'-ro' if self.readonly else ''}={self.source}:{self.target}"

    @classmethod
    def parse(cls, text: str) -> Bind:
        """SOURCE:TARGET[:rw], as the command line takes it (read-only unless `:rw`)."""
        parts = text.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise TestHostError(f"bad bind {text!r}: expected SOURCE:TARGET[:ro|:rw]")
        return cls(Path(parts[0]).resolve(), parts[1], readonly=len(parts) == 2 or parts[2] == "ro")


@dataclass
class State:
    """What a boot leaves on disk so it can be found again, and cleaned up after a crash."""

    name: str
    workdir: str
    owner_pid: int
    owner_start: int | None
    detached: bool
    binds: list[dict[str, object]] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)
    nspawn_pid: int | None = None
    nspawn_start: int | None = None
    init_pid: int | None = None
    init_start: int | None = None

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> State:
        return cls(**json.loads(path.read_text()))


def boots_dir(cache: Path | None = None) -> Path:
    return (cache or image.cache_dir()) / "boots"


def _alive(pid: int | None, start: int | None) -> bool:
    return pid is not None and start is not None and procs.start_time(pid) == start


def _comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    return [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit() and procs.parent(int(e.name)) == pid]


class TestHost:
    """One booted Debian host with systemd, rpm, dnf, pystemd and zfs-fuse.

        with TestHost.boot(binds=[Bind(repo, "/srv/repo")]) as host:
            print(host.run(["systemctl", "is-system-running"]))
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, state: State, state_path: Path) -> None:
        self.state = state
        self.state_path = state_path
        self._process: subprocess.Popen | None = None  # nspawn, when this process started it
        self.failed_units: list[str] = []
        self.timings: dict[str, float] = {}

    # --- starting ------------------------------------------------------------

    @classmethod
    def boot(
        cls,
        binds: Iterable[Bind] = (),
        *,
        name: str | None = None,
        detached: bool = False,
        recipe: image.Recipe | None = None,
        cache: Path | None = None,
        timeout: float = BOOT_TIMEOUT,
    ) -> TestHost:
        """Copy the cached root, boot it, and return once systemd says the system is up.

        A DETACHED host outlives this process (for `make demo` and a shell
        afterwards); otherwise the kernel signals nspawn to power it off
        when the calling thread dies (a parent-death signal), so boot from
        the thread that lives as long as the host.
        """
        cache = cache or image.cache_dir()
        prune(cache)
        name = name or NAME_PREFIX + secrets.token_hex(4)
        binds = list(binds)
        root_image = image.ensure_image(recipe, cache)
        boots = boots_dir(cache)
        boots.mkdir(parents=True, exist_ok=True)
        state_path = boots / f"{name}.json"
        if state_path.exists():
            raise TestHostError(f"a test host named {name} exists already (see `python -m freight.testhost list`)")
        workdir = boots / name
        state = State(
            name=name, workdir=str(workdir), owner_pid=os.getpid(), owner_start=procs.start_time(os.getpid()),
            detached=detached, binds=[{**asdict(b), "source": str(b.source)} for b in binds],
        )
        state.save(state_path)  # before anything exists, so a crash from here on is found by prune()
        host = cls(state, state_path)
        try:
            flog.step("Booting the test host %s", name)
            workdir.mkdir()
            host.timings["copy"] = image.copy_root(root_image, host.root)
            prepare(host.root)
            host._start(binds, detached)
            host._wait_ready(timeout)
        except BaseException:
            host.shutdown()
            raise
        log.info("  copied the root in %.1f s, booted in %.1f s", host.timings["copy"], host.timings["boot"])
        return host

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def workdir(self) -> Path:
        return Path(self.state.workdir)

    @property
    def root(self) -> Path:
        """The host's root folder as seen from outside (read from it; write through `copy_in`)."""
        return self.workdir / "root"

    @property
    def console_log(self) -> Path:
        return self.workdir / "console.log"

    @property
    def pid(self) -> int:
        """The host's systemd (PID 1 inside), as the outside sees it: what nsenter needs."""
        if self.state.init_pid is None:
            raise TestHostError(f"the test host {self.name} is not running")
        return self.state.init_pid

    @property
    def binds(self) -> list[Bind]:
        return [Bind(Path(str(b["source"])), str(b["target"]), bool(b["readonly"])) for b in self.state.binds]

    def _start(self, binds: list[Bind], detached: bool) -> None:
        folders = cgroups.create(self.name)
        self.state.cgroups = [str(f) for f in folders]
        self.state.save(self.state_path)

        def in_child() -> None:
            cgroups.enter(folders)
            if not detached:  # if the test process dies, its host goes down with it
                ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

        argv = [
            "systemd-nspawn", "--boot", f"--directory={self.root}", f"--machine={self.name}",
            "--register=no", "--keep-unit", "--private-network", "--bind=/dev/fuse",
            "--setenv=SYSTEMD_COLORS=0",  # a plain console log
            *(b.option() for b in binds),
        ]
        start = time.monotonic()
        with self.console_log.open("wb") as console:
            # /proc/sys writable: zfs-fuse drops the kernel's caches when it rolls a dataset back
            # (and freight.host.storage when one stays busy), which fails on nspawn's read-only one
            env = {"SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1", "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "1"}
            self._process = spawn(argv, env=env, output=console, preexec=in_child)
        nspawn = self._process.pid
        self.state.nspawn_pid, self.state.nspawn_start = nspawn, procs.start_time(nspawn)
        self.state.save(self.state_path)
        while True:
            for kid in _children(nspawn):
                if _comm(kid) == "systemd":
                    self.state.init_pid, self.state.init_start = kid, procs.start_time(kid)
                    self.state.save(self.state_path)
                    self.timings["init"] = time.monotonic() - start
                    return
            self._check_nspawn("starting")
            if time.monotonic() - start > 30:
                raise TestHostError(f"systemd-nspawn started no systemd within 30 s{self._console_tail()}")
            time.sleep(0.05)

    def _wait_ready(self, timeout: float) -> None:
        """Wait for `systemctl is-system-running --wait`: running, or degraded (failed units are reported)."""
        start = time.monotonic()
        while True:
            self._check_nspawn("booting")
            remaining = timeout - (time.monotonic() - start)
            if remaining <= 0:
                raise TestHostError(f"the test host {self.name} did not finish booting within {timeout:.0f} s{self._console_tail()}")
            proc = run(
                ["timeout", f"{remaining:.0f}", *self._enter(), "systemctl", "is-system-running", "--wait"],
                check=False,
            )
            status = proc.stdout.strip()
            if status in ("running", "degraded"):
                break
            if status in ("maintenance", "stopping", "offline"):
                raise TestHostError(f"the test host {self.name} is {status}{self._console_tail()}")
            time.sleep(0.1)  # systemd's bus is not up yet
        self.timings["boot"] = time.monotonic() - start + self.timings.get("init", 0.0)
        if status == "degraded":
            listing = self.run(["systemctl", "list-units", "--failed", "--plain", "--no-legend", "--full"])
            self.failed_units = [line.split()[0] for line in listing.splitlines() if line.strip()]
            log.warning("the test host %s is up but degraded; failed units: %s", self.name, ", ".join(self.failed_units))

    def _check_nspawn(self, doing: str) -> None:
        if not _alive(self.state.nspawn_pid, self.state.nspawn_start):
            raise TestHostError(f"systemd-nspawn exited while {doing} the test host {self.name}{self._console_tail()}")

    def _console_tail(self, lines: int = 25) -> str:
        try:
            text = self.console_log.read_text(errors="replace")
        except OSError:
            return ""
        tail = text.strip().splitlines()[-lines:]
        return (f"\n  console ({self.console_log}):\n    " + "\n    ".join(tail)) if tail else ""

    # --- using ---------------------------------------------------------------

    def _enter(self) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-a"]

    def command(self, argv: Sequence[str | os.PathLike[str]], env: Mapping[str, str] | None = None) -> list[str]:
        """The command line that runs ARGV inside the host, with the host's clean environment."""
        environment = [f"{k}={v}" for k, v in {**HOST_ENV, **(env or {})}.items()]
        return [*self._enter(), "env", "-i", *environment, *map(os.fspath, argv)]

    def run(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        input: str | bytes | None = None,
        env: Mapping[str, str] | None = None,
        text: bool = True,
    ) -> str:
        """Run ARGV inside the host; return its stdout. A failure raises freight.run.CommandError."""
        return run(self.command(argv, env), input=input, text=text).stdout

    def sh(self, script: str, *, input: str | None = None, env: Mapping[str, str] | None = None) -> str:
        """Run a shell script inside the host (`sh -ec SCRIPT`); return its stdout."""
        return self.run(["sh", "-ec", script], input=input, env=env)

    def copy_in(self, source: Path, target: str) -> None:
        """Copy a file or folder SOURCE from outside to the path TARGET inside the host.

        It goes through tar inside the host, so links in the host's tree
        resolve inside the host, never to the machine outside.
        """
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(source, arcname=PurePosixPath(target).name)
        self._untar(buffer.getvalue(), str(PurePosixPath(target).parent))

    def write_text(self, target: str, text: str, mode: int = 0o644) -> None:
        """Write TEXT to the file TARGET inside the host."""
        data = text.encode()
        info = tarfile.TarInfo(PurePosixPath(target).name)
        info.size, info.mode, info.mtime = len(data), mode, int(time.time())
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.addfile(info, io.BytesIO(data))
        self._untar(buffer.getvalue(), str(PurePosixPath(target).parent))

    def _untar(self, data: bytes, folder: str) -> None:
        self.run(["mkdir", "-p", folder])
        self.run(["tar", "-x", "--no-same-owner", "-C", folder], input=data, text=False)

    def inside(self, outside: Path) -> str:
        """Where the host sees the outside path OUTSIDE (which must lie in one of its binds)."""
        outside = outside.resolve()
        for bind in self.binds:
            if outside == bind.source or bind.source in outside.parents:
                return str(PurePosixPath(bind.target) / outside.relative_to(bind.source))
        raise TestHostError(f"{outside} is not in a folder bound into the test host {self.name}")

    def shell_hint(self) -> str:
        """How a person gets a shell in this host."""
        return f"{shlex.quote(sys.executable)} -m freight.testhost shell {self.name}    (or: {shlex.join(self.command(['bash', '-l']))})"

    # --- stopping ------------------------------------------------------------

    def shutdown(self, timeout: float = POWEROFF_TIMEOUT) -> None:
        """Power the host off (killing it if it hangs) and remove everything the boot made."""
        remove(self.state, self.state_path, timeout)
        if self._process is not None:
            self._process.wait()  # reap it: no zombie left behind

    def power_cut(self, timeout: float = BOOT_TIMEOUT) -> None:
        """Kill the host whole, as a power cut would (every process at once, zfs-fuse with its
        unwritten transactions), then boot it again on the same root, which is kept."""
        flog.step("Cutting the power of the test host %s", self.name)
        kill(self.state)
        if self._process is not None:
            self._process.wait()
        release(self.state)
        self._start(self.binds, self.state.detached)
        self._wait_ready(timeout)

    def __enter__(self) -> TestHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    @classmethod
    def attach(cls, name: str, cache: Path | None = None) -> TestHost:
        """The running host NAME, booted earlier (perhaps by another process)."""
        path = boots_dir(cache) / f"{name}.json"
        try:
            state = State.load(path)
        except FileNotFoundError:
            raise TestHostError(f"there is no test host named {name}") from None
        if not _alive(state.init_pid, state.init_start):
            raise TestHostError(f"the test host {name} is not running (remove its leftovers with `python -m freight.testhost prune`)")
        return cls(state, path)


def stop(state: State, timeout: float = POWEROFF_TIMEOUT) -> None:
    """Ask the host's systemd to power off; kill the host's whole cgroup if it does not within TIMEOUT."""
    if state.init_pid is not None and _alive(state.init_pid, state.init_start):
        # SIGRTMIN+4 is systemd's "poweroff" (what `machinectl poweroff` sends).
        os.kill(state.init_pid, signal.SIGRTMIN + 4)
        deadline = time.monotonic() + timeout
        while _alive(state.nspawn_pid, state.nspawn_start) and time.monotonic() < deadline:
            time.sleep(0.1)
    if _alive(state.nspawn_pid, state.nspawn_start) or _alive(state.init_pid, state.init_start):
        log.warning("the test host %s did not power off within %.0f s: killing it", state.name, timeout)
        kill(state)


def kill(state: State) -> None:
    """SIGKILL every process of the host, its systemd and nspawn; wait until they are gone."""
    cgroups.kill([Path(c) for c in state.cgroups])
    for pid, start in ((state.init_pid, state.init_start), (state.nspawn_pid, state.nspawn_start)):
        if pid is not None and _alive(pid, start):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (_alive(state.nspawn_pid, state.nspawn_start) or _alive(state.init_pid, state.init_start)) and time.monotonic() < deadline:
        time.sleep(0.05)


def remove(state: State, state_path: Path, timeout: float = POWEROFF_TIMEOUT) -> None:
    """Stop the host of STATE and remove all it left, its state file last (so a failure here is retried by prune)."""
    start = time.monotonic()
    stop(state, timeout)
    stopped = time.monotonic()
    cleanup(state)
    state_path.unlink(missing_ok=True)
    log.info("  stopped the test host %s in %.1f s, removed it in %.1f s", state.name, stopped - start, time.monotonic() - stopped)


def cleanup(state: State) -> None:
    """Remove what a stopped host leaves: its root copy, cgroups, and nspawn's runtime files if it was killed."""
    workdir = Path(state.workdir)
    root = workdir / "root"
    if _alive(state.nspawn_pid, state.nspawn_start):
        raise TestHostError(f"the test host {state.name} still runs; not removing {workdir}")
    mounted = [m for m in _mount_points() if m == root or root in m.parents]
    if mounted:
        # Never delete through a mount: a bind would take the bound folder's files with it.
        raise TestHostError(f"{root} still has mounts ({', '.join(map(str, mounted))}); not removing it")
    release(state)
    shutil.rmtree(workdir, ignore_errors=True)
    if workdir.exists():
        log.warning("could not remove all of %s", workdir)


def release(state: State) -> None:
    """What a stopped host holds outside its folder: nspawn's lock on its root and runtime
    files, and its cgroups (emptied by the stop), so it can boot again or be removed."""
    root = Path(state.workdir) / "root"
    if root.exists():
        st = root.stat()
        (NSPAWN_LOCKS / f"inode-{st.st_dev}:{st.st_ino}").unlink(missing_ok=True)
    propagate = NSPAWN_PROPAGATE / state.name
    if propagate.is_dir():
        shutil.rmtree(propagate, ignore_errors=True)
    busy = cgroups.remove([Path(c) for c in state.cgroups])
    if busy:
        log.warning("cgroups of the test host %s are still busy: %s", state.name, ", ".join(map(str, busy)))


def _mount_points() -> list[Path]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        points.append(Path(line.split()[4].encode().decode("unicode_escape")))
    return points


def running(cache: Path | None = None) -> list[State]:
    """The hosts with a state file, booted by any process."""
    folder = boots_dir(cache)
    return [State.load(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def prune(cache: Path | None = None) -> list[str]:
    """Stop and remove hosts whose test session died; leave detached and in-use ones. Return their names."""
    removed = []
    for state in running(cache):
        if _alive(state.owner_pid, state.owner_start):
            continue  # its session is alive and still owns it
        if state.detached and _alive(state.nspawn_pid, state.nspawn_start):
            continue  # a demo host, stopped only on request
        log.info("removing the leftover test host %s", state.name)
        remove(state, boots_dir(cache) / f"{state.name}.json", timeout=10)
        removed.append(state.name)
    return removed

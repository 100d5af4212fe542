"""`freight cp`: files and folders into and out of a machine, as a tar stream between two processes.

One side of the copy runs inside the machine: a child of freight that joins
the machine's user and mount namespaces (as machined does for its own
copies), so paths, symlinks and owners are the machine's own — a symlink to
`/etc` means the machine's /etc, and uid 0 is the machine's root, which
through its user namespace is some unprivileged uid on the host. The other
side is freight on the host. Between them goes a tar stream, which is also
what `-` reads or writes. A stopped machine is copied into with the child
chrooted into the machine's root instead (or into a state path's folder).

Owners: into a machine, files belong to its root unless `-a` keeps the
numeric owners they have; out of it, to the caller unless `-a`.
"""

from __future__ import annotations

import ctypes
import os
import posixpath
import re
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from freight.common.errors import FreightError, UsageError
from freight.runtime.machines import Target

CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
MACHINE_RE = re.compile(r"^([a-z0-9][a-z0-9-]{0,62}):(.*)$")
WRITABLE_ALWAYS = ("/tmp",)


@dataclass(frozen=True)
class Spec:
    """One side of `freight cp`: a machine's path, a host path, or `-` (a tar on stdin/stdout)."""

    machine: str | None
    path: str

    @property
    def stream(self) -> bool:
        return self.machine is None and self.path == "-"


def parse_spec(text: str) -> Spec:
    """`NAME:PATH` (PATH absolute), `-`, or a host path (one with a ':' must start with '/' or '.')."""
    if text == "-":
        return Spec(None, "-")
    found = MACHINE_RE.match(text)
    if found and not text.startswith(("/", ".")):
        name, path = found.groups()
        if not path.startswith("/"):
            raise UsageError(f"{text}: the path inside {name} must be absolute ({name}:/PATH)")
        return Spec(name, path)
    if not text:
        raise UsageError("an empty path")
    return Spec(None, text)


def parse_pair(src: str, dest: str) -> tuple[Spec, Spec]:
    """SRC and DEST, exactly one of them inside a machine."""
    a, b = parse_spec(src), parse_spec(dest)
    if (a.machine is None) == (b.machine is None):
        raise UsageError("one side of 'freight cp' must be NAME:PATH and the other a host path or '-'")
    if a.stream and b.stream:
        raise UsageError("'-' can be one side only")
    return a, b


def top_name(path: str) -> str:
    """The name a copied file or folder is given: its own (`/a/b/` -> `b`)."""
    name = posixpath.basename(path.rstrip("/")) or "."
    return name


# --- the side inside the machine -----------------------------------------------------------


def _setns(path: str, kind: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, kind) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def enter(target: Target, path: str) -> tuple[str, Callable[[], None]]:
    """How the child gets into TARGET to reach PATH: (PATH as seen there, the function that enters)."""
    if target.leader:
        def join() -> None:
            ns = f"/proc/{target.leader}/ns"
            if os.stat(f"{ns}/user").st_ino != os.stat("/proc/self/ns/user").st_ino:
                _setns(f"{ns}/user", CLONE_NEWUSER)
                os.setgroups([])
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
            _setns(f"{ns}/mnt", CLONE_NEWNS)
            os.chdir("/")
        return path, join
    storage = target.host.storage_of(target.record)
    folder, inside = storage.machine_dir(target.name), path
    for state in sorted(target.record.state, key=len, reverse=True):
        if path == state or path.startswith(state.rstrip("/") + "/"):
            folder, inside = storage.state_dir(target.name, state), "/" + path[len(state):].lstrip("/")
            break

    def chroot() -> None:
        os.chroot(folder)
        os.chdir("/")
    return inside, chroot


def in_machine(enter_fn: Callable[[], None], work: Callable[[], None]) -> Callable[[], None]:
    """WORK, to be run in a child once ENTER_FN has put it inside the machine."""
    def child() -> None:
        enter_fn()
        work()
    return child


def run_child(body: Callable[[], None], stdin: int | None = None, stdout: int | None = None, close: int = -1) -> tuple[int, int]:
    """Fork, run BODY in the child (its stdin/stdout the given descriptors, CLOSE closed); the
    child's pid and the pipe it reports a failure on (one line, then exit 1)."""
    err_read, err_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        os.close(err_read)
        if close >= 0:
            os.close(close)  # the parent's end of our pipe: else we would never see its end
        try:
            if stdin is not None:
                os.dup2(stdin, 0)
            if stdout is not None:
                os.dup2(stdout, 1)
            body()
        except FreightError as exc:
            os.write(err_write, str(exc).encode())
            code = 1
        except OSError as exc:
            os.write(err_write, _why(exc).encode())
            code = 1
        except BaseException as exc:  # noqa: BLE001 - a child must never return into freight
            os.write(err_write, f"{type(exc).__name__}: {exc}".encode())
            code = 1
        finally:
            os._exit(code)
    os.close(err_write)
    return pid, err_read


def _why(exc: OSError) -> str:
    name = f"{exc.filename}: " if exc.filename else ""
    return f"{name}{exc.strerror or exc}"


# --- tar streams --------------------------------------------------------------------------------


def write_tar(out: IO[bytes], src: str, owners: Callable[[tarfile.TarInfo], tarfile.TarInfo]) -> None:
    """SRC (a file or folder, in this process's view) as a tar stream, named by its own name."""
    if not os.path.lexists(src):
        raise FreightError(f"{src}: no such file or folder")
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.add(src, arcname=top_name(src), filter=owners)


def read_tar(stream: IO[bytes], dest: str, rename: bool, owners: Callable[[tarfile.TarInfo], tarfile.TarInfo]) -> None:
    """Extract STREAM into DEST: into it when it is a folder, else as DEST itself (the
    stream's top entry renamed) when RENAME; modes and times kept, owners as OWNERS says."""
    into, new_top = dest, None
    if rename and not os.path.isdir(dest):
        into, new_top = os.path.dirname(dest.rstrip("/")) or "/", top_name(dest)
    if not os.path.isdir(into):
        raise FreightError(f"{into}: no such folder")
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            if new_top is not None:
                first, _, rest = member.name.partition("/")
                member.name = new_top + ("/" + rest if rest else "")
            if member.name.startswith("/") or ".." in member.name.split("/"):
                raise FreightError(f"{member.name}: a tar entry outside the destination")
            tar.extract(owners(member), into, set_attrs=True, numeric_owner=True)


def keep_owners(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uname = info.gname = ""
    return info


def owned_by(uid: int, gid: int) -> Callable[[tarfile.TarInfo], tarfile.TarInfo]:
    def give(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
        return info
    return give


def shifted(by: int, base: Callable[[tarfile.TarInfo], tarfile.TarInfo]) -> Callable[[tarfile.TarInfo], tarfile.TarInfo]:
    """Owners moved up by BY: a stopped machine whose tree nspawn chowned into its UID range."""
    def shift(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info = base(info)
        info.uid, info.gid = info.uid + by, info.gid + by
        return info
    return shift


# --- the copy -------------------------------------------------------------------------------------


def copy(target: Target, src: Spec, dest: Spec, archive: bool) -> None:
    """SRC to DEST, one of them in TARGET."""
    if dest.machine is not None:
        _check_writable(target, dest.path)
        _into(target, src, dest.path, archive)
    else:
        _out_of(target, src.path, dest, archive)


def _check_writable(target: Target, path: str) -> None:
    """A read-only machine takes files only in its state paths and /tmp; say which before trying."""
    if not target.run.get("read_only"):
        return
    writable = sorted(target.record.state) + ([] if not target.leader else list(WRITABLE_ALWAYS))
    if any(path == w or path.startswith(w.rstrip("/") + "/") for w in writable):
        return
    raise FreightError(
        f"{target.name}:{path} is on the machine's read-only image; its writable paths are: {', '.join(writable) or 'none'}"
    )


def _shift(target: Target) -> int:
    if target.leader:
        return 0  # the child is in the machine's user namespace: its own numbers
    st = os.stat(target.host.storage_of(target.record).machine_dir(target.name))
    return st.st_uid  # a tree nspawn chowned into its range has its root owned by the range's start


def _into(target: Target, src: Spec, dest: str, archive: bool) -> None:
    inside, enter_fn = enter(target, dest)
    owners = keep_owners if archive else owned_by(0, 0)
    if shift := _shift(target):
        owners = shifted(shift, owners)
    read_fd, write_fd = os.pipe()
    child = run_child(in_machine(enter_fn, lambda: read_tar(os.fdopen(0, "rb"), inside, not src.stream, owners)), stdin=read_fd, close=write_fd)
    os.close(read_fd)
    try:
        with os.fdopen(write_fd, "wb") as out:
            if src.stream:
                _pump(sys.stdin.buffer, out)
            else:
                write_tar(out, src.path, keep_owners)
    except BrokenPipeError:
        pass  # the child failed: it says why
    _wait(child, f"{target.name}:{dest}", target)


def _out_of(target: Target, src: str, dest: Spec, archive: bool) -> None:
    inside, enter_fn = enter(target, src)
    read_fd, write_fd = os.pipe()
    child = run_child(in_machine(enter_fn, lambda: _write_tar_to_stdout(inside)), stdout=write_fd, close=read_fd)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as stream:
        try:
            if dest.stream:
                _pump(stream, sys.stdout.buffer)
            else:
                owners = keep_owners if archive else owned_by(os.getuid(), os.getgid())
                read_tar(stream, os.path.abspath(dest.path), True, owners)
        except tarfile.ReadError:
            pass  # nothing came: the child says why
    _wait(child, f"{target.name}:{src}", target)


def _write_tar_to_stdout(src: str) -> None:
    with os.fdopen(1, "wb") as out:
        write_tar(out, src, keep_owners)


def _pump(src: IO[bytes], dest: IO[bytes]) -> None:
    while chunk := src.read(1 << 16):
        dest.write(chunk)
    dest.flush()


def _wait(child: tuple[int, int], where: str, target: Target) -> None:
    """The child's end; its one-line reason as a FreightError when it failed."""
    pid, err = child
    with os.fdopen(err, "rb") as f:
        why = f.read().decode(errors="replace").strip()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        if "Read-only file system" in why:
            writable = ", ".join(sorted(target.record.state) + list(WRITABLE_ALWAYS))
            raise FreightError(f"{where} is on the machine's read-only image; its writable paths are: {writable}")
        raise FreightError(f"cannot copy {where}: {why or 'the copy failed'}")

"""`freight exec`: a process inside a running machine, as a transient unit of the host's systemd.

The process is started by the host's systemd (`StartTransientUnit`), not by
freight: its unit sits in the machine's own slice (so the machine's limits
bind it and systemd accounts it with the machine) and is bound to the
machine's service (so it stops with the machine). What it runs is
`nsenter -t LEADER -a -r`: the machine's namespaces (user included, when the
machine has one), its root and its cgroup namespace, then the command — a
peer of the payload, never its child, and nothing needed inside the machine.

freight exec itself is put in a scope of its own, and the process's unit is
bound to that scope: when freight exec ends in any way (even SIGKILL) the
scope empties, systemd stops the unit, and no orphan outlives it. SIGINT,
SIGTERM and SIGHUP sent to freight exec are passed on with `KillUnit`.
"""

from __future__ import annotations

import logging
import os
import select
import signal
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from freight.common.errors import FreightError, UsageError
from freight.host import nspawn
from freight.runtime import rootfs, terminal, users
from freight.runtime.bus import SERVICE, UNIT, Bus
from freight.runtime.machines import Target

log = logging.getLogger("freight.runtime.execute")

NSENTER = "/usr/bin/nsenter"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CLD_EXITED = 1
EXIT_NOT_FOUND, EXIT_NOT_EXECUTABLE = 127, 126  # as shells give them


@dataclass
class Request:
    argv: list[str]
    user: str | None = None  # default: the manifest's run.user
    workdir: str | None = None  # default: the manifest's run.working_directory, else the user's home
    env: list[str] = field(default_factory=list)  # K=V, over the manifest's environment
    tty: bool = False
    interactive: bool = False


class CommandMissing(FreightError):
    """The command does not exist in the machine (exit 127) or cannot be run (126)."""


def parse_env(items: list[str]) -> dict[str, str]:
    """`-e K=V` words as a mapping; a word without '=' or with a bad name is bad input."""
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key or not (key[0].isalpha() or key[0] == "_") or not all(c.isalnum() or c == "_" for c in key):
            raise UsageError(f"-e {item}: expected NAME=VALUE (NAME: letters, digits and '_', not starting with a digit)")
        out[key] = value
    return out


def environment(target: Target, req: Request, user: users.User) -> dict[str, str]:
    """What the process gets: a login's basics, the manifest's environment, then `-e`."""
    env = {"PATH": DEFAULT_PATH, "HOME": user.home, "USER": user.name, "LOGNAME": user.name, "container": "systemd-nspawn"}
    if req.tty:
        env["TERM"] = os.environ.get("TERM", "xterm")
    env |= {k: str(v) for k, v in target.run.get("environment", {}).items()}
    env |= parse_env(req.env)
    return env


def command_line(target: Target, req: Request) -> tuple[list[str], dict[str, str]]:
    """The unit's ExecStart (nsenter … -- CMD) and environment, every input checked inside the machine."""
    if not req.argv:
        raise UsageError("no command given: freight exec NAME -- CMD [ARG...]")
    root = target.root
    user = users.lookup(root, req.user or target.run.get("user"))
    env = environment(target, req, user)
    found = rootfs.which(root, req.argv[0], env["PATH"])
    if found is None:
        raise CommandMissing(f"{req.argv[0]}: no such command in {target.name} (PATH={env['PATH']})")
    if not rootfs.is_executable(root, found):
        raise CommandMissing(f"{found}: not executable in {target.name}")
    workdir = req.workdir or target.run.get("working_directory") or user.home
    where = rootfs.host_path(root, workdir)
    if not where.is_dir():
        if req.workdir:
            raise UsageError(f"-w {workdir}: no such folder in {target.name}")
        where = root  # a home that does not exist: start at / as login(1) does
    argv = [NSENTER, "-t", str(target.leader), "-a", "-r", f"--wd={where}",
            f"--setuid={user.uid}", f"--setgid={user.gid}", "--", found, *req.argv[1:]]
    return [no_expansion(a) for a in argv], env


def no_expansion(word: str) -> str:
    """WORD as ExecStart= passes it on unchanged: systemd expands `$NAME` there, and `$$` is one `$`."""
    return word.replace("$", "$$")


def run(target: Target, req: Request) -> int:
    """Run REQ in TARGET and wait for it; its exit status (128+N for a signal N)."""
    argv, env = command_line(target, req)
    tag = f"{nspawn.escape(target.name)}-{os.urandom(6).hex()}"
    service, scope = f"freight-exec-{tag}.service", f"freight-exec-{tag}-client.scope"
    machine_unit = nspawn.unit_name(target.name)
    with ExitStack() as stack:
        bus = stack.enter_context(Bus())
        try:
            # freight exec's own scope: its end (however it comes) stops what it started
            bus.start_transient(scope, {
                b"Description": f"freight exec in {target.name} (the caller)".encode(),
                b"PIDs": [os.getpid()],
                b"CollectMode": b"inactive-or-failed",
            })
            pty = terminal.Pty.open(bus, target.name, target.leader) if req.tty else None
            if pty is not None:
                stack.callback(pty.close)
                stdio: dict[bytes, Any] = {b"StandardInput": b"tty", b"StandardOutput": b"tty",
                                           b"StandardError": b"tty", b"TTYPath": pty.path.encode()}
            else:
                stdio = {b"StandardOutputFileDescriptor": 1, b"StandardErrorFileDescriptor": 2}
                if req.interactive:
                    stdio[b"StandardInputFileDescriptor"] = 0
            bound = [machine_unit.encode(), scope.encode()]
            bus.start_transient(service, {
                b"Description": f"freight exec in {target.name}: {' '.join(req.argv)}"[:200].encode(),
                b"ExecStart": [(argv[0].encode(), [a.encode() for a in argv], False)],
                b"Environment": [f"{k}={v}".encode() for k, v in env.items()],
                b"Slice": nspawn.slice_name(target.name).encode(),
                b"BindsTo": bound,
                b"After": bound,
                b"AddRef": True,  # kept (with its exit status) while this connection lasts
                b"CollectMode": b"inactive-or-failed",
                b"SendSIGHUP": True,
                **stdio,
            })
        except FreightError as exc:
            raise FreightError(f"systemd refused to start the process in {target.name}: {exc}") from None
        return _wait(bus, service, pty, req.interactive)


def _wait(bus: Bus, service: str, pty: terminal.Pty | None, interactive: bool) -> int:
    """Until the unit's process has ended: signals passed on, a pty forwarded; its exit status."""
    def forward(signum: int, _frame: Any) -> None:
        try:
            bus.kill(service, "all", signum)  # nsenter passes nothing on to its child
        except FreightError as exc:  # the unit may be gone already
            log.debug("KillUnit %s: %s", service, exc)

    old = {s: signal.signal(s, forward) for s in FORWARDED}
    pidfd = -1
    try:
        with ExitStack() as stack:
            if pty is not None:
                stack.enter_context(pty.forwarding(interactive))
            while True:
                if _ended(bus, service):
                    break
                if pidfd < 0 and (pid := int(bus.unit_property(service, SERVICE, b"MainPID", b"u"))):
                    try:
                        pidfd = os.pidfd_open(pid)
                    except ProcessLookupError:
                        pidfd = -1
                waits = [pidfd] if pidfd >= 0 else []
                if pty is not None:
                    waits += pty.readable()
                try:
                    ready, _, _ = select.select(waits, [], [], 0.2 if pidfd >= 0 else 0.005)
                except InterruptedError:
                    continue
                if pty is not None:
                    pty.pump(ready)
                if pidfd in ready:
                    os.close(pidfd)
                    pidfd = -2  # ended: wait for systemd to record it
            if pty is not None:
                pty.drain()
    finally:
        if pidfd >= 0:
            os.close(pidfd)
        for s, handler in old.items():
            signal.signal(s, handler)
    return _status(bus, service)


def _ended(bus: Bus, service: str) -> bool:
    job_id = bus.unit_property(service, UNIT, b"Job", b"(uo)")[0]
    return job_id == 0 and bus.unit_property(service, UNIT, b"ActiveState", b"s") in (b"inactive", b"failed")


def _status(bus: Bus, service: str) -> int:
    code = int(bus.unit_property(service, SERVICE, b"ExecMainCode", b"i"))
    status = int(bus.unit_property(service, SERVICE, b"ExecMainStatus", b"i"))
    if code == 0:  # it never ran (nsenter missing, the machine gone)
        result = bus.unit_property(service, SERVICE, b"Result", b"s").decode()
        raise FreightError(f"the process did not start: {result}; see journalctl -u {service}")
    return status if code == CLD_EXITED else 128 + status

"""Commands on running machines: `freight exec`, `shell`, `cp`, `logs`, `tail`, `set NAME KEY=VALUE...`.

They act through the host's systemd and machined (freight.runtime) and need
nothing inside the machine; like the other host commands they import the
host side only when they run.
"""

from __future__ import annotations

import argparse
import json
import sys

from freight.commands import add
from freight.common import log as flog

EXEC_EPILOG = (
    "CMD runs in NAME's namespaces, root and cgroup (its machine's slice: its limits bind it) as a transient unit "
    "of the host's systemd, a peer of the machine's payload. Its exit status is freight exec's (127: no such "
    "command, 126: not executable, 128+N: killed by signal N). SIGINT, SIGTERM and SIGHUP are passed on; when "
    "freight exec ends, however it ends, systemd stops CMD. Defaults: the manifest's run.user, "
    "run.working_directory and run.environment."
)


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add(sub, "exec", common, description="Run a command inside a running machine.", epilog=EXEC_EPILOG)
    p.add_argument("-t", "--tty", action="store_true", help="give CMD a pty with this terminal's size")
    p.add_argument("-i", "--interactive", action="store_true", help="keep stdin open and pass it to CMD")
    p.add_argument("-u", "--user", metavar="USER", help="a user name or uid of the machine (default: the manifest's run.user, else root)")
    p.add_argument("-w", "--workdir", metavar="DIR", help="the working directory inside the machine")
    p.add_argument("-e", "--env", action="append", default=[], metavar="K=V", help="set an environment variable (repeatable)")
    p.add_argument("name", metavar="NAME", help="the running machine")
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD [ARG...]", help="the command and its arguments")
    p.set_defaults(func=_exec)

    p = add(sub, "shell", common, description=(
        "An interactive shell in a running machine: 'exec -t -i' of the shell the machine's /etc/passwd gives "
        "the manifest's run.user (else root), or /bin/sh."))
    p.add_argument("-u", "--user", metavar="USER", help="whose shell, a user name or uid of the machine")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=_shell)

    p = add(sub, "logs", common, description=(
        "What the machine's payload and the processes exec'd in it printed, and freight's own events for it "
        "(installed, started, upgraded, rolled back, limits changed), in one stream from the host's journal."))
    p.add_argument("-f", "--follow", action="store_true", help="follow new lines, across restarts of the machine")
    p.add_argument("-n", "--lines", type=int, metavar="N", help="only the last N lines")
    p.add_argument("--since", metavar="TIME", help="only lines since TIME (as journalctl takes it: '10 min ago', '2026-12-03 10:00')")
    p.add_argument("--json", action="store_true", help="one JSON object a line: time, source (payload, exec, freight), message")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=_logs)

    p = add(sub, "tail", common, description="Stream a file from inside a running machine (the last 10 lines, then with -f what is added).")
    follow = p.add_mutually_exclusive_group()
    follow.add_argument("-f", "--follow", action="store_true", help="follow what is appended to the file")
    follow.add_argument("-F", dest="by_name", action="store_true", help="follow the name across rotation (a new or truncated file)")
    p.add_argument("-n", "--lines", type=int, default=10, metavar="N", help="start with the last N lines (default 10)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("path", metavar="PATH", help="an absolute path inside the machine")
    p.set_defaults(func=_tail)

    p = add(sub, "cp", common, description=(
        "Copy files and folders into or out of a machine: one side NAME:PATH, the other a host path or '-' "
        "(a tar stream on stdin or stdout). Modes and times are kept; owners are the machine's root (into it) "
        "or yours (out of it) unless -a. Paths and symlinks inside the machine are resolved inside it. Into "
        "a running or a stopped machine; out of a running one."))
    p.add_argument("-a", "--archive", action="store_true", help="keep the numeric owners (as the machine's user namespace shows them)")
    p.add_argument("src", metavar="SRC")
    p.add_argument("dest", metavar="DEST")
    p.set_defaults(func=_cp)

    p = add(sub, "set", common, description=(
        "Change the limits of a machine at once and for its next starts: memory=SIZE (512M, 2G, infinity), "
        "cpu_weight=1-10000, cpu_quota=PERCENT (150%: one and a half CPUs), tasks=N, io_weight=1-10000. "
        "They sit on the machine's own slice (freight-NAME.slice), which holds its payload and every exec'd "
        "process, as drop-ins a daemon-reload keeps; 'freight status' shows each limit and where it comes from."))
    p.add_argument("--runtime", action="store_true", help="only until the machine's next start")
    p.add_argument("name", metavar="NAME")
    p.add_argument("limits", nargs="+", metavar="KEY=VALUE")
    p.set_defaults(func=_set)


def _host():  # type: ignore[no-untyped-def]
    from freight.commands.host import _host as host

    return host(repair=False)


def _exec(args: argparse.Namespace) -> int:
    from freight.common.errors import UsageError

    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise UsageError("no command given: freight exec NAME -- CMD [ARG...]")
    return _run(args.name, argv, user=args.user, workdir=args.workdir, env=args.env, tty=args.tty, interactive=args.interactive)


def _run(name: str, argv: list[str], **options: object) -> int:
    from freight.runtime import execute, machines

    target = machines.running(_host(), name, "run a command in")
    try:
        return execute.run(target, execute.Request(argv=argv, **options))  # type: ignore[arg-type]
    except execute.CommandMissing as exc:
        flog.log.error("%s", exc)
        return execute.EXIT_NOT_FOUND if "no such command" in str(exc) else execute.EXIT_NOT_EXECUTABLE


def _shell(args: argparse.Namespace) -> int:
    from freight.runtime import machines, rootfs, users

    target = machines.running(_host(), args.name, "open a shell in")
    user = users.lookup(target.root, args.user or target.run.get("user"))
    shell = user.shell if rootfs.which(target.root, user.shell, "") else users.DEFAULT_SHELL  # a passwd naming a shell the image lacks
    return _run(args.name, [shell], user=str(user.uid), tty=True, interactive=True)


def _logs(args: argparse.Namespace) -> int:
    from freight.runtime import logs

    _host().instance(args.name)  # an unknown name is an error, not an empty stream
    try:
        for item in logs.entries(args.name, args.follow, args.lines, args.since):
            print(json.dumps(item) if args.json else logs.text(item), flush=True)
    except BrokenPipeError:
        sys.stderr.close()
    return 0


def _tail(args: argparse.Namespace) -> int:
    from freight.runtime import machines, tail

    target = machines.running(_host(), args.name, "tail a file in")
    try:
        tail.tail(target, args.path, follow=args.follow, by_name=args.by_name, last=args.lines)
    except BrokenPipeError:
        sys.stderr.close()
    return 0


def _set(args: argparse.Namespace) -> int:
    from freight.common.errors import UsageError
    from freight.host import events, nspawn, slices
    from freight.model import limits

    values = limits.parse_assignments(args.limits)  # every one checked before anything changes
    host = _host()
    host.instance(args.name)
    with host.locked():
        path, before = slices.write_set(host.cfg, args.name, values, args.runtime)
        if host.systemd.daemon_reload() and (bad := slices.refused(args.name, values)):
            slices.put_back(path, before)
            host.systemd.daemon_reload()
            raise UsageError(f"systemd refused {' '.join(bad)} (nothing changed; see journalctl -b -u {nspawn.slice_name(args.name)})")
    said = " ".join(f"{k}={v}" for k, v in values.items())
    events.record(args.name, f"limits changed{' until the next start' if args.runtime else ''}: {said}")
    flog.step("%s: %s (%s)", args.name, said, path)
    return 0


def _cp(args: argparse.Namespace) -> int:
    from freight.runtime import copy, machines

    src, dest = copy.parse_pair(args.src, args.dest)
    name = src.machine or dest.machine
    assert name is not None
    host = _host()
    target = machines.find(host, name)
    if src.machine is not None and not target.leader:
        target = machines.running(host, name, "copy out of")  # a stopped machine's state may sit in datasets: refuse
    copy.copy(target, src, dest, args.archive)
    return 0

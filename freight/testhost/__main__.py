"""`python -m freight.testhost`: keep a test host running, get into it, stop it.

    python -m freight.testhost up [--name NAME] [--bind SRC:TARGET[:rw]]... [--freight-repo DIR]
    python -m freight.testhost run NAME -- dnf install -y container-webapp
    python -m freight.testhost shell NAME
    python -m freight.testhost down NAME | --all
    python -m freight.testhost list | prune | image

`make demo` uses it to leave a host up that a person can look around in.
Hosts started here are detached: they run until `down`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from freight.common import log as flog
from freight.common.errors import FreightError
from freight.common.run import run
from freight.testhost import image, machine
from freight.testhost.machine import Bind, TestHost
from freight.testhost.provision import install_freight

FREIGHT_REPO = "/srv/freight-rpms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m freight.testhost", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("image", help="make the cached Debian root if needed; print its path")
    up = sub.add_parser("up", help="boot a host that keeps running; print its name")
    up.add_argument("--name", help="the host's name (default: a random one)")
    up.add_argument("--bind", action="append", default=[], type=Bind.parse, metavar="SRC:TARGET[:rw]",
                    help="show the folder SRC at TARGET in the host (read-only unless :rw)")
    up.add_argument("--freight-repo", type=Path, metavar="DIR",
                    help=f"install freight and freight-host with dnf from DIR (python -m freight.dist.rpms host-repo DIR), seen at {FREIGHT_REPO}")
    sub.add_parser("list", help="the hosts there are")
    run_p = sub.add_parser("run", help="run a command in a host")
    run_p.add_argument("name")
    run_p.add_argument("argv", nargs="+", metavar="COMMAND")
    shell = sub.add_parser("shell", help="a login shell in a host")
    shell.add_argument("name")
    down = sub.add_parser("down", help="power a host off and remove it")
    down.add_argument("name", nargs="?")
    down.add_argument("--all", action="store_true", help="every host, detached or not")
    down.add_argument("--missing-ok", action="store_true", help="no error if there is no such host")
    sub.add_parser("prune", help="remove hosts whose test session died")
    args = parser.parse_args(argv)
    flog.setup()
    try:
        return _dispatch(args)
    except FreightError as exc:
        flog.log.error("%s", exc)
        return exc.exit_code


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "image":
        print(image.ensure_image())
    elif args.command == "up":
        binds = args.bind + ([Bind(args.freight_repo.resolve(), FREIGHT_REPO)] if args.freight_repo else [])
        host = TestHost.boot(binds, name=args.name, detached=True)
        if args.freight_repo:
            try:
                install_freight(host, FREIGHT_REPO)
            except BaseException:
                host.shutdown()
                raise
        flog.log.info("The test host %s is up. A shell in it:\n  %s\nStop it with: python3 -m freight.testhost down %s",
                      host.name, host.shell_hint(), host.name)
        print(host.name)
    elif args.command == "list":
        for state in machine.running():
            up = machine._alive(state.init_pid, state.init_start)
            kind = "detached" if state.detached else f"owned by pid {state.owner_pid}"
            print(f"{state.name}\t{'running' if up else 'stopped'}\tpid {state.init_pid}\t{kind}\t{state.workdir}/root")
    elif args.command == "run":
        host = TestHost.attach(args.name)
        return run(host.command(args.argv), capture=False, check=False).returncode
    elif args.command == "shell":
        host = TestHost.attach(args.name)
        argv = host.command(["bash", "-l"], env={"TERM": os.environ.get("TERM", "xterm")})
        os.execvp(argv[0], argv)  # hand the terminal over to the shell
    elif args.command == "down":
        if not args.all and not args.name:
            raise FreightError("name a host, or say --all")
        states = [s for s in machine.running() if args.all or s.name == args.name]
        if not states and not args.missing_ok:
            raise FreightError(f"there is no test host named {args.name}")
        for state in states:
            machine.remove(state, machine.boots_dir() / f"{state.name}.json")
            flog.log.info("stopped and removed %s", state.name)
    elif args.command == "prune":
        for name in machine.prune():
            flog.log.info("removed %s", name)
    return 0


if __name__ == "__main__":
    sys.exit(main())

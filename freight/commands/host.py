"""Host commands: `freight list`, `start|stop|restart|enable|disable|status NAME`, `purge NAME`,
`instance create|remove|unpin`, `rollback NAME`.

They act on what the installer hook made (see freight.host) and talk to
systemd over D-Bus through pystemd; none of them parses systemctl output.
freight.host ships in the freight-host package, so it is imported only when
one of these commands runs: a build machine needs only freight.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from freight.commands import COMMANDS, add
from freight.common import log as flog
from freight.common.errors import FreightError, UsageError

if TYPE_CHECKING:
    from freight.host.context import Host

CONTROL = ("start", "stop", "restart", "enable", "disable")


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = add(
        sub,
        "list",
        common,
        description="List the container images installed on this host and their instances: version, state, storage, addresses.",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_list)

    for verb in CONTROL:
        text = COMMANDS[verb].summary
        p = add(sub, verb, common, description=f"{text[0].upper()}{text[1:]} (systemd-nspawn@NAME.service, through D-Bus).")
        p.add_argument("name", metavar="NAME", help="the instance (the container's name for its default instance)")
        p.set_defaults(func=_control, verb=verb)

    p = add(sub, "status", common, description="Show an instance: unit state, version, storage, state paths, addresses.")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_status)

    p = add(
        sub,
        "purge",
        common,
        description=(
            "Remove for good the state paths of NAME, which 'dnf remove' keeps (the container must be removed first), "
            "or a half-made image NAME that no install finished and no package owns, with its datasets, machine and records."
        ),
    )
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=_purge)

    p = add(
        sub,
        "repair",
        common,
        description=(
            "Put every image that an rpm transaction left unfinished (dnf or rpm killed, an unpack that failed, "
            "a power cut) back in step with rpm's database: roll it back to the snapshot of the version rpm lists, "
            "take the snapshot an upgrade did not get to, or remove what no package owns. The next dnf transaction "
            "on the container and the other host commands do the same; this does it now. Waits for nothing: "
            "while an rpm transaction runs it exits 1. Exit 0 when everything is in step afterwards."
        ),
    )
    p.set_defaults(func=_repair)

    p = add(
        sub,
        "rollback",
        common,
        description=(
            "Restart NAME on the snapshot its image kept before the one it runs, in seconds, and keep it there "
            "until the next package change or 'freight instance unpin NAME'. The package stays at its version: "
            "'dnf downgrade' is the durable way back, and reuses the kept snapshot."
        ),
    )
    p.add_argument("name", metavar="NAME")
    p.set_defaults(func=_rollback)

    p = add(sub, "instance", common, description="Make, remove and unpin instances.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    v = verbs.add_parser("create", parents=[common], help="a new machine of an installed image or derivative", description="Make the machine NEWNAME from IMAGE's current snapshot (a derivative: with its overlay). No package owns it; writes in it stay in it.")
    v.add_argument("image", metavar="IMAGE")
    v.add_argument("new", metavar="NEWNAME")
    v.set_defaults(func=_instance_create)
    v = verbs.add_parser("remove", parents=[common], help="remove a machine made by 'instance create'", description="Stop and remove NAME; its state stays (until 'freight purge NAME') unless --purge.")
    v.add_argument("name", metavar="NAME")
    v.add_argument("--purge", action="store_true", help="remove its state too")
    v.set_defaults(func=_instance_remove)
    v = verbs.add_parser("unpin", parents=[common], help="let a rolled-back machine move forward again", description="Undo a rollback's pin: NAME moves to its image's newest snapshot at its next start.")
    v.add_argument("name", metavar="NAME")
    v.set_defaults(func=_instance_unpin)


def _host(repair: bool = True) -> Host:
    """The host; unless only looking (list, status), with every image a dead rpm transaction left
    out of step put back first (freight.host.repair), each repair said on stderr."""
    try:
        from freight.host.context import Host
    except ImportError as exc:
        raise FreightError(f"this command needs freight-host, which is not installed here ({exc})") from None
    host = Host.load()
    if repair:
        from freight.host import repair as repairs

        repairs.when_quiet(host)
    return host


def _list(args: argparse.Namespace) -> int:
    host = _host(repair=False)
    from freight.host import report

    info = report.host_info(host)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    _table(
        ["IMAGE", "VERSION", "STORAGE", "SNAPSHOTS"],
        [[i["name"], i["version"] or ("half-made" if i["half_made"] else "installing"), i["storage"], " ".join(i["snapshots"]) or "-"]
         for i in info["images"]],
    )
    print()
    _table(
        ["INSTANCE", "IMAGE", "VERSION", "STATE", "ENABLED", "STORAGE", "ADDRESS"],
        [
            [
                r["name"],
                r["image"] + (f"+{r['overlay']}" if r["overlay"] else ""),
                r["version"] + _waiting(r),
                r["state"] or "?",
                r["enabled"],
                r["storage"],
                " ".join(r["addresses"]) or "-",
            ]
            for r in info["instances"]
        ],
    )
    for image in info["images"]:
        if image["interrupted"]:
            print(f"\n{image['interrupted']}")
        elif image["half_made"]:
            print(f"\nhalf-made image {image['name']}: no install of {image['package']} finished; "
                  f"'dnf install {image['package']}' finishes one, 'freight purge {image['name']}' removes it")
        elif image["installing"]:
            print(f"\nimage {image['name']}: an rpm transaction is installing {image['package']}")
    for kept in info["kept_state"]:
        print(f"\nkept state of the removed instance {kept['instance']}: {', '.join(kept['paths'])} ('freight purge {kept['instance']}' removes it)")
    if info["systemd"] != "running":
        flog.log.info("STATE is unknown: %s", info["systemd"])
    return 0


def _waiting(info: dict[str, Any]) -> str:
    """What the VERSION column adds: a newer snapshot waiting for a restart, or a rollback's pin."""
    if info["pinned"]:
        return " (pinned by rollback" + (f"; {info['newer']} is installed)" if info["newer"] else ")")
    return f" ({info['pending']} at restart)" if info["pending"] else ""


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def _control(args: argparse.Namespace) -> int:
    host = _host()
    host.instance(args.name)  # a clear error for a name freight does not know
    getattr(host.systemd, args.verb)(args.name)
    flog.step("%s: %s", args.name, {"stop": "stopped", "enable": "enabled", "disable": "disabled"}.get(args.verb, args.verb + "ed"))
    return 0


def _status(args: argparse.Namespace) -> int:
    host = _host(repair=False)
    from freight.host import report

    info = report.instance_info(host, host.instance(args.name), detail=True)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(_status_text(info))
    return 0


def _status_text(info: dict[str, Any]) -> str:
    state = f"{info['state']} ({info['sub_state']})" if info["state"] else f"unknown: {info['systemd']}"
    if info["main_pid"]:
        state += f", main PID {info['main_pid']}"
    version = info["version"] + (f" (moves to {info['pending']} at its next start)" if info["pending"] else "")
    if info["pinned"]:
        version += f" (pinned by a rollback{'; ' + info['newer'] + ' is installed' if info['newer'] else ''}: 'freight instance unpin {info['name']}')"
    lines = [
        f"{info['name']}  (image {info['image']}{', overlay ' + info['overlay'] + ' ' + str(info['overlay_version']) if info['overlay'] else ''}, unit {info['unit']})",
        f"  state:     {state}",
        f"  enabled:   {info['enabled']}",
        f"  version:   {version}",
        f"  storage:   {info['location']}",
        f"  addresses: {' '.join(info['addresses']) or '-'}",
        f"  settings:  {info['settings']}",
    ]
    lines += [f"  state:     {path} <- {where}" for path, where in info["state_paths"].items()]
    lines.append(f"  slice:     {info['slice']}")
    lines += [f"  limit:     {key}={limit['value']} ({limit['source']})" for key, limit in info["limits"].items()]
    return "\n".join(lines)


def _purge(args: argparse.Namespace) -> int:
    host = _host(repair=False)  # it removes what it names, and says so
    from freight.host import instances
    from freight.host.registry import InstanceRecord

    from freight.host import manage

    with host.locked():
        removed = manage.purge_half_made(host, args.name)
        record = host.registry.get(InstanceRecord, args.name)
        if record is not None:
            raise UsageError(
                f"{args.name} is still installed (image {record.image}); remove it first "
                f"(dnf remove container-{record.image}): purge only removes the state a removed container left"
            )
        if instances.purge_state(host, args.name):
            removed.append("its state")
        if not removed:
            raise FreightError(f"there is no kept state or half-made image of {args.name} on this host")
    flog.step("%s: removed %s", args.name, " and ".join(removed))
    return 0


def _repair(args: argparse.Namespace) -> int:
    host = _host(repair=False)
    from freight.host import repair, rpmdb

    with rpmdb.held(), host.locked():
        done = [f for f in (repair.repair(host, f.image) for f in repair.findings(host)) if f is not None]
    left = repair.findings(host)
    for finding in left:
        flog.log.error("%s", finding.explain())
    if not done and not left:
        flog.step("every image is in step with rpm's database")
    return 1 if left else 0


def _rollback(args: argparse.Namespace) -> int:
    host = _host()
    from freight.host import manage

    done = manage.rollback(host, args.name)
    print(done.explain())
    return 0


def _instance_create(args: argparse.Namespace) -> int:
    host = _host()
    from freight.host import manage

    record = manage.create(host, args.image, args.new)
    what = f"{record.image} {record.snapshot}" + (f" with the overlay {record.overlay}" if record.overlay else "")
    flog.step("%s: made from %s; 'freight start %s' starts it", record.name, what, record.name)
    return 0


def _instance_remove(args: argparse.Namespace) -> int:
    host = _host()
    from freight.host import manage

    manage.remove(host, args.name, purge=args.purge)
    flog.step("%s: removed%s", args.name, " with its state" if args.purge else "")
    return 0


def _instance_unpin(args: argparse.Namespace) -> int:
    host = _host()
    from freight.host import manage

    record = manage.unpin(host, args.name)
    flog.step("%s: unpinned; it moves to its image's newest snapshot at its next start (now on %s)", record.name, record.snapshot)
    return 0

"""Fast tests of the runtime's pure logic: limits, paths inside a machine, users, slices, drop-ins."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

import pytest

from freight.common.errors import UsageError
from freight.host import nspawn, slices
from freight.host.nspawn import Machine
from freight.model import limits
from freight.runtime import execute, logs, rootfs, users


# --- limits -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("memory=512M", ("memory", "512M")),
    ("memory=infinity", ("memory", "infinity")),
    ("cpu_weight=50", ("cpu_weight", "50")),
    ("cpu_quota=150%", ("cpu_quota", "150%")),
    ("tasks=256", ("tasks", "256")),
    ("io_weight=100", ("io_weight", "100")),
])
def test_limits_parse(text: str, expected: tuple[str, str]) -> None:
    assert limits.parse_assignment(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("memory", "'memory': expected KEY=VALUE"),
    ("=5", "expected KEY=VALUE"),
    ("swap=1G", "swap: not a limit freight sets (one of memory, cpu_weight, cpu_quota, tasks, io_weight)"),
    ("memory=12Q", "memory=12Q: expected a size such as 512M"),
    ("cpu_weight=0", "cpu_weight=0: expected a CPU weight from 1 to 10000"),
    ("cpu_weight=10001", "expected a CPU weight"),
    ("cpu_quota=150", "cpu_quota=150: expected a share of one CPU"),
    ("cpu_quota=0%", "expected a share of one CPU"),
    ("tasks=-1", "tasks=-1: expected a number of tasks"),
    ("io_weight=lots", "io_weight=lots: expected an I/O weight"),
])
def test_bad_limits_are_usage_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        limits.parse_assignment(text)


def test_limits_are_all_checked_before_any_is_used() -> None:
    with pytest.raises(UsageError, match="cpu_quota=x"):
        limits.parse_assignments(["memory=1G", "cpu_quota=x"])
    with pytest.raises(UsageError, match="no limit given"):
        limits.parse_assignments([])
    assert limits.parse_assignments(["memory=1G", "memory=2G"]) == {"memory": "2G"}


def test_limits_as_the_slice_shows_them_over_dbus() -> None:
    assert limits.LIMITS["memory"].as_dbus("512M") == 512 << 20
    assert limits.LIMITS["memory"].as_dbus("1000") == 1000
    assert limits.LIMITS["memory"].as_dbus("infinity") == 2**64 - 1
    assert limits.LIMITS["cpu_quota"].as_dbus("150%") == 1_500_000
    assert limits.LIMITS["tasks"].as_dbus("64") == 64


def test_limit_directives_round_trip() -> None:
    values = {"io_weight": "10", "memory": "1G", "cpu_quota": "50%"}
    lines = limits.directives(values)
    assert lines == ["MemoryMax=1G", "CPUQuota=50%", "IOWeight=10"]  # in the table's order
    assert limits.read_dropin("[Slice]\n" + "\n".join(lines) + "\nOther=1\n") == values
    assert limits.from_manifest({"memory": "512M", "cpu_weight": 100}) == {"memory": "512M", "cpu_weight": "100"}


# --- the slice and its drop-ins -----------------------------------------------------------------


def test_slice_names_escape_a_dash() -> None:
    assert nspawn.slice_name("web") == "freight-web.slice"
    assert nspawn.slice_name("web-app") == "freight-web\\x2dapp.slice"  # not a child slice of freight-web
    assert nspawn.escape("a.b-c") == "a.b\\x2dc"


def ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def machine(run: dict) -> Machine:
    return Machine(instance="web-app", image="web", evr="1.0-1", run=run, private_users="pick")


def test_the_manifests_limits_sit_on_the_slice_and_the_service_is_in_it() -> None:
    m = machine({"command": ["/bin/httpd"], "limits": {"memory": "512M", "cpu_quota": "150%", "io_weight": 50, "tasks": 9}})
    unit = ini(m.dropin("/usr/bin/freight-host-hook"))
    assert unit["Service"]["Slice"] == "freight-web\\x2dapp.slice"
    assert "MemoryMax" not in unit["Service"]
    sl = ini(m.slice_dropin())["Slice"]
    assert dict(sl) == {"MemoryMax": "512M", "CPUQuota": "150%", "TasksMax": "9", "IOWeight": "50"}


def test_an_idle_machine_runs_the_hosts_catatonit_as_root() -> None:
    settings = ini(machine({"idle": True, "user": "www"}).settings())
    assert settings["Exec"]["Boot"] == "no"
    assert settings["Exec"]["Parameters"] == '"/run/freight-init" "-P"'
    assert "User" not in settings["Exec"]
    assert settings["Files"]["BindReadOnly"] == "/usr/bin/catatonit:/run/freight-init"


def test_limits_in_force_say_where_each_comes_from(tmp_path: Path) -> None:
    from hostfixtures import make_host

    cfg = make_host(tmp_path / "h", "dir", extra=f"runtime_units_dir = {tmp_path}/run\n").cfg
    path = nspawn.slice_dropin_path(cfg, "web")
    path.parent.mkdir(parents=True)
    path.write_text("[Slice]\nMemoryMax=512M\nCPUWeight=100\n")
    path, before = slices.write_set(cfg, "web", {"memory": "256M"}, runtime=False)
    assert before is None
    _, before = slices.write_set(cfg, "web", {"tasks": "10"}, runtime=False)  # merged with what set said before
    assert "MemoryMax=256M" in (before or "")
    slices.write_set(cfg, "web", {"memory": "128M"}, runtime=True)
    assert slices.in_force(cfg, "web") == {
        "memory": {"value": "128M", "source": "set --runtime"},
        "cpu_weight": {"value": "100", "source": "manifest"},
        "tasks": {"value": "10", "source": "set"},
    }
    assert slices.drop_runtime(cfg, "web") and not slices.drop_runtime(cfg, "web")
    assert slices.in_force(cfg, "web")["memory"] == {"value": "256M", "source": "set"}
    nspawn.remove(cfg, "web")
    assert not nspawn.slice_dropin_dir(cfg.units_dir, "web").exists()


# --- paths, commands and users inside a machine --------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "usr/bin").mkdir(parents=True)
    (r / "etc").mkdir()
    (r / "var/log").mkdir(parents=True)
    os.symlink("usr/bin", r / "bin")
    (r / "usr/bin/busybox").write_text("")
    os.chmod(r / "usr/bin/busybox", 0o755)
    os.symlink("busybox", r / "usr/bin/sh")
    (r / "etc/motd").write_text("")
    os.symlink("/etc/shadow", r / "var/log/evil")  # absolute: must mean the machine's /etc/shadow
    os.symlink("../../../../../../etc", r / "var/log/up")  # climbing stops at the machine's root
    (r / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/ash\nwww:x:81:82::/srv/www:/sbin/nologin\n")
    return r


def test_paths_resolve_inside_the_root(root: Path) -> None:
    assert rootfs.resolve(root, "/bin/sh") == "/usr/bin/busybox"
    assert rootfs.resolve(root, "/bin/sh", follow_last=False) == "/usr/bin/sh"
    assert rootfs.resolve(root, "/var/log/evil") == "/etc/shadow"
    assert rootfs.resolve(root, "/var/log/up/motd") == "/etc/motd"
    assert rootfs.resolve(root, "/../../etc/motd") == "/etc/motd"
    assert rootfs.resolve(root, "/var/new/../x") == "/var/x"
    assert rootfs.host_path(root, "/var/log/evil") == root / "etc/shadow"
    with pytest.raises(UsageError, match="expected an absolute path"):
        rootfs.resolve(root, "etc/motd")


def test_symlink_loops_are_an_error(root: Path) -> None:
    os.symlink("b", root / "a")
    os.symlink("a", root / "b")
    with pytest.raises(UsageError, match="too many levels"):
        rootfs.resolve(root, "/a")


def test_commands_are_found_in_the_machines_path(root: Path) -> None:
    assert rootfs.which(root, "sh", "/usr/local/bin:/usr/bin") == "/usr/bin/sh"
    assert rootfs.which(root, "/bin/sh", "") == "/bin/sh"
    assert rootfs.which(root, "nope", "/usr/bin") is None
    assert rootfs.which(root, "motd", "/etc") == "/etc/motd"
    assert not rootfs.is_executable(root, "/etc/motd")


def test_users_come_from_the_machines_passwd(root: Path) -> None:
    assert users.lookup(root, "www") == users.User("www", 81, 82, "/srv/www", "/sbin/nologin")
    assert users.lookup(root, "81").name == "www"
    assert users.lookup(root, None).shell == "/bin/ash"
    assert users.lookup(root, "1234") == users.User("1234", 1234, 1234, "/", "/bin/sh")
    with pytest.raises(UsageError, match="nobody: no such user in the machine's /etc/passwd"):
        users.lookup(root, "nobody")
    (root / "etc/passwd").unlink()
    assert users.lookup(root, "root").shell == "/bin/sh"  # no passwd at all: root, with /bin/sh


def test_exec_words_reach_the_command_unexpanded() -> None:
    assert execute.no_expansion("kill -TERM $$; echo ${HOME} $X") == "kill -TERM $$$$; echo $${HOME} $$X"


def test_exec_environment_words() -> None:
    assert execute.parse_env(["A=1", "B_2=x=y", "C="]) == {"A": "1", "B_2": "x=y", "C": ""}
    for bad in ("A", "=1", "1A=x", "A-B=x"):
        with pytest.raises(UsageError, match="expected NAME=VALUE"):
            execute.parse_env([bad])


def test_log_entries_name_their_source() -> None:
    assert logs.source({"FREIGHT_MACHINE": "web", "MESSAGE": "x"}) == "freight"
    assert logs.source({"_SYSTEMD_UNIT": "freight-exec-web-1.service"}) == "exec"
    assert logs.source({"_SYSTEMD_UNIT": "systemd-nspawn@web.service"}) == "payload"
    assert logs.message({"MESSAGE": [104, 105]}) == "hi"
    argv = logs.journalctl("web-app", True, 5, "1 h ago")
    assert "_SYSTEMD_SLICE=freight-web\\x2dapp.slice" in argv and "FREIGHT_MACHINE=web-app" in argv
    assert argv[-5:] == ["--follow", "--lines", "5", "--since", "1 h ago"]


def test_cp_specs() -> None:
    from freight.runtime import copy

    assert copy.parse_spec("web:/etc/x") == copy.Spec("web", "/etc/x")
    assert copy.parse_spec("-").stream
    assert copy.parse_spec("./a:b") == copy.Spec(None, "./a:b")  # a host path with a ':'
    assert copy.parse_spec("/a:b") == copy.Spec(None, "/a:b")
    with pytest.raises(UsageError, match="must be absolute"):
        copy.parse_spec("web:etc")
    with pytest.raises(UsageError, match="one side of 'freight cp' must be NAME:PATH"):
        copy.parse_pair("a", "b")
    with pytest.raises(UsageError, match="one side"):
        copy.parse_pair("web:/a", "db:/b")
    assert copy.top_name("/a/b/") == "b" and copy.top_name("/") == "."

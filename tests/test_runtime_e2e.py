"""Issue 16 in the booted test host: exec, shell, logs, tail and set on real nspawn machines.

Two busybox machines, installed by dnf from the signed repository (see
e2ehost): `idler` (`run: {idle: true}`, a private user namespace, dir
storage: zfs-fuse cannot shift owners) and the demo `webapp` (httpd as the
user www, read-only, zfs storage, so no user namespace). Nothing inside
either has systemd, D-Bus or a shell beyond busybox's.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from conftest import write_manifest
from e2ehost import PARENT, Published, clear, configure, dnf, fetch, letting_go, sh_status

if TYPE_CHECKING:
    from freight.testhost import TestHost

pytestmark = pytest.mark.slow

IDLE_STATE = "/var/lib/app"
SLICES = "/sys/fs/cgroup/freight.slice"


def idler_manifest(published: Published):  # type: ignore[no-untyped-def]
    return write_manifest(published.work / "idler", f"""\
        name: idler
        version: "1.0"
        summary: A machine with no command
        license: MIT
        repos:
          - name: demo
            baseurl: {published.demo.as_uri()}
        packages: [demo-base]
        run:
          idle: true
          read_only: true
          private_users: pick
          state: [{IDLE_STATE}]
          limits: {{memory: 256M, cpu_quota: 150%, io_weight: 200}}
          autostart: true
        """)


@pytest.fixture(scope="module")
def machines(e2e_host: TestHost, published: Published) -> Iterator[TestHost]:
    """idler on dir storage and webapp on zfs, both running; removed at the end."""
    host = e2e_host
    published.publish(idler_manifest(published))
    configure(host, "dir")
    dnf(host, "install", "container-idler")
    configure(host, "zfs")
    host.run(["zfs", "create", "-o", "mountpoint=none", PARENT])
    dnf(host, "install", "container-webapp")
    fetch(host, "demo-www")
    try:
        yield host
    finally:
        clear(host)
        letting_go(host, f"zfs destroy -r {PARENT}")


def freight_status(host: TestHost, *args: str) -> tuple[int, str]:
    return sh_status(host, "freight " + " ".join(args))


def leader(host: TestHost, name: str) -> int:
    return int(host.run(["machinectl", "show", name, "--property=Leader", "--value"]))


def exec_units(host: TestHost) -> list[str]:
    return host.sh("systemctl list-units --all --plain --no-legend 'freight-exec-*' | awk '{print $1}'").split()


def wait_for(what: str, check, timeout: float = 15):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := check()):
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout} s")


# --- exec ---------------------------------------------------------------------------------


def test_exec_runs_as_the_machines_users_in_its_slice(machines: TestHost) -> None:
    host = machines
    assert host.run(["freight", "exec", "idler", "--", "id"]).startswith("uid=0(root) gid=0(root)")
    assert "(www)" in host.run(["freight", "exec", "webapp", "--", "id"])  # the manifest's run.user
    assert host.run(["freight", "exec", "-u", "root", "webapp", "--", "id"]).startswith("uid=0(root)")
    # idler has a user namespace of its own (dir storage), webapp none (zfs-fuse cannot shift)
    inside, outside, _ = host.run(["freight", "exec", "idler", "--", "cat", "/proc/self/uid_map"]).split()
    assert inside == "0" and int(outside) >= 65536, outside
    assert host.run(["freight", "exec", "webapp", "--", "cat", "/proc/self/uid_map"]).split()[:2] == ["0", "0"]
    # the machine's pid namespace: its init is PID 1 there
    assert host.run(["freight", "exec", "idler", "--", "cat", "/proc/1/cmdline"]).startswith("/run/freight-init")
    # its cgroup: a unit of the machine's slice, beside the payload
    cgroup = host.run(["freight", "exec", "idler", "--", "cat", "/proc/self/cgroup"]).splitlines()[-1]
    assert re.fullmatch(r"0::/\.\./\.\./freight-exec-idler-[0-9a-f]+\.service", cgroup), cgroup
    # -w and -e, and the manifest's working directory and environment by default
    assert host.run(["freight", "exec", "-w", IDLE_STATE, "-e", "A=b c", "idler", "--", "sh", "-c", 'pwd; echo "$A"']) == f"{IDLE_STATE}\nb c\n"


def test_exec_processes_are_units_of_the_slice_bound_to_the_machine(machines: TestHost) -> None:
    host = machines
    host.sh("(freight exec idler -- sleep 30 >/dev/null 2>&1 &)")
    (unit,) = wait_for("exec unit", lambda: exec_units(host) and [u for u in exec_units(host) if u.endswith(".service")])
    props = dict(line.split("=", 1) for line in host.run(
        ["systemctl", "show", unit, "-p", "Slice", "-p", "BindsTo", "-p", "ControlGroup"]).splitlines())
    assert props["Slice"] == "freight-idler.slice", props
    assert "systemd-nspawn@idler.service" in props["BindsTo"].split(), props
    assert props["ControlGroup"].startswith("/freight.slice/freight-idler.slice/freight-exec-idler-"), props
    host.sh(f"systemctl kill --signal=KILL {unit}")
    wait_for("the exec unit gone", lambda: not exec_units(host))


def test_stdin_passes_only_with_i(machines: TestHost) -> None:
    host = machines
    assert host.sh("printf 'line one\\nline two\\n' | freight exec -i idler -- cat") == "line one\nline two\n"
    assert host.sh("echo unseen | freight exec idler -- cat") == ""  # without -i: /dev/null
    assert host.sh("freight exec idler -- sh -c 'echo out; echo err >&2' 2>/var/tmp/err") == "out\n"
    assert host.run(["cat", "/var/tmp/err"]) == "err\n"


def test_five_parallel_execs_keep_their_own_exit_status(machines: TestHost) -> None:
    host = machines
    start = time.monotonic()
    out = host.sh(
        "for n in 0 1 2 3 4; do (rc=0; freight exec idler -- sh -c \"sleep 1; exit $n\" || rc=$?; echo $n:$rc >> /var/tmp/par) & done; wait; "
        "sort /var/tmp/par; rm /var/tmp/par"
    )
    assert out.split() == ["0:0", "1:1", "2:2", "3:3", "4:4"], out
    assert time.monotonic() - start < 4.5  # in parallel: not five seconds one after another
    assert json.loads(host.run(["freight", "status", "--json", "idler"]))["state"] == "active"


def test_exec_exit_statuses_and_bad_input(machines: TestHost) -> None:
    host = machines
    assert freight_status(host, "exec", "idler", "--", "sh", "-c", "'exit 42'")[0] == 42
    assert freight_status(host, "exec", "idler", "--", "sh", "-c", "'kill -TERM $$'")[0] == 143  # 128 + SIGTERM
    assert host.run(["freight", "exec", "-e", "X=1", "idler", "--", "sh", "-c", "echo $X ${X}y $$x"]).split()[:2] == ["1", "1y"]
    code, out = freight_status(host, "exec", "idler", "--", "no-such-command")
    assert code == 127 and out.strip() == "error: no-such-command: no such command in idler (PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)", out
    code, out = freight_status(host, "exec", "idler", "--", "/etc/passwd")
    assert code == 126 and "not executable" in out, out
    code, out = freight_status(host, "exec", "nosuch", "--", "id")
    assert code == 1 and out.strip() == "error: no freight instance named nosuch on this host; 'freight list' shows them", out
    code, out = freight_status(host, "exec", "-w", "/nowhere", "idler", "--", "id")
    assert code == 2 and out.strip() == "error: -w /nowhere: no such folder in idler", out
    code, out = freight_status(host, "exec", "-u", "nobody-here", "idler", "--", "id")
    assert code == 2 and "nobody-here: no such user" in out, out
    code, out = freight_status(host, "exec", "idler")
    assert code == 2 and "no command given" in out, out


def test_a_pty_with_the_terminals_size(machines: TestHost) -> None:
    host = machines
    host.write_text("/var/tmp/pty.sh", "stty cols 91 rows 33\nfreight exec -t idler -- sh -c '[ -t 0 ] && [ -t 1 ] && echo both-tty; tty; stty size; exit 3'\necho rc=$?\n")
    out = host.sh("script -qec 'sh /var/tmp/pty.sh' /dev/null </dev/null")
    assert "both-tty" in out and "33 91" in out and "rc=3" in out, out
    assert re.search(r"^/dev/pts/[0-9]+\r?$", out, re.M), out  # one of the machine's own ptys


@pytest.mark.parametrize("sig", ["TERM", "KILL"])
def test_killing_freight_exec_leaves_no_process(machines: TestHost, sig: str) -> None:
    host = machines
    pid = host.sh("freight exec idler -- sleep 300 >/dev/null 2>&1 & echo $!").strip()
    wait_for("sleep in the slice", lambda: "sleep 300" in host.sh(f"cat {SLICES}/freight-idler.slice/*/cgroup.procs | xargs -r -n1 -I@ cat /proc/@/cmdline | tr '\\0' ' '; echo"))
    host.sh(f"kill -{sig} {pid}")
    wait_for("no exec unit left", lambda: not exec_units(host))
    assert "sleep" not in host.sh(f"cat {SLICES}/freight-idler.slice/*/cgroup.procs | xargs -r -n1 -I@ cat /proc/@/comm; echo")
    assert json.loads(host.run(["freight", "status", "--json", "idler"]))["state"] == "active"


def test_an_idle_machine_has_only_its_init_and_stays_up(machines: TestHost) -> None:
    host = machines
    init = leader(host, "idler")
    procs = host.run(["cat", f"{SLICES}/freight-idler.slice/systemd-nspawn@idler.service/payload/cgroup.procs"]).split()
    assert procs == [str(init)], procs
    assert host.run(["cat", f"/proc/{init}/cmdline"]).split("\0")[:2] == ["/run/freight-init", "-P"]
    host.run(["freight", "exec", "idler", "--", "sh", "-c", "sleep 0.2 & exit 0"])
    time.sleep(0.5)
    assert json.loads(host.run(["freight", "status", "--json", "idler"]))["state"] == "active"
    assert leader(host, "idler") == init


# --- logs and tail --------------------------------------------------------------------------


def test_logs_follow_across_a_restart(machines: TestHost) -> None:
    host = machines
    def payload_says(word: str) -> None:
        """WORD on the payload's own stderr (httpd's, PID 1 in the machine), as if httpd printed it."""
        host.run(["freight", "exec", "-u", "root", "webapp", "--", "sh", "-c", f"echo {word} > /proc/1/fd/2"])

    host.sh("(freight logs -f --json webapp > /var/tmp/logs.json 2>&1 &) ; sleep 1")
    try:
        payload_says("before-restart")
        wait_for("the line in the logs", lambda: "before-restart" in host.run(["cat", "/var/tmp/logs.json"]))
        host.run(["freight", "restart", "webapp"])
        fetch(host, "demo-www")
        payload_says("after-restart")
        wait_for("the line after the restart", lambda: "after-restart" in host.run(["cat", "/var/tmp/logs.json"]))
    finally:
        host.sh("pkill -f 'freight logs -f --json webapp' || true")
    items = [json.loads(line) for line in host.run(["cat", "/var/tmp/logs.json"]).splitlines()]
    assert all(set(i) == {"time", "source", "message"} for i in items), items
    assert {"payload", "freight"} <= {i["source"] for i in items}, items
    assert any(i["source"] == "freight" and i["message"] == "starting" for i in items), items
    text = host.run(["freight", "logs", "-n", "50", "webapp"])
    assert "freight " in text and "installed container-webapp" in host.run(["freight", "logs", "webapp"])


def test_tail_follows_a_rotated_file_and_stays_in_the_machine(machines: TestHost) -> None:
    host = machines
    log = f"{IDLE_STATE}/app.log"
    host.run(["freight", "exec", "idler", "--", "sh", "-c", f"echo one > {log}"])
    host.sh(f"(freight tail -F idler {log} > /var/tmp/tail.out 2>&1 &); sleep 0.5")
    try:
        host.run(["freight", "exec", "idler", "--", "sh", "-c", f"echo two >> {log}"])
        wait_for("two", lambda: "two" in host.run(["cat", "/var/tmp/tail.out"]))
        host.run(["freight", "exec", "idler", "--", "sh", "-c", f"busybox mv {log} {log}.1; echo three > {log}"])
        wait_for("three, after the rotation", lambda: "three" in host.run(["cat", "/var/tmp/tail.out"]))
    finally:
        host.sh("pkill -f 'freight tail -F idler' || true")
    assert host.run(["cat", "/var/tmp/tail.out"]).split() == ["one", "two", "three"]
    # a symlink to an absolute path is followed inside the machine, never on the host
    host.run(["freight", "exec", "idler", "--", "busybox", "ln", "-sf", "/etc/os-release", f"{IDLE_STATE}/link"])
    assert "freight-demo" in host.run(["freight", "tail", "-n", "50", "idler", f"{IDLE_STATE}/link"]).lower()
    code, out = freight_status(host, "tail", "idler", "/no/such/file")
    assert code == 1 and out.strip() == "error: idler:/no/such/file: no such file in the machine", out


# --- limits ---------------------------------------------------------------------------------


def slice_property(host: TestHost, prop: str, name: str = "idler") -> int:
    """PROP of freight-NAME.slice read over D-Bus (pystemd in the host)."""
    return int(host.run(["python3", "-c", (
        "from pystemd.systemd1 import Unit\n"
        f"u = Unit(b'freight-{name}.slice'); u.load(); print(u.Slice.{prop})")]))


def test_set_memory_live_survives_reload_and_restart(machines: TestHost) -> None:
    host = machines
    assert slice_property(host, "MemoryMax") == 256 * 2**20  # the manifest's
    assert slice_property(host, "CPUQuotaPerSecUSec") == 1_500_000
    assert slice_property(host, "IOWeight") == 200
    host.run(["freight", "set", "idler", "memory=100M", "tasks=64"])
    assert slice_property(host, "MemoryMax") == 100 * 2**20 and slice_property(host, "TasksMax") == 64
    cgroup = f"{SLICES}/freight-idler.slice"
    procs = host.sh(f"cat {cgroup}/*/cgroup.procs {cgroup}/*/*/cgroup.procs 2>/dev/null")
    assert str(leader(host, "idler")) in procs.split()  # the payload is under the slice the limits sit on
    if "memory" in host.run(["cat", f"{cgroup}/cgroup.controllers"]).split():
        assert host.run(["cat", f"{cgroup}/memory.max"]).strip() == str(100 * 2**20)
    host.run(["systemctl", "daemon-reload"])
    assert slice_property(host, "MemoryMax") == 100 * 2**20
    host.run(["freight", "restart", "idler"])
    assert slice_property(host, "MemoryMax") == 100 * 2**20
    limits = json.loads(host.run(["freight", "status", "--json", "idler"]))["limits"]
    assert limits["memory"] == {"value": "100M", "source": "set"} and limits["cpu_quota"] == {"value": "150%", "source": "manifest"}
    # --runtime: at once, and gone at the next start
    host.run(["freight", "set", "--runtime", "idler", "memory=80M"])
    assert slice_property(host, "MemoryMax") == 80 * 2**20
    assert "memory=80M (set --runtime)" in host.run(["freight", "status", "idler"])
    host.run(["freight", "restart", "idler"])
    assert slice_property(host, "MemoryMax") == 100 * 2**20
    # bad input changes nothing
    before = host.run(["cat", "/etc/systemd/system/freight-idler.slice.d/50-set.conf"])
    code, out = freight_status(host, "set", "idler", "memory=64M", "cpu_quota=lots")
    assert code == 2 and out.strip() == "error: cpu_quota=lots: expected a share of one CPU such as 50% or 150% (at least 1%), or infinity", out
    code, out = freight_status(host, "set", "idler", "memory=99999999999T")  # parses, but overflows: systemd says no
    assert code == 2 and out.strip().startswith("error: systemd refused memory=99999999999T (nothing changed"), out
    assert slice_property(host, "MemoryMax") == 100 * 2**20
    code, out = freight_status(host, "set", "idler", "swap=1G")
    assert code == 2 and "swap: not a limit freight sets" in out, out
    assert host.run(["cat", "/etc/systemd/system/freight-idler.slice.d/50-set.conf"]) == before


def test_an_exec_past_the_memory_limit_dies_while_the_machine_lives(machines: TestHost) -> None:
    host = machines
    controllers = host.run(["cat", f"{SLICES}/freight-idler.slice/cgroup.controllers"]).split()
    if "memory" not in controllers:
        pytest.skip("the test host has no memory controller (this machine keeps it in a cgroup v1 hierarchy "
                    "nspawn does not hand to the booted host): MemoryMax cannot bind here")
    host.run(["freight", "set", "idler", "memory=32M"])
    code, _ = freight_status(host, "exec", "idler", "--", "sh", "-c", "'x=a; while :; do x=$x$x; done'")
    assert code == 137
    assert json.loads(host.run(["freight", "status", "--json", "idler"]))["state"] == "active"


def test_exec_and_tail_refuse_a_stopped_machine(machines: TestHost) -> None:
    host = machines
    host.run(["freight", "stop", "idler"])
    try:
        code, out = freight_status(host, "exec", "idler", "--", "id")
        assert code == 1 and out.strip() == "error: idler is not running: start it first with 'freight start idler'", out
        code, out = freight_status(host, "tail", "idler", "/etc/passwd")
        assert code == 1 and "start it first with 'freight start idler'" in out, out
    finally:
        host.run(["freight", "start", "idler"])


# --- cp -------------------------------------------------------------------------------------------


def test_cp_both_ways_with_modes_times_and_owners(machines: TestHost) -> None:
    host = machines
    host.sh("rm -rf /var/tmp/src /var/tmp/back; mkdir -p /var/tmp/src/sub; echo hi > /var/tmp/src/a; echo deep > /var/tmp/src/sub/b; "
            "chmod 600 /var/tmp/src/a; chown 1234:1234 /var/tmp/src/sub/b; touch -d '2020-01-02 03:04:05' /var/tmp/src/a")
    ls = ["freight", "exec", "idler", "--", "ls", "-ln", "--full-time"]
    # a file into a folder, a folder under a new name, with -a the owners kept
    host.run(["freight", "cp", "/var/tmp/src/a", f"idler:{IDLE_STATE}/"])
    host.run(["freight", "cp", "/var/tmp/src", f"idler:{IDLE_STATE}/tree"])
    host.run(["freight", "cp", "-a", "/var/tmp/src", "idler:/tmp/kept"])
    one = host.run([*ls, f"{IDLE_STATE}/a"]).split()
    assert one[0] == "-rw-------" and one[2:4] == ["0", "0"] and "2020-01-02" in one, one
    assert host.run([*ls, f"{IDLE_STATE}/tree/sub/b"]).split()[2:4] == ["0", "0"]  # the machine's root, without -a
    assert host.run([*ls, "/tmp/kept/sub/b"]).split()[2:4] == ["1234", "1234"]
    # on the host, the machine's root is the user namespace's first uid, not the host's root
    outside = host.sh(f"stat -c %u /proc/{leader(host, 'idler')}/root{IDLE_STATE}/tree/sub/b").strip()
    assert int(outside) >= 65536 or outside == "0", outside  # 0 on an idmapped mount's backing files
    # out of the machine: a folder, and a tar stream
    host.run(["freight", "cp", f"idler:{IDLE_STATE}/tree", "/var/tmp/back"])
    assert host.run(["cat", "/var/tmp/back/sub/b"]) == "deep\n"
    assert host.sh("stat -c '%a %u' /var/tmp/back/a").split() == ["600", "0"]
    listing = host.sh("freight cp idler:/etc/passwd - | tar -tvf -")
    assert listing.split()[0] == "-rw-r--r--" and listing.split()[-1] == "passwd", listing
    host.sh("tar -C /var/tmp -cf - src | freight cp - idler:/tmp")
    assert host.run(["freight", "exec", "idler", "--", "cat", "/tmp/src/sub/b"]) == "deep\n"
    # into a stopped machine's state path
    host.run(["freight", "stop", "idler"])
    try:
        host.run(["freight", "cp", "/var/tmp/src/a", f"idler:{IDLE_STATE}/while-stopped"])
    finally:
        host.run(["freight", "start", "idler"])
    assert host.run(["freight", "exec", "idler", "--", "cat", f"{IDLE_STATE}/while-stopped"]) == "hi\n"


def test_cp_refuses_the_read_only_image_and_bad_specs(machines: TestHost) -> None:
    host = machines
    code, out = freight_status(host, "cp", "/etc/hostname", "idler:/etc/")
    assert code == 1 and out.strip() == f"error: idler:/etc/ is on the machine's read-only image; its writable paths are: {IDLE_STATE}, /tmp", out
    code, out = freight_status(host, "cp", "/etc/hostname", "/var/tmp/x")
    assert code == 2 and "one side of 'freight cp' must be NAME:PATH" in out, out
    code, out = freight_status(host, "cp", "/etc/hostname", "idler:relative")
    assert code == 2 and "must be absolute" in out, out
    code, out = freight_status(host, "cp", "idler:/no/such", "/var/tmp/x")
    assert code == 1 and "no such file or folder" in out, out


# --- the bench figure -------------------------------------------------------------------------------


def test_bench_exec_against_nsenter(machines: TestHost, capsys: pytest.CaptureFixture[str]) -> None:
    """`freight exec NAME true` against its floor, `nsenter -t LEADER -a true`: medians of 15 runs
    inside the host (`true` is busybox sh's: demo-base has no true applet)."""
    host = machines
    script = (
        "t() { s=$(date +%s%N); \"$@\" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }; "
        f"L={leader(host, 'idler')}; "
        "for i in $(seq 15); do echo exec $(t freight exec idler -- sh -c true); done; "
        "for i in $(seq 15); do echo nsenter $(t nsenter -t $L -a -r /bin/sh -c true); done"
    )
    times: dict[str, list[int]] = {"exec": [], "nsenter": []}
    for line in host.sh(script).splitlines():
        kind, usec = line.split()
        times[kind].append(int(usec))
    median = {k: sorted(v)[len(v) // 2] / 1e6 for k, v in times.items()}
    with capsys.disabled():
        print(f"\nbench: freight exec idler true {median['exec']:.3f} s, nsenter -t LEADER -a true {median['nsenter']:.3f} s (medians of 15)")
    assert median["exec"] < 2.0, median


def test_shell_is_an_interactive_pty_with_the_users_shell(machines: TestHost) -> None:
    host = machines
    host.write_text("/var/tmp/shell.sh", "printf 'echo shell-$((6*7))\\nexit 5\\n' | freight shell idler\necho rc=$?\n")
    out = host.sh("script -qec 'sh /var/tmp/shell.sh' /dev/null </dev/null")
    assert "shell-42" in out and "rc=5" in out, out
    code, out = freight_status(host, "shell", "-u", "nobody-here", "idler")
    assert code == 2 and "nobody-here: no such user" in out, out

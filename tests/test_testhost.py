"""The booted test host: systemd runs, nested machines start, pystemd and zfs-fuse work, nothing leaks.

These are the promises the host tests of issue 4 stand on, each shown with
the real tools inside a real booted host.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from conftest import HOST_SHARE

from freight.common.run import CommandError, spawn
from freight.testhost import Bind, TestHost, image, machine, prune

slow = pytest.mark.slow

NESTED_ROOT = """
root=/var/lib/machines/$1
mkdir -p $root/usr/bin $root/etc /etc/systemd/nspawn
cp /bin/busybox $root/usr/bin/busybox
ln -sfn usr/bin $root/bin
for applet in sh sleep cat; do ln -sf busybox $root/usr/bin/$applet; done
echo ID=nested > $root/etc/os-release
printf '[Exec]\\nBoot=no\\nParameters=/bin/sleep infinity\\n' > /etc/systemd/nspawn/$1.nspawn
"""


# --- the session's host ---------------------------------------------------------


@slow
def test_host_runs_systemd(test_host: TestHost) -> None:
    assert test_host.run(["systemctl", "is-system-running"]).strip() == "running", test_host.failed_units
    assert test_host.run(["cat", "/proc/1/comm"]).strip() == "systemd"
    assert test_host.run(["hostname"]).strip() == "freight-testhost"


@slow
def test_commands_get_a_clean_environment(test_host: TestHost) -> None:
    env = dict(line.split("=", 1) for line in test_host.run(["env"]).splitlines())
    assert env["HOME"] == "/root"
    assert "PYTHONPATH" not in env and "VIRTUAL_ENV" not in env and "FREIGHT_CACHE_DIR" not in env
    assert test_host.run(["env"], env={"EXTRA": "1"}).count("EXTRA=1") == 1


@slow
def test_a_failing_command_raises_with_its_stderr(test_host: TestHost) -> None:
    with pytest.raises(CommandError) as caught:
        test_host.sh("echo oops >&2; exit 3")
    assert caught.value.returncode == 3
    assert "oops" in caught.value.stderr


@slow
def test_files_go_in_and_binds_show_outside_folders(test_host: TestHost, host_share: Path, tmp_path: Path) -> None:
    test_host.write_text("/etc/freight-test/hello.conf", "hello\n", mode=0o600)
    assert test_host.run(["stat", "-c", "%a %U %s", "/etc/freight-test/hello.conf"]).split() == ["600", "root", "6"]
    (tmp_path / "tree/sub").mkdir(parents=True)
    (tmp_path / "tree/sub/f").write_text("in a tree")
    test_host.copy_in(tmp_path / "tree", "/srv/copied")
    assert test_host.run(["cat", "/srv/copied/sub/f"]) == "in a tree"

    (host_share / "visible.txt").write_text("from outside")
    inside = test_host.inside(host_share / "visible.txt")
    assert inside == f"{HOST_SHARE}/visible.txt"
    assert test_host.run(["cat", inside]) == "from outside"
    with pytest.raises(CommandError, match="Read-only file system"):
        test_host.run(["touch", f"{HOST_SHARE}/new"])


@slow
def test_machinectl_starts_a_nested_container(test_host: TestHost) -> None:
    """A machine like the ones freight-host makes: .nspawn settings, systemd-nspawn@.service, a veth link."""
    test_host.run(["sh", "-ec", NESTED_ROOT, "sh", "nest"])
    try:
        test_host.run(["machinectl", "start", "nest"])
        assert test_host.run(["machinectl", "show", "nest", "--property=State", "--value"]).strip() == "running"
        leader = test_host.run(["machinectl", "show", "nest", "--property=Leader", "--value"]).strip()
        assert test_host.run(["cat", f"/proc/{leader}/cmdline"]).split("\0")[:2] == ["/bin/sleep", "infinity"]
        assert test_host.run(["cat", f"/proc/{leader}/root/etc/os-release"]) == "ID=nested\n"
        # The default network of systemd-nspawn@.service: a veth pair, which needs the host's own network namespace.
        assert "ve-nest" in test_host.run(["ip", "-brief", "link"])
    finally:
        test_host.sh("machinectl terminate nest || true; rm -rf /var/lib/machines/nest /etc/systemd/nspawn/nest.nspawn")
    _wait_for(lambda: test_host.sh("systemctl is-active systemd-nspawn@nest.service || true").strip() != "active")
    test_host.run(["systemctl", "reset-failed"])  # a terminated machine counts as failed; the next test wants none


@slow
def test_pystemd_talks_to_the_hosts_systemd(test_host: TestHost) -> None:
    script = """
import json, pystemd.run
from pystemd.systemd1 import Manager, Unit
manager = Manager(); manager.load()
unit = Unit(b"dbus.service"); unit.load()
pystemd.run([b"/bin/sh", b"-c", b"echo ran > /run/pystemd-ran"], wait=True)
print(json.dumps({"version": manager.Manager.Version.decode(), "dbus": unit.Unit.ActiveState.decode()}))
"""
    answer = json.loads(test_host.run(["python3", "-c", script]))
    assert answer["version"].startswith("252")
    assert answer["dbus"] == "active"
    assert test_host.run(["cat", "/run/pystemd-ran"]) == "ran\n"  # a transient unit started over D-Bus


@slow
def test_zfs_fuse_makes_a_pool_with_datasets_snapshots_and_clones(test_host: TestHost) -> None:
    assert test_host.run(["systemctl", "is-active", "zfs-fuse.service"]).strip() == "active"
    test_host.sh("truncate -s 256M /var/tmp/testpool.img; zpool create -m /testpool testpool /var/tmp/testpool.img")
    try:
        test_host.sh(
            "zfs create testpool/image; echo v1 > /testpool/image/version; zfs snapshot testpool/image@1.0-1;"
            "zfs clone testpool/image@1.0-1 testpool/instance; echo changed > /testpool/instance/version"
        )
        listing = test_host.run(["zfs", "list", "-H", "-t", "all", "-o", "name"]).split()
        assert listing == ["testpool", "testpool/image", "testpool/image@1.0-1", "testpool/instance"]
        assert test_host.run(["cat", "/testpool/image/version"]) == "v1\n"  # the clone changed, not the image
    finally:
        # zfs-fuse may still hold the pool busy for a moment after the last read through its mount
        test_host.sh(
            "for try in 1 2 3 4 5 6 7 8 9 10; do zpool destroy testpool 2>/dev/null && break; sleep 1; done;"
            "! zpool list testpool >/dev/null 2>&1; rm -f /var/tmp/testpool.img"
        )


# --- freight itself, installed with dnf -------------------------------------------


@slow
def test_freight_rpms_install_with_dnf_and_run(freight_host: TestHost) -> None:
    assert freight_host.run(["freight", "--version"]).strip() == f"freight {_version()}"
    # dnf and rpm share one database, where /etc/rpm/macros.dbpath puts it (not Debian's ~/.rpmdb).
    assert freight_host.run(["rpm", "--eval", "%_dbpath"]).strip() == "/usr/lib/sysimage/rpm"
    assert freight_host.sh("ls /usr/lib/sysimage/rpm; test ! -e /root/.rpmdb").split()[0] == "rpmdb.sqlite"
    installed = freight_host.run(["rpm", "-q", "--qf", "%{NAME}\\n", "freight", "freight-host", "debian-host-provides"])
    assert installed.split() == ["freight", "freight-host", "debian-host-provides"]
    assert freight_host.run(["rpm", "-V", "freight", "freight-host"]) == ""  # every file as packaged
    assert freight_host.run(["rpm", "-qf", "--qf", "%{NAME}\\n", "/etc/freight/host.conf", "/var/lib/freight/images",
                             "/var/lib/freight/overlays"]).split() == ["freight-host"] * 3
    configs = freight_host.run(["rpm", "-q", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]", "freight-host"]).splitlines()
    assert [line for line in configs if "c" in line.split(" ", 1)[1]] == [  # %config(noreplace)
        "/etc/dnf/plugins/freight.conf cn", "/etc/freight/host.conf cn"]
    assert "/usr/share/man/man1/freight-start.1.gz d" in configs  # the man pages are documentation
    # dnf's plugin folder on the host's python; what it refuses: test_host_derivatives_e2e
    assert freight_host.run(["rpm", "-qf", "--qf", "%{NAME}", "/usr/lib/python3/dist-packages/dnf-plugins/freight.py"]) == "freight-host"
    if (Path(__file__).parent.parent / "freight/host").is_dir():  # the host side goes to freight-host
        owner = freight_host.run(["rpm", "-qf", "--qf", "%{NAME}", "/usr/lib/python3/dist-packages/freight/host/__init__.py"])
        assert owner == "freight-host"
    # freight's Python package is Debian's python's, not a copy in the source tree.
    assert freight_host.run(["python3", "-c", "import freight; print(freight.__file__)"]).startswith("/usr/lib/python3/")


@slow
def test_debian_host_provides_covers_every_requirement_of_freight(freight_rpms: list[Path]) -> None:
    """What freight's packages require on a host is exactly what debian-host-provides(-build) claim (or each other):
    the main package what freight-common and freight-host need, -build what freight adds."""
    from freight.common.run import run

    def query(rpm: Path, what: str) -> set[str]:
        return {line.split()[0] for line in run(["rpm", "-qp", f"--{what}", rpm]).stdout.splitlines()}

    by_name = {run(["rpm", "-qp", "--qf", "%{NAME}", rpm]).stdout: rpm for rpm in freight_rpms}
    provided = set().union(*(query(rpm, "provides") for rpm in by_name.values()))
    ours = {"freight", "freight-common", "freight-host", "config(freight-host)"}

    def needs(*names: str) -> set[str]:
        return {r for r in set().union(*(query(by_name[n], "requires") for n in names)) if not r.startswith("rpmlib(")} - ours

    assert needs("freight", "freight-common", "freight-host") - provided == set()
    host_side = query(by_name["debian-host-provides"], "provides") - {"debian-host-provides"}
    build_side = query(by_name["debian-host-provides-build"], "provides") - {"debian-host-provides-build"}
    assert host_side == needs("freight-common", "freight-host") | {"/bin/sh"}  # and container scriptlets' shell
    assert build_side == needs("freight") - host_side


# --- booting and stopping leave nothing behind ----------------------------------------


@slow
def test_poweroff_leaves_nothing_behind(tmp_path: Path) -> None:
    host = TestHost.boot(binds=[Bind(tmp_path, "/mnt/outside", readonly=False)])
    host.run(["touch", "/mnt/outside/written-inside"])
    traces = _traces(host.state)
    host.shutdown()
    _assert_gone(host.state, traces)
    assert (tmp_path / "written-inside").exists()  # a bound folder's files survive the host


@slow
def test_a_host_that_does_not_power_off_is_killed(tmp_path: Path) -> None:
    host = TestHost.boot()
    traces = _traces(host.state)
    host.shutdown(timeout=0)  # no time to power off: the kill path
    _assert_gone(host.state, traces)


@slow
def test_a_host_whose_test_session_died_is_stopped_and_pruned(tmp_path: Path) -> None:
    """If the test process is killed outright, its host powers off (parent-death signal) and the next boot prunes it."""
    out = tmp_path / "child.out"
    code = "from freight.testhost import TestHost; h = TestHost.boot(); print(h.name, flush=True); import time; time.sleep(600)"
    with out.open("w") as f:
        child = spawn([sys.executable, "-c", code], output=f, env={"PYTHONPATH": str(Path(__file__).parent.parent)})
    try:
        _wait_for(lambda: out.read_text().strip() != "" or child.poll() is not None, timeout=120)
        name = out.read_text().split()[0]
        state = machine.State.load(machine.boots_dir() / f"{name}.json")
        traces = _traces(state)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # The parent-death signal makes nspawn power the host off.
    _wait_for(lambda: not machine._alive(state.nspawn_pid, state.nspawn_start), timeout=60)
    assert name in prune()
    _assert_gone(state, traces)


def _traces(state: machine.State) -> dict[str, object]:
    root = Path(state.workdir) / "root"
    st = root.stat()
    return {"lock": machine.NSPAWN_LOCKS / f"inode-{st.st_dev}:{st.st_ino}", "cgroups": [Path(c) for c in state.cgroups]}


def _assert_gone(state: machine.State, traces: dict[str, object]) -> None:
    assert state.cgroups, "the host had cgroups of its own"
    for pid, start in ((state.nspawn_pid, state.nspawn_start), (state.init_pid, state.init_start)):
        assert not machine._alive(pid, start)
    assert not Path(state.workdir).exists()
    assert not (machine.boots_dir() / f"{state.name}.json").exists()
    assert not any(str(Path(state.workdir)) in line for line in Path("/proc/self/mountinfo").read_text().splitlines())
    assert not [c for c in traces["cgroups"] if c.exists()]  # type: ignore[attr-defined]
    assert not Path(traces["lock"]).exists()  # type: ignore[arg-type]
    assert not (machine.NSPAWN_PROPAGATE / state.name).exists()
    assert not [p for p in _all_pids() if _cmdline(p).startswith("systemd-nspawn") and state.name in _cmdline(p)]


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _wait_for(condition, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting after {timeout} s")
        time.sleep(0.2)


def _version() -> str:
    from freight import __version__

    return __version__


# --- fast: the pieces that need no host -----------------------------------------------


def test_bind_parsing() -> None:
    assert Bind.parse("/tmp:/srv/x") == Bind(Path("/tmp"), "/srv/x", True)
    assert Bind.parse("/tmp:/srv/x:rw").option() == "--bind=/tmp:/srv/x"
    assert Bind.parse("/tmp:/srv/x:ro").option() == "--bind-ro=/tmp:/srv/x"
    with pytest.raises(machine.TestHostError, match="SOURCE:TARGET"):
        Bind.parse("/tmp")


def test_mirror_comes_from_apts_sources() -> None:
    deb822 = """Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main

Types: deb
# a comment
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
"""
    assert image._deb822_mirror(deb822) == "http://mirror.example/debian"
    assert image._one_line_mirror("deb [arch=amd64] http://m.example/debian bookworm main\n") == "http://m.example/debian"
    assert image._one_line_mirror("deb http://m.example/debian trixie main\n") is None


def test_recipe_key_depends_on_the_package_set_only_not_its_order() -> None:
    a = image.Recipe(mirror="http://m", arch="amd64", packages=("a", "b"))
    assert a.key == image.Recipe(mirror="http://m", arch="amd64", packages=("b", "a", "a")).key
    assert a.key != image.Recipe(mirror="http://m", arch="amd64", packages=("a", "b", "c")).key
    assert a.key != image.Recipe(mirror="http://other", arch="amd64", packages=("a", "b")).key


def test_spec_version_is_freights_version() -> None:
    from freight.dist import rpms as dist

    assert dist.spec_version() == _version()


def test_source_tarball_holds_the_tree_without_ignored_files(tmp_path: Path) -> None:
    import tarfile

    from freight.dist import rpms as dist

    names = tarfile.open(dist.source_tarball(tmp_path)).getnames()
    prefix = f"freight-{_version()}/"
    assert all(n.startswith(prefix) for n in names)
    assert {prefix + "freight/cli.py", prefix + "specs/freight.spec", prefix + "setup.cfg"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or "/.venv/" in n or "/.git/" in n]


@pytest.mark.skipif(os.geteuid() != 0, reason="reads root's cgroups")
def test_own_cgroup_folders_are_found() -> None:
    from freight.testhost import cgroups

    folders = cgroups.own_folders()
    assert folders and all((f / "cgroup.procs").exists() for f in folders)
    assert all(str(os.getpid()) in (f / "cgroup.procs").read_text().split() for f in folders)

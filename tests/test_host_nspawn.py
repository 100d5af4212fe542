"""The .nspawn settings and unit drop-in: rendered from `run` sections, then run for real.

The rendering tests pin what each manifest key becomes. The machine tests
start the demo container with real systemd-nspawn exactly as
systemd-nspawn@.service does (its own ExecStart, --settings=override), with
the rendered file as the machine's settings, and look from inside.
"""

from __future__ import annotations

import configparser
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from hostfixtures import make_host

from freight.common.run import run
from freight.host import instances, nspawn
from freight.host.nspawn import Machine
from freight.host.storage import open_storage

UNIT_FILES = [Path("/usr/lib/systemd/system/systemd-nspawn@.service"), Path("/lib/systemd/system/systemd-nspawn@.service")]


def machine(run_section: dict, private_users: str = "pick", **kw: object) -> Machine:
    return Machine(instance="web", image="web", evr="1.0-1", run=run_section, private_users=private_users, **kw)  # type: ignore[arg-type]


def ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keep the keys' case
    parser.read_string(text)
    return parser


def lines(text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


# --- rendering ---------------------------------------------------------------------


def test_a_command_container() -> None:
    text = machine(
        {
            "command": ["/usr/bin/httpd", "-f", "-p", "8080"],
            "environment": {"GREETING": 'say "hi"', "B": "2"},
            "working_directory": "/srv/www",
            "user": "www",
        }
    ).settings()
    conf = ini(text)
    assert conf["Exec"]["Boot"] == "no"
    assert conf["Exec"]["Parameters"] == '"/usr/bin/httpd" "-f" "-p" "8080"'
    assert lines(text, "Environment") == ['"B=2"', '"GREETING=say "\'"\'"hi"\'"\'""']
    assert conf["Exec"]["WorkingDirectory"] == "/srv/www"
    assert conf["Exec"]["User"] == "www"
    assert conf["Exec"]["PrivateUsers"] == "pick"
    assert conf["Files"]["PrivateUsersOwnership"] == "auto"
    assert conf["Files"]["ReadOnly"] == "no"
    assert conf["Network"]["VirtualEthernet"] == "yes"


def test_secure_defaults_bind_nothing_and_set_no_password() -> None:
    text = machine({}).settings()
    assert "Bind" not in text and "BindReadOnly" not in text and "Overlay" not in text
    assert "password" not in text.lower()
    conf = ini(text)
    assert conf["Exec"]["Boot"] == "yes"  # no command: boot the container's init
    assert conf["Exec"]["PrivateUsers"] == "pick"
    assert conf["Network"]["VirtualEthernet"] == "yes"  # a private link, not the host's network


@pytest.mark.parametrize(
    "network, expected",
    [
        ("host", {"Private": "no", "VirtualEthernet": "no"}),
        ("private", {"Private": "yes", "VirtualEthernet": "no"}),
        ("veth", {"VirtualEthernet": "yes"}),
        ("zone:web", {"Zone": "web"}),
    ],
)
def test_network(network: str, expected: dict[str, str]) -> None:
    conf = ini(machine({"network": network}).settings())
    assert dict(conf["Network"]) == expected


def test_ports_are_published() -> None:
    """On a veth link nspawn publishes them; every form becomes nspawn's PROTO:HOST:CONTAINER."""
    text = machine({"network": "veth", "ports": [8080, "tcp:8443:443", "udp:53", "9090:90", "7070:70/udp"]}).settings()
    assert lines(text, "Port") == ["tcp:8080:8080", "tcp:8443:443", "udp:53:53", "tcp:9090:90", "udp:7070:70"]


def test_bridged_machine_gets_its_link_and_sees_its_networks_folder() -> None:
    from freight.host.nspawn import Bridged

    bridge = Bridged(network="default", interface="vp-web", folder=Path("/run/freight/networks/default"), inside="/etc/freight-network")
    m = machine({"network": "bridge", "ports": ["8080:80"]})
    m.bridge = bridge
    conf = ini(m.settings())
    # nspawn makes the namespace and moves the hook's link in; the ports are nftables rules, not Port=
    assert dict(conf["Network"]) == {"Private": "yes", "VirtualEthernet": "no", "Interface": "vp-web"}
    assert conf["Exec"]["ResolvConf"] == "off"
    assert conf["Files"]["BindReadOnly"] == "/run/freight/networks/default:/etc/freight-network"
    dropin = m.dropin("/usr/bin/freight-host-hook")
    assert "ExecStartPre=/usr/bin/freight-host-hook network-up web" in dropin
    assert "ExecStartPost=/usr/bin/freight-host-hook network-attach web" in dropin
    assert "ExecStopPost=/usr/bin/freight-host-hook network-down web" in dropin


def test_boot_read_only_and_user_namespace_choices() -> None:
    conf = ini(machine({"boot": True, "read_only": True}, private_users="no").settings())
    assert (conf["Exec"]["Boot"], conf["Files"]["ReadOnly"], conf["Exec"]["PrivateUsers"]) == ("yes", "yes", "no")
    assert "PrivateUsersOwnership" not in conf["Files"]
    assert ini(machine({}, private_users="identity").settings())["Exec"]["PrivateUsers"] == "identity"


def test_state_paths_are_bound_idmapped_when_uids_shift(tmp_path: Path) -> None:
    state = {"/var/lib/db": tmp_path / "s/var-lib-db", "/srv/a:b": tmp_path / "s/srv-a_3ab"}
    assert lines(machine({}, state=state).settings(), "Bind") == [
        f"{tmp_path}/s/srv-a_3ab:/srv/a\\:b:idmap",
        f"{tmp_path}/s/var-lib-db:/var/lib/db:idmap",
    ]
    assert lines(machine({}, private_users="no", state=state).settings(), "Bind")[1] == f"{tmp_path}/s/var-lib-db:/var/lib/db"


def test_the_dropin_carries_limits_ordering_and_the_start_hook(tmp_path: Path) -> None:
    m = machine(
        {"limits": {"memory": "512M", "cpu_weight": 200, "tasks": 64}, "after": ["db", "cache"]},
        state={"/var/lib/x": tmp_path / "state/x"},
        root=tmp_path / "machines/web",
        zfs=True,
    )
    text = m.dropin("/usr/bin/freight-host-hook")
    conf = ini(text)
    assert conf["Service"]["ExecStartPre"] == "/usr/bin/freight-host-hook prepare-start web"
    assert conf["Service"]["Slice"] == "freight-web.slice"  # the limits sit on the machine's own slice
    assert "MemoryMax" not in conf["Service"]
    limits = ini(m.slice_dropin())["Slice"]
    assert (limits["MemoryMax"], limits["CPUWeight"], limits["TasksMax"]) == ("512M", "200", "64")
    assert lines(text, "After") == ["zfs-mount.service zfs-fuse.service", "systemd-nspawn@db.service", "systemd-nspawn@cache.service"]
    assert lines(text, "Wants") == ["systemd-nspawn@db.service", "systemd-nspawn@cache.service"]
    assert lines(text, "RequiresMountsFor") == [f"{tmp_path}/machines/web {tmp_path}/state/x"]


def test_a_dropin_without_limits_sets_none() -> None:
    text = machine({}, root=Path("/var/lib/machines/web")).dropin("/usr/bin/freight-host-hook")
    for key in ("MemoryMax", "CPUWeight", "TasksMax", "Wants", "zfs-"):
        assert key not in text


def test_drop_in_passes_systemd_analyze(tmp_path: Path) -> None:
    """systemd's own parser accepts the drop-in with every key set (no running systemd needed)."""
    units = tmp_path / "units"
    (units / "systemd-nspawn@web.service.d").mkdir(parents=True)
    unit = next((u for u in UNIT_FILES if u.exists()), None)
    if unit is None:
        pytest.skip("systemd-container is not installed")
    (units / "systemd-nspawn@.service").write_text(unit.read_text())
    m = machine({"limits": {"memory": "1G", "cpu_weight": 10, "tasks": 9}, "after": ["db"]}, root=Path("/var/lib/machines/web"))
    dropin = units / "systemd-nspawn@web.service.d/freight.conf"

    def problems(text: str) -> list[str]:
        dropin.write_text(text)
        proc = run(["systemd-analyze", "verify", "--man=no", "systemd-nspawn@web.service"], env={"SYSTEMD_UNIT_PATH": f"{units}:"}, check=False)
        return [line for line in proc.stderr.splitlines() if "freight.conf" in line]

    assert problems(m.dropin("/bin/true")) == []
    assert problems(m.dropin("/bin/true") + "MemoryMaximum=1G\n"), "the check notices a key systemd does not know"


def test_the_quoting_of_words() -> None:
    assert nspawn.quote("plain") == '"plain"'
    assert nspawn.quote("") == '""'
    assert nspawn.quote('a"b') == '"a"\'"\'"b"'


def test_fs_type_and_the_user_namespace_decision(tmp_path: Path) -> None:
    kind = nspawn.fs_type(tmp_path)
    assert kind not in ("", "unknown")
    assert not kind.startswith("fuse"), f"the test folder is on {kind}: the zfs-fuse test below covers FUSE"
    assert nspawn.private_users({}, tmp_path) == ("pick", None)
    assert nspawn.private_users({"private_users": False}, tmp_path) == ("no", None)
    assert nspawn.private_users({"private_users": "identity"}, tmp_path) == ("identity", None)
    # systemd-nspawn's own words for the same
    assert nspawn.private_users({"private_users": "no"}, tmp_path) == ("no", None)
    assert nspawn.private_users({"private_users": "yes"}, tmp_path) == ("pick", None)


def test_zfs_fuse_falls_back_to_no_user_namespace(zfs_parent: str, tmp_path: Path) -> None:
    host = make_host(tmp_path, "zfs", zfs_parent)
    storage = open_storage(host.cfg, "zfs")
    storage.image_create("web")
    try:
        assert nspawn.fs_type(storage.image_dir("web")) == "fuse.zfs"
        value, why = nspawn.private_users({}, storage.image_dir("web"))
        assert value == "no" and "fuse.zfs" in why and "PrivateUsers=no" in why
    finally:
        storage.image_destroy("web")


# --- running the demo container with the rendered settings ------------------------


@pytest.fixture(scope="session")
def webapp_tree(built_webapp: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo container's files, installed from its RPM by the real rpm (no scriptlets)."""
    root = tmp_path_factory.mktemp("webapp-root")
    run(
        ["rpm", "-i", "--root", root, "--dbpath", "/usr/lib/sysimage/rpm", "--nodeps", "--noscripts", built_webapp],
        env={"RPM_FORCE_DEBIAN": "1"},
    )
    return root / "var/lib/freight/images/webapp"


_names = iter(range(1000))


def start_like_the_unit(root: Path, settings: str) -> subprocess.CompletedProcess:
    """Run ROOT as systemd-nspawn@NAME.service would, with SETTINGS as NAME's .nspawn file."""
    unit = next((u for u in UNIT_FILES if u.exists()), None)
    if unit is None or not os.access("/usr/bin/systemd-nspawn", os.X_OK):
        pytest.skip("systemd-nspawn is not installed")
    name = f"fthook-{os.getpid()}-{next(_names)}"
    execstart = next(line for line in unit.read_text().splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(execstart.removeprefix("ExecStart=").replace("%i", name))
    # No systemd-machined here (no systemd as PID 1): nothing to register with.
    argv += ["--register=no", f"--directory={root}"]
    settings_file = Path("/run/systemd/nspawn") / f"{name}.nspawn"
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(settings)
    try:
        return run(["timeout", "120", *argv], env={"SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}, check=False)
    finally:
        settings_file.unlink()


def sh(script: str, **run_section: object) -> dict:
    return {"command": ["/usr/bin/sh", "-c", script], **run_section}


@pytest.fixture
def instance_root(webapp_tree: Path, tmp_path: Path) -> Path:
    root = tmp_path / "machines/web"
    root.parent.mkdir()
    run(["cp", "-a", webapp_tree, root])
    return root


@pytest.mark.slow
def test_command_environment_and_working_directory_reach_the_container(instance_root: Path) -> None:
    section = sh(
        'echo "pwd=$(pwd)"; echo "G=[$GREETING]"; for a in "$@"; do echo "arg=[$a]"; done',
        environment={"GREETING": "hello \"world\" $HOME back\\slash %i"},
        working_directory="/srv/www",
    )
    section["command"] += ["x", "two words", "it's", ""]
    proc = start_like_the_unit(instance_root, machine(section, *nspawn.private_users(section, instance_root)[:1]).settings())
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert "pwd=/srv/www" in out
    assert 'G=[hello "world" $HOME back\\slash %i]' in out
    assert [l for l in out if l.startswith("arg=")] == ["arg=[two words]", "arg=[it's]", "arg=[]"]


@pytest.mark.slow
def test_user_namespace_read_only_root_and_state_bind(instance_root: Path, tmp_path: Path) -> None:
    users, why = nspawn.private_users({}, instance_root)
    if users != "pick":
        pytest.skip(f"the temporary folder cannot shift UIDs: {why}")
    state = tmp_path / "state/var-lib-db"
    state.mkdir(parents=True)
    section = sh(
        "cat /proc/self/uid_map; stat -c 'owner=%u' /srv/www; echo data > /var/lib/db/file && echo state-ok; "
        "touch /srv/www/x 2>/dev/null || echo root-is-read-only",
        read_only=True,
    )
    instances.make_mountpoints(instance_root, ["/var/lib/db"])  # as the hook does for every instance
    proc = start_like_the_unit(instance_root, machine(section, users, state={"/var/lib/db": state}).settings())
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.split()
    assert first[:3][0] == "0" and first[1] != "0", "root inside maps to a high UID outside"
    assert "owner=0" in proc.stdout  # the idmapped tree looks root-owned inside …
    assert os.stat(instance_root / "srv/www").st_uid == 0  # … and is not chowned on the host
    assert "state-ok" in proc.stdout and (state / "file").read_text() == "data\n"
    assert os.stat(state / "file").st_uid == 0
    assert "root-is-read-only" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("network", ["host", "private", "veth"])
def test_network_modes(instance_root: Path, network: str) -> None:
    proc = start_like_the_unit(instance_root, machine(sh("ls /sys/class/net", network=network), "no").settings())
    assert proc.returncode == 0, proc.stderr
    inside = set(proc.stdout.split())
    if network == "host":
        assert inside == set(os.listdir("/sys/class/net"))
    elif network == "private":
        assert inside == {"lo"}
    else:
        assert inside == {"lo", "host0"}


@pytest.mark.slow
def test_a_zfs_fuse_clone_runs_without_a_user_namespace(zfs_parent: str, webapp_tree: Path, tmp_path: Path) -> None:
    host = make_host(tmp_path, "zfs", zfs_parent)
    storage = open_storage(host.cfg, "zfs")
    storage.image_create("web")
    try:
        run(["cp", "-a", f"{webapp_tree}/.", storage.image_dir("web")])
        storage.snapshot_create("web", "1-1")
        root = storage.instance_create("web", "1-1", "web")
        users, why = nspawn.private_users({}, root)
        proc = start_like_the_unit(root, machine(sh("cat /srv/www/index.html"), users).settings())
        assert proc.returncode == 0, proc.stderr
        assert "freight demo" in proc.stdout
        # And what "pick" would have done there, which is why freight does not ask for it:
        failed = start_like_the_unit(root, machine(sh("true"), "pick").settings())
        assert failed.returncode != 0 and "UID/GID shift" in failed.stderr
    finally:
        storage.instance_destroy("web")
        storage.image_destroy("web")

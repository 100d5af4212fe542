"""The installer hook driven by real rpm transactions, on both storage backends.

The container RPMs are built by the real `freight build`; rpm installs,
upgrades and erases them with their real scriptlets. The packages' paths are
relocated (`--badreloc`) into a temporary host, whose host.conf points every
location there, and the scriptlets find `freight-host-hook` through rpm's
script PATH. systemd is offline (SYSTEMD_OFFLINE=1), as in a chroot: the hook
skips reload and start, and enables machines by writing the symlinks.
"""

from __future__ import annotations

import errno
import fcntl
import re
import json
import os
import stat
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import freight, webapp_manifest
from hostfixtures import FakeHost, datasets, make_host
from rpmhost import RpmHost, leftovers, ok, registry, webapp_manifest_at

from freight.common.run import run
from freight.host import rpmdb
from freight.host.registry import ImageRecord, InstanceRecord, StateRecord
from freight.host.storage import open_storage, zfs_letting_go
from freight.model import capabilities, rpmbugs
from freight.model.capabilities import CAPABILITY_XATTR

pytestmark = pytest.mark.slow

def read_snapshot(h: RpmHost, evr: str, rel: str) -> str | None:
    """A file as the image snapshot EVR has it (read through a probe instance), or None."""
    storage = open_storage(h.host.cfg, h.host.cfg.storage)
    root = storage.instance_create("webapp", evr, "probe")
    try:
        path = root / rel
        return path.read_text() if path.exists() else None
    finally:
        storage.instance_destroy("probe")


def read_only(folder: Path) -> bool:
    """Whether FOLDER refuses writes (zfs-fuse's `zfs get readonly` misreports a set value as "off")."""
    probe = folder / ".probe"
    try:
        probe.write_text("")
    except OSError as exc:
        assert exc.errno == errno.EROFS, exc
        return True
    probe.unlink()
    return False


def settings(h: RpmHost) -> str:
    return (h.host.cfg.nspawn_dir / "webapp.nspawn").read_text()


def test_install_upgrade_restart_erase_purge(rpm_host: RpmHost, webapp_rpms: dict[str, Path]) -> None:
    h, cfg, zfs = rpm_host, rpm_host.host.cfg, rpm_host.host.cfg.storage == "zfs"
    machine = cfg.machines_dir / "webapp"
    state = cfg.state_dir / "webapp/srv-data"

    # --- install ---------------------------------------------------------------------
    log = ok(h.put("-i", webapp_rpms["1.0"]))
    assert h.installed() == ["container-webapp-1.0-1"]
    assert (cfg.images_dir / "webapp/srv/www/page.html").read_text() == "page 1.0\n"
    assert (machine / "srv/www/page.html").read_text() == "page 1.0\n"
    # The host's rpm knows no user www; the image's own rpm database gave demo-private's file its owner.
    token = os.stat(machine / "srv/private/token")
    assert (token.st_uid, token.st_gid, token.st_mode & 0o777) == (80, 80, 0o640)
    assert (state / "seed.txt").read_text() == "seeded by the image\n"
    image = registry(h).get(ImageRecord, "webapp")
    assert image == ImageRecord(name="webapp", storage=cfg.storage, current="1.0-1", snapshots=["1.0-1"], parent=cfg.parent if zfs else None)
    assert registry(h).get(InstanceRecord, "webapp").snapshot == "1.0-1"
    text = settings(h)
    assert f"Bind={state}:/srv/data" in text
    if zfs:
        assert "PrivateUsers=no" in text and "fuse.zfs, which cannot shift UIDs" in log
        assert datasets(cfg.parent) == [
            cfg.parent, f"{cfg.parent}/images", f"{cfg.parent}/images/webapp", f"{cfg.parent}/images/webapp@1.0-1",
            f"{cfg.parent}/machines", f"{cfg.parent}/machines/webapp",
            f"{cfg.parent}/state", f"{cfg.parent}/state/webapp", f"{cfg.parent}/state/webapp/srv-data",
        ]
        assert read_only(cfg.images_dir / "webapp")
    else:
        assert "PrivateUsers=pick" in text and f"Bind={state}:/srv/data:idmap" in text
    dropin = (cfg.units_dir / "systemd-nspawn@webapp.service.d/freight.conf").read_text()
    assert f"ExecStartPre={cfg.hook} prepare-start webapp" in dropin and "Slice=freight-webapp.slice" in dropin
    assert "MemoryMax=64M" in (cfg.units_dir / "freight-webapp.slice.d/10-manifest.conf").read_text()
    assert (cfg.units_dir / "machines.target.wants/systemd-nspawn@webapp.service").is_symlink()  # autostart, offline
    assert "not reloading systemd: SYSTEMD_OFFLINE=1 is set" in log

    (state / "kept.txt").write_text("written by the service\n")
    (machine / "srv/www/scratch.html").write_text("written outside the state paths\n")

    # --- upgrades: the running instance is untouched ---------------------------------
    ok(h.put("-U", webapp_rpms["1.1"]))
    assert h.installed() == ["container-webapp-1.1-1"]
    assert read_snapshot(h, "1.1-1", "srv/www/page.html") == "page 1.1\n"
    assert read_snapshot(h, "1.1-1", "srv/www/old.html") is None, "the snapshot is taken after rpm removed 1.0's files"
    assert (machine / "srv/www/page.html").read_text() == "page 1.0\n"
    assert (machine / "srv/www/scratch.html").exists()
    assert registry(h).get(InstanceRecord, "webapp").snapshot == "1.0-1"
    assert "Bind=" in settings(h) and "/var/lib/extra" in settings(h)  # the new version's settings wait for the restart
    assert (cfg.state_dir / "webapp/var-lib-extra").is_dir()

    log = ok(h.put("-U", webapp_rpms["1.2"]))
    assert registry(h).get(ImageRecord, "webapp").snapshots == ["1.0-1", "1.1-1", "1.2-1"]
    assert "kept the snapshots 1.0-1 while instances run on them" in log

    # --- the next start moves the instance onto 1.2, state kept, older snapshot pruned ---
    ok(h.hook("prepare-start", "webapp"))
    assert (machine / "srv/www/page.html").read_text() == "page 1.2\n"
    assert not (machine / "srv/www/scratch.html").exists() and not (machine / "srv/www/old.html").exists()
    assert (state / "kept.txt").read_text() == "written by the service\n"
    assert registry(h).get(InstanceRecord, "webapp").snapshot == "1.2-1"
    assert registry(h).get(ImageRecord, "webapp").snapshots == ["1.1-1", "1.2-1"]
    if zfs:
        assert f"{cfg.parent}/images/webapp@1.0-1" not in datasets(cfg.parent)
    ok(h.hook("prepare-start", "webapp"))  # nothing to do the second time

    # --- a downgrade reuses the kept snapshot ---------------------------------------
    log = ok(h.put("-U", webapp_rpms["1.1"], "--oldpackage"))
    assert "reusing the kept snapshot of 1.1-1" in log
    assert registry(h).get(ImageRecord, "webapp") == ImageRecord(
        name="webapp", storage=cfg.storage, current="1.1-1", snapshots=["1.1-1", "1.2-1"], parent=cfg.parent if zfs else None)

    listing = freight("list", "--json", env={"FREIGHT_HOST_CONF": str(h.host.conf)})
    assert listing.returncode == 0, listing.stderr
    info = json.loads(listing.stdout)
    assert [(i["name"], i["version"], i["storage"]) for i in info["images"]] == [("webapp", "1.1-1", cfg.storage)]
    [inst] = info["instances"]
    assert (inst["name"], inst["version"], inst["pending"], inst["enabled"], inst["state"]) == ("webapp", "1.2-1", "1.1-1", "enabled", None)

    # --- erase: everything goes but the state ---------------------------------------
    ok(h.rpm("-e", "container-webapp"))
    assert h.installed() == []
    assert registry(h).get(ImageRecord, "webapp") is None and registry(h).get(InstanceRecord, "webapp") is None
    assert registry(h).get(StateRecord, "webapp").paths == ["/srv/data", "/var/lib/extra"]
    assert (state / "kept.txt").exists()
    assert not machine.exists() and not (cfg.images_dir / "webapp").exists()
    assert not (cfg.nspawn_dir / "webapp.nspawn").exists()
    assert not (cfg.units_dir / "systemd-nspawn@webapp.service.d").exists()
    assert not (cfg.units_dir / "machines.target.wants/systemd-nspawn@webapp.service").exists()
    if zfs:
        assert datasets(cfg.parent) == [cfg.parent, f"{cfg.parent}/state", f"{cfg.parent}/state/webapp",
                                        f"{cfg.parent}/state/webapp/srv-data", f"{cfg.parent}/state/webapp/var-lib-extra"]

    # --- a reinstall finds its state again ------------------------------------------
    log = ok(h.put("-i", webapp_rpms["1.2"]))
    assert "keeping the state of /srv/data" in log
    assert (state / "kept.txt").read_text() == "written by the service\n"
    ok(h.rpm("-e", "container-webapp"))

    # --- purge: and then nothing is left ---------------------------------------------
    refused = freight("purge", "nothing-here", env={"FREIGHT_HOST_CONF": str(h.host.conf)})
    assert refused.returncode == 1 and "no kept state or half-made image of nothing-here" in refused.stderr
    purged = freight("purge", "webapp", env={"FREIGHT_HOST_CONF": str(h.host.conf)})
    assert purged.returncode == 0, purged.stderr
    assert leftovers(h) == []
    if zfs:
        assert datasets(cfg.parent) == [cfg.parent]


def test_purge_is_refused_while_installed(rpm_host: RpmHost, webapp_rpms: dict[str, Path]) -> None:
    h = rpm_host
    ok(h.put("-i", webapp_rpms["1.0"]))
    refused = freight("purge", "webapp", env={"FREIGHT_HOST_CONF": str(h.host.conf)})
    assert refused.returncode == 2 and "webapp is still installed" in refused.stderr
    status = freight("status", "webapp", "--json", env={"FREIGHT_HOST_CONF": str(h.host.conf), "SYSTEMD_OFFLINE": "1"})
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert (info["version"], info["state"], info["systemd"]) == ("1.0-1", None, "SYSTEMD_OFFLINE=1 is set")
    assert info["state_paths"] == {"/srv/data": str(h.host.cfg.state_dir / "webapp/srv-data")}
    listing = freight("list", env={"FREIGHT_HOST_CONF": str(h.host.conf), "SYSTEMD_OFFLINE": "1"})
    assert listing.returncode == 0, listing.stderr
    rows = [line.split() for line in listing.stdout.splitlines() if line.startswith("webapp")]
    assert rows == [["webapp", "1.0-1", h.host.cfg.storage, "1.0-1"], ["webapp", "webapp", "1.0-1", "?", "enabled", h.host.cfg.storage, "-"]]
    start = freight("start", "webapp", env={"FREIGHT_HOST_CONF": str(h.host.conf), "SYSTEMD_OFFLINE": "1"})
    assert start.returncode == 1 and "cannot start webapp: SYSTEMD_OFFLINE=1 is set" in start.stderr
    unknown = freight("status", "nope", env={"FREIGHT_HOST_CONF": str(h.host.conf)})
    assert unknown.returncode == 1 and "no freight instance named nope" in unknown.stderr
    erase = ok(h.rpm("-e", "container-webapp"))
    warnings = [line for line in erase.splitlines() if "warning" in line]
    # On ZFS rpm cannot remove the image folder it owns: it is the dataset's mountpoint (the hook removes it).
    assert warnings == (["warning: directory webapp: remove failed: Device or resource busy"] if h.host.cfg.storage == "zfs" else []), erase
    ok(h.hook("-v", "pre-uninstall", "webapp", "1.0-1", "0"))  # phases are safe to repeat
    assert freight("purge", "webapp", env={"FREIGHT_HOST_CONF": str(h.host.conf)}).returncode == 0
    assert leftovers(h) == []


def test_a_missing_zfs_parent_fails_the_install_and_leaves_nothing(zfs_pool: str, tmp_path: Path, webapp_rpms: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    missing = f"{zfs_pool}/not/there"
    host = make_host(tmp_path / "host", "zfs", missing)
    h = RpmHost.make(host, tmp_path / "rpmdb")
    before = datasets(zfs_pool)
    proc = h.put("-i", webapp_rpms["1.0"])
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: pre-install")]
    assert len(errors) == 1, proc.stderr
    assert f"the ZFS parent dataset {missing} does not exist" in errors[0] and str(host.conf) in errors[0]
    assert "%prein(container-webapp-1.0-1" in proc.stderr  # rpm says which scriptlet failed
    assert h.installed() == []
    assert host.files() == [] and datasets(zfs_pool) == before


@pytest.fixture(scope="session")
def bad_state_rpm(demo_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """container-webapp whose state path is a file in the image: only post-install can find out."""
    work = tmp_path_factory.mktemp("webapp-bad")
    manifest = webapp_manifest_at(work, demo_repo, "1.0", "page\n", old_file=False, state=["/srv/data", "/etc/os-release"])
    result = freight("build", manifest, "-o", work / "out")
    assert result.returncode == 0, result.stderr
    return Path(result.last_line)


def test_a_failing_post_install_rolls_back(rpm_host: RpmHost, bad_state_rpm: Path) -> None:
    h, cfg = rpm_host, rpm_host.host.cfg
    proc = h.put("-i", bad_state_rpm)
    # rpm 4.18 only warns about a failed %post: the package stays installed, rpm exits 0.
    assert proc.returncode == 0 and "warning: %post(container-webapp-1.0-1.x86_64) scriptlet failed, exit status 1" in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: post-install webapp: the state path webapp:/etc/os-release is not a directory in the image; state paths must be folders"], proc.stderr
    assert "rolling back: destroy the instance webapp" in proc.stderr
    assert h.installed() == ["container-webapp-1.0-1"]
    # freight took back everything it made after the files: the image is as rpm left it.
    # its install never finished (freight list says 'dnf reinstall' finishes it)
    assert registry(h).get(ImageRecord, "webapp") == ImageRecord(
        name="webapp", storage=cfg.storage, parent=cfg.parent if cfg.storage == "zfs" else None, txn="install 1.0-1")
    assert registry(h).get(InstanceRecord, "webapp") is None and registry(h).get(StateRecord, "webapp") is None
    assert not (cfg.machines_dir / "webapp").exists() and not (cfg.state_dir / "webapp").exists()
    assert not (cfg.nspawn_dir / "webapp.nspawn").exists() and not (cfg.units_dir / "systemd-nspawn@webapp.service.d").exists()
    assert not (cfg.units_dir / "machines.target.wants/systemd-nspawn@webapp.service").exists()
    if cfg.storage == "zfs":
        assert datasets(cfg.parent) == [cfg.parent, f"{cfg.parent}/images", f"{cfg.parent}/images/webapp"]
        assert not read_only(cfg.images_dir / "webapp")
    else:
        assert not (cfg.snapshots_dir / "webapp").exists()
    ok(h.rpm("-e", "container-webapp"))
    assert leftovers(h) == []


def test_pre_install_refuses_what_post_install_would_trip_over(rpm_host: RpmHost, webapp_rpms: dict[str, Path]) -> None:
    h, cfg = rpm_host, rpm_host.host.cfg
    cfg.nspawn_dir.parent.mkdir(parents=True, exist_ok=True)
    cfg.nspawn_dir.write_text("a file where the settings folder should be")
    proc = h.put("-i", webapp_rpms["1.0"])
    assert proc.returncode != 0 and "%prein(container-webapp-1.0-1" in proc.stderr
    assert f"error: pre-install webapp: {cfg.nspawn_dir} cannot be a folder: {cfg.nspawn_dir} is a file" in proc.stderr
    cfg.nspawn_dir.unlink()

    # A machine of the same name that freight did not make is not taken over.
    cfg.nspawn_dir.mkdir()
    (cfg.nspawn_dir / "webapp.nspawn").write_text("[Exec]\nBoot=yes\n")
    proc = h.put("-i", webapp_rpms["1.0"])
    assert proc.returncode != 0 and "a machine named webapp exists already" in proc.stderr
    assert (cfg.nspawn_dir / "webapp.nspawn").read_text() == "[Exec]\nBoot=yes\n"
    (cfg.nspawn_dir / "webapp.nspawn").unlink()
    assert h.installed() == [] and leftovers(h) == []
    if cfg.storage == "zfs":
        assert datasets(cfg.parent) == [cfg.parent]


# security.capability as the kernel stores cap_net_raw=ep (VFS_CAP_REVISION_2, effective; CAP_NET_RAW is 13)
NET_RAW = struct.pack("<5I", 0x02000001, 1 << 13, 0, 0, 0)


def holds_capabilities(folder: Path) -> bool:
    probe = folder / ".caps-probe"
    probe.write_text("")
    try:
        os.setxattr(probe, CAPABILITY_XATTR, NET_RAW)
        return True
    except OSError:
        return False
    finally:
        probe.unlink()


@pytest.fixture(scope="session")
def owners_rpms(demo_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """container-webapp with demo-owned (a folder its %post gives www) and the manifest's page laid 0600
    over demo-www's 0644 one; "caps" adds demo-caps, when this machine's files can hold capabilities."""
    out = {}
    for variant, extra in (("plain", ["demo-owned"]), ("caps", ["demo-owned", "demo-caps"])):
        work = tmp_path_factory.mktemp(f"owners-{variant}")
        if variant == "caps" and not holds_capabilities(work):
            continue
        (work / "page.html").write_text("<p>only root reads this</p>\n")
        manifest = webapp_manifest(work, demo_repo, files="[{src: page.html, dest: /srv/www/index.html, mode: '0600'}]")
        manifest.write_text(manifest.read_text().replace("[demo-www]", f"[demo-www, {', '.join(extra)}]"))
        built = freight("build", manifest, "-o", work / "out")
        assert built.returncode == 0, built.stderr
        out[variant] = Path(built.last_line)
    return out


def test_owners_are_the_containers_and_modes_times_the_headers(rpm_host: RpmHost, owners_rpms: dict[str, Path]) -> None:
    """The host's rpm cannot resolve www; the hook gives the owners the package recorded, by the container's
    users, and leaves the modes and times the host's rpm wrote from the container's header."""
    _install_and_check_owners(rpm_host, owners_rpms["plain"])


def test_capabilities_are_kept_where_the_storage_holds_them_and_refused_where_not(rpm_host: RpmHost, owners_rpms: dict[str, Path]) -> None:
    """dir keeps a file capability through the hook's owner change; zfs-fuse, which holds no extended
    attributes, is refused by %pre (rpm could not unpack the capability, and then runs no scriptlet that
    could take back the image %pre made), leaving nothing."""
    if "caps" not in owners_rpms:
        pytest.skip("this build machine's files cannot hold file capabilities: no package with capabilities could be built")
    h, cfg = rpm_host, rpm_host.host.cfg
    if cfg.storage == "zfs":
        refused = h.put("-i", owners_rpms["caps"])
        assert refused.returncode != 0 and "has files with capabilities, which the zfs storage here cannot hold" in refused.stderr, refused.stderr
        assert h.installed() == [] and leftovers(h) == [] and datasets(cfg.parent)[1:] == []
        return
    _install_and_check_owners(h, owners_rpms["caps"], capability=True)


def _install_and_check_owners(h: RpmHost, rpm: Path, capability: bool = False) -> None:
    cfg = h.host.cfg
    ok(h.put("-i", rpm))
    for root in (cfg.images_dir / "webapp", cfg.machines_dir / "webapp"):
        assert stat.S_IMODE((root / "srv/www/index.html").stat().st_mode) == 0o600, root  # the manifest's, not demo-www's
        assert (root / "var/lib/demo-owned/state").stat().st_uid == 80, root  # www inside; a scriptlet made it
        if capability:
            ping = root / "usr/bin/demo-ping"
            assert (ping.stat().st_uid, capabilities.raw(ping)) == (80, NET_RAW), root  # given to www, capability kept
    # rpm -V finds nothing but the owner names the host cannot resolve (see the README's Known limits)
    verify = h.rpm("-V", "--nodeps", "container-webapp").stdout.splitlines()
    assert verify and all(line.split()[0].strip(".UG") == "" for line in verify), verify
    ok(h.rpm("-e", "container-webapp"))
    assert leftovers(h) == []


def test_the_scriptlets_only_call_the_hook(webapp_rpms: dict[str, Path]) -> None:
    scripts = run(["rpm", "-qp", "--scripts", webapp_rpms["1.0"]]).stdout
    body = [line for line in scripts.splitlines() if not line.endswith("scriptlet (using /bin/sh):")]
    assert re.fullmatch(r'freight-host-hook pre-install webapp 1\.0-1 "\$1" --size \d+', body[0]), body[0]
    assert body[1:] == [
        'freight-host-hook post-install webapp 1.0-1 "$1"',
        'freight-host-hook pre-uninstall webapp 1.0-1 "$1"',
        'freight-host-hook post-uninstall webapp 1.0-1 "$1"',
    ]
    requires = run(["rpm", "-qp", "--qf", "[%{REQUIRENAME} %{REQUIREFLAGS:deptype}\\n]", webapp_rpms["1.0"]]).stdout
    for phase in ("pre", "post", "preun", "postun"):
        assert f"freight-host {phase}" in requires.splitlines()
    # the option %pre passes is a capability of the hook: dnf brings a freight-host that knows it
    assert "freight-host-hook(size) pre" in requires.splitlines()


def test_the_hook_refuses_nonsense(fake_host: FakeHost) -> None:
    h = RpmHost.make(fake_host, fake_host.top.parent / "rpmdb")
    bad = h.hook("post-install", "webapp", "1.0-1", "x")
    assert bad.returncode == 2 and "invalid int value" in bad.stderr
    missing = h.hook("post-install", "webapp", "1.0-1", "1")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: post-install webapp: no freight image named webapp on this host (is container-webapp installed?)"


@pytest.fixture(scope="session")
def fifo_rpm(demo_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """container-webapp whose image holds a FIFO, made by a package's scriptlet (no package ships it,
    so dnf installs it here whatever this machine's rpm)."""
    from corpus import treerpm
    from conftest import copy_repo
    from freight.dist import demorepo

    work = tmp_path_factory.mktemp("fifo")
    (work / "tree/usr/share/demo-pipe").mkdir(parents=True)
    (work / "tree/usr/share/demo-pipe/README").write_text("its %post makes a named pipe\n")
    package = treerpm.Package("demo-pipe", "1.0", post='posix.mkfifo("/usr/share/demo-pipe/pipe")', post_lua=True)
    repo = copy_repo(demo_repo, work / "repo")
    treerpm.build(work / "tree", package, repo)
    demorepo.createrepo(repo)
    manifest = webapp_manifest(work, repo)
    manifest.write_text(manifest.read_text().replace("[demo-www]", "[demo-www, demo-pipe]"))
    built = freight("build", manifest, "-o", work / "out")
    assert built.returncode == 0, built.stderr
    return Path(built.last_line)


def test_an_image_with_a_fifo_is_refused_by_pre_where_rpm_would_hang(rpm_host: RpmHost, fifo_rpm: Path) -> None:
    """rpm 4.18.0 never finishes installing a FIFO (rpm issue 2195): %pre, the last point that can stop
    the install, refuses it there and leaves nothing; a fixed rpm installs it."""
    h = rpm_host
    scriptlet = subprocess.run(["rpm", "-qp", "--scripts", fifo_rpm], capture_output=True, text=True, check=True).stdout
    assert "--fifos" in scriptlet
    version = rpmbugs.running_rpm()
    result = h.put("-i", fifo_rpm)
    if rpmbugs.hangs_on_fifos(version):
        assert result.returncode != 0
        assert f"image holds named pipes (FIFOs) and rpm {version} hangs installing a FIFO" in result.stderr, result.stderr
        assert "exclude_paths" in result.stderr
        assert h.installed() == [] and leftovers(h) == []
    else:
        ok(result)
        assert stat.S_ISFIFO(os.lstat(h.host.cfg.images_dir / "webapp/usr/share/demo-pipe/pipe").st_mode)
        ok(h.rpm("-e", "container-webapp"))


def test_a_changed_parent_moves_new_containers_and_leaves_installed_ones_working(
    zfs_pool: str, tmp_path: Path, webapp_rpms: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Installed under one parent, then host.conf names another: upgrade, restart, erase and purge
    work on the datasets where they were made; a new container goes to the new parent."""
    first, second = f"{zfs_pool}/moved-from", f"{zfs_pool}/moved-to"
    for parent in (first, second):
        run(["zfs", "create", parent])
    monkeypatch.setenv("SYSTEMD_OFFLINE", "1")
    try:
        before = make_host(tmp_path / "host", "zfs", first)
        monkeypatch.setenv("FREIGHT_HOST_CONF", str(before.conf))
        ok(RpmHost.make(before, tmp_path / "rpmdb").put("-i", webapp_rpms["1.0"]))
        h = RpmHost.make(make_host(tmp_path / "host", "zfs", second), tmp_path / "rpmdb")  # host.conf rewritten

        ok(h.put("-U", webapp_rpms["1.1"]))
        ok(h.hook("prepare-start", "webapp"))
        assert (h.host.cfg.machines_dir / "webapp/srv/www/page.html").read_text() == "page 1.1\n"
        assert f"{first}/images/webapp@1.1-1" in datasets(first) and f"{first}/state/webapp/var-lib-extra" in datasets(first)
        assert datasets(second) == [second]
        status = freight("status", "--json", "webapp")
        assert status.returncode == 0 and f"zfs {first}/machines/webapp" in status.stdout, status.stdout + status.stderr

        ok(h.rpm("-e", "container-webapp"))
        assert datasets(first) == [first, f"{first}/state", f"{first}/state/webapp", f"{first}/state/webapp/srv-data",
                                   f"{first}/state/webapp/var-lib-extra"]
        purged = freight("purge", "webapp")
        assert purged.returncode == 0, purged.stderr
        assert datasets(first) == [first] and leftovers(h) == []

        ok(h.put("-i", webapp_rpms["1.2"]))  # new containers go where host.conf says now
        assert f"{second}/images/webapp@1.2-1" in datasets(second) and datasets(first) == [first]
        ok(h.rpm("-e", "container-webapp"))
        assert freight("purge", "webapp").returncode == 0
        assert datasets(second) == [second]
    finally:
        for parent in (first, second):
            zfs_letting_go("destroy", "-r", parent)


def test_a_pool_too_small_is_refused_by_pre_with_nothing_made(
    zfs_pool: str, tmp_path: Path, webapp_rpms: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """rpm's own disk-space check looks at the filesystem under the image's path before %pre makes the
    dataset; %pre checks the pool (a quota here) against the size the package gives, and makes nothing."""
    parent = f"{zfs_pool}/small"
    run(["zfs", "create", "-o", "quota=1M", parent])
    monkeypatch.setenv("SYSTEMD_OFFLINE", "1")
    try:
        host = make_host(tmp_path / "host", "zfs", parent)
        monkeypatch.setenv("FREIGHT_HOST_CONF", str(host.conf))
        h = RpmHost.make(host, tmp_path / "rpmdb")
        size = int(re.search(r"--size (\d+)", h.rpm("-qp", "--scripts", webapp_rpms["1.0"]).stdout)[1])
        assert size > 1_000_000
        refused = h.put("-i", webapp_rpms["1.0"])
        assert refused.returncode != 0
        assert f"container-webapp needs {size / 1e6:,.1f} MB ({size:,} bytes) for its image, but the ZFS dataset {parent} has" in refused.stderr, refused.stderr
        assert h.installed() == [] and leftovers(h) == [] and datasets(parent) == [parent]
        run(["zfs", "set", "quota=none", parent])
        ok(h.put("-i", webapp_rpms["1.0"]))  # with room, the same package installs
        ok(h.rpm("-e", "container-webapp"))
        assert freight("purge", "webapp").returncode == 0
    finally:
        zfs_letting_go("destroy", "-r", parent)


def test_a_half_made_image_is_marked_and_purge_removes_it(rpm_host: RpmHost, webapp_rpms: dict[str, Path]) -> None:
    """What a transaction killed after %pre leaves (the image %pre made, no package): `freight list` marks it,
    says "installing" while an rpm transaction holds rpm's lock, and `freight purge` removes it all."""
    h, cfg = rpm_host, rpm_host.host.cfg
    ok(h.hook("pre-install", "webapp", "1.0-1", "1", "--size", "1000"))
    listed = json.loads(freight("list", "--json").stdout)["images"]
    assert [(i["name"], i["version"], i["half_made"], i["installing"]) for i in listed] == [("webapp", None, True, False)]
    text = freight("list").stdout
    assert "an rpm transaction (install 1.0-1) on container-webapp did not finish: no package owns the image it began; 'freight repair' will remove it" in text

    lock = rpmdb.lock_path()
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as held:  # as a running rpm transaction holds it
        fcntl.lockf(held, fcntl.LOCK_EX)
        listed = json.loads(freight("list", "--json").stdout)["images"]
        assert [(i["half_made"], i["installing"]) for i in listed] == [(False, True)]
        refused = freight("purge", "webapp")
        assert refused.returncode == 1 and "an rpm transaction is running" in refused.stderr, refused.stderr
        assert registry(h).get(ImageRecord, "webapp") is not None

    purged = freight("purge", "webapp")
    assert purged.returncode == 0 and "webapp: removed the half-made image webapp" in purged.stderr, purged.stderr
    assert leftovers(h) == []
    if cfg.storage == "zfs":
        assert datasets(cfg.parent) == [cfg.parent]
    ok(h.put("-i", webapp_rpms["1.0"]))  # and the host takes the container as new
    ok(h.rpm("-e", "container-webapp"))
    assert freight("purge", "webapp").returncode == 0

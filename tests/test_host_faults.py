"""dnf killed in the middle of install, upgrade and remove of a real container, in the booted test host.

Each kill point names a phase of rpm's transaction: a hook phase (the hook's
process for that phase is running), or the unpack and erase of the image's
files (rpm's temporary file for the container's big file is there, or the
file is gone). A script inside the host starts dnf, watches for the phase,
and sends dnf SIGKILL the moment it sees it (the scriptlet running then ends
on its own, as it does when an administrator kills dnf); the test checks what
it saw, so a kill that landed elsewhere fails. Then only what freight
documents is done: the commands `freight list` names, the same dnf command
again, and `freight repair`. After that: exactly the versions rpm lists are
installed, `rpm -V` is clean, no dataset, snapshot, unit, settings file or
record is left that no package owns, and the machine serves the version its
snapshot holds.

`make check` runs one point of each operation where the image goes out of
step; `make soak` (FREIGHT_SOAK=1) runs them all.
"""

from __future__ import annotations

import json
import os
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import Signer, make_signer, publish_signed_build, write_manifest
from e2ehost import add_signed_repo, assert_nothing_left, configure, datasets, fetch, lent, make_pool, sh_status

if TYPE_CHECKING:
    from freight.testhost import TestHost

pytestmark = pytest.mark.slow

NAME = "faulty"
PACKAGE = f"container-{NAME}"
IMAGE = f"/var/lib/freight/images/{NAME}"
REPO_ID = "freight-faults"
POOL = "faultpool"
PARENT = f"{POOL}/freight"
PORT = 8093
BIG = 24 * 1024 * 1024  # an unpack long enough to be caught in the middle
MANY = 3000  # small files: an erase long enough to be caught in the middle


@dataclass(frozen=True)
class Point:
    op: str  # install | upgrade | remove
    phase: str  # pre-install | unpack | post-install | pre-uninstall | erase | post-uninstall

    @property
    def id(self) -> str:
        return f"{self.op}-{self.phase}"


BEFORE = ("resolved", "check", "test")  # dnf's steps before rpm's transaction begins
UNPACK = ("pre-install", "after-pre-install", "unpack-early", "unpack-middle", "unpack-late", "after-unpack")
INSTALL = (*BEFORE, "download", *UNPACK, "post-install", "after-post-install")
ERASE = ("pre-uninstall", "after-pre-uninstall", "post-uninstall", "after-post-uninstall")
ALL = [
    *(Point("install", p) for p in INSTALL),
    *(Point("upgrade", p) for p in (*INSTALL, *ERASE)),
    *(Point("remove", p) for p in (*BEFORE, *ERASE[:2], "erase-early", "erase-middle", "erase-late", *ERASE[2:])),
]
QUICK = {"install-unpack-early", "upgrade-unpack-late", "upgrade-post-install", "remove-after-pre-uninstall"}
POINTS = ALL if os.environ.get("FREIGHT_SOAK") else [p for p in ALL if p.id in QUICK]


@dataclass
class Shop:
    signer: Signer
    repo: Path
    evrs: dict[str, str]  # version -> VERSION-RELEASE published


def _manifest(folder: Path, demo: Path, version: str) -> Path:
    www = folder / "www"
    www.mkdir(parents=True)
    (www / "index.html").write_text(f"faulty {version}\n")
    (www / "big.bin").write_bytes(os.urandom(BIG))
    (www / "many").mkdir()
    for n in range(MANY):
        (www / "many" / f"f{n:04d}").write_text(f"{version} {n}\n")
    return write_manifest(
        folder,
        f"""\
        name: {NAME}
        version: "{version}"
        summary: a container whose transactions are killed
        license: MIT
        repos:
          - name: demo
            baseurl: {demo.as_uri()}
        packages: [demo-www]
        files:
          - {{src: www, dest: /srv/faulty}}
        run:
          command: [/usr/bin/httpd, -f, -p, "{PORT}", -h, /srv/faulty]
          network: host
          autostart: true
        """,
    )


@pytest.fixture(scope="module")
def shop(host_share: Path, tmp_path_factory: pytest.TempPathFactory) -> Shop:
    from freight.dist import demorepo

    work = tmp_path_factory.mktemp("faults")
    demo = work / "demo-repo"
    demorepo.make_repo(demo, sorted(demorepo.DEMO_SPECS.glob("*.spec")))
    signer = make_signer(work / "keys", "faults@example.com")
    repo = host_share / "faults-repo"
    evrs = {v: publish_signed_build(_manifest(work / v, demo, v), repo, signer) for v in ("1.0", "1.1")}
    return Shop(signer, repo, evrs)


@pytest.fixture(scope="module")
def host(freight_host: TestHost, shop: Shop) -> Iterator[TestHost]:
    with lent(freight_host, REPO_ID, POOL, f"/var/tmp/{POOL}.img") as h:
        add_signed_repo(h, REPO_ID, shop.repo)
        make_pool(h, POOL, f"/var/tmp/{POOL}.img")
        h.run(["zfs", "create", "-o", "mountpoint=none", PARENT])
        configure(h, "zfs", PARENT)
        yield h


def dnf(host: TestHost, *args: str) -> tuple[int, str]:
    return sh_status(host, f"dnf -y --repo {REPO_ID} {' '.join(args)}")


def start_from(host: TestHost, shop: Shop, version: str | None) -> None:
    """The container at VERSION (None: not installed), cleanly."""
    dnf(host, "remove", PACKAGE)
    host.sh(f"freight purge {NAME} >/dev/null 2>&1 || true")
    if version is not None:
        code, out = dnf(host, "install", f"{PACKAGE}-{shop.evrs[version]}")
        assert code == 0, out


def condition(phase: str) -> str:
    """A shell test that holds while rpm is in PHASE of our container's transaction. In the kill
    loop, $now holds the hook phases running this instant and $saw every one seen so far."""
    hook = "freight-host-hoo[k]"  # the script's own command line holds this, but does not match it
    said = {  # what dnf has printed, and not yet what it prints next
        "resolved": ("Dependencies resolved", "Running transaction check"),
        "download": ("Downloading Packages", "Running transaction check"),
        "check": ("Running transaction check", "Running transaction test"),
        "test": ("Running transaction test", "Transaction test succeeded"),
    }
    if phase in said:
        done, next_ = said[phase]
        return f"grep -q '{done}' /tmp/killed-dnf.log && ! grep -q '{next_}' /tmp/killed-dnf.log"
    if phase.startswith("erase-"):  # the small files going, by how many are left
        low, high = {"erase-early": (MANY * 2 // 3, MANY - 50), "erase-middle": (MANY // 3, MANY * 2 // 3),
                     "erase-late": (1, MANY // 3)}[phase]
        return f"n=$(ls {IMAGE}/srv/faulty/many 2>/dev/null | wc -l); [ $n -ge {low} ] && [ $n -le {high} ]"
    if phase == "after-unpack":  # the big file in place, %post not begun
        return (f'[ -e {IMAGE}/srv/faulty/big.bin ] && ! ls -d {IMAGE}/srv/faulty/big.bin\\;* >/dev/null 2>&1 '
                f'&& [ -z "$now" ] && echo "$saw" | grep -q "{hook} pre-install {NAME} "')
    if phase.startswith("unpack"):  # rpm writes the big file under a temporary name, then renames it
        test = {"unpack": "true", "unpack-early": f"[ $(stat -c %s \"$f\") -lt {BIG // 3} ]",
                "unpack-middle": f"[ $(stat -c %s \"$f\") -ge {BIG // 3} ] && [ $(stat -c %s \"$f\") -le {2 * BIG // 3} ]",
                "unpack-late": f"[ $(stat -c %s \"$f\") -gt {2 * BIG // 3} ]"}[phase]
        return f'f=$(ls -d {IMAGE}/srv/faulty/big.bin\\;* 2>/dev/null | head -n 1); [ -n "$f" ] && {test}'
    if phase.startswith("after-"):  # the phase has ended and no other has begun
        return f'echo "$saw" | grep -q "{hook} {phase[len("after-"):]} {NAME} " && [ -z "$now" ]'
    return f'echo "$now" | grep -q "{hook} {phase} {NAME} "'


def kill_during(host: TestHost, command: str, phase: str) -> str:
    """Run dnf COMMAND and SIGKILL it when PHASE is seen; what was running then (or 'missed')."""
    script = textwrap.dedent(
        f"""\
        # The hook phases running now (the test host has no procps). "hoo[k]": this script's own
        # command line, and grep's, hold the pattern but do not match it.
        hooks() {{
            cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -o 'freight-host-hoo[k] [a-z-]* [^ ]* [^ ]*' || true
        }}
        : >/tmp/killed-dnf.log
        dnf -y --repo {REPO_ID} {command} >/tmp/killed-dnf.log 2>&1 &
        pid=$!
        seen=missed
        saw=""
        : >/tmp/phases-seen
        while kill -0 $pid 2>/dev/null; do
            now=$(hooks)
            saw="$saw $now"
            if {condition(phase)}; then
                kill -9 $pid
                seen="killed: $(echo "$now" | tr '\\n' ';')"
                break
            fi
        done
        echo "$saw" >/tmp/phases-seen
        wait $pid 2>/dev/null || true
        [ "$seen" != missed ] || seen="missed; saw: $(sort -u /tmp/phases-seen | tr '\n' ';'); dnf said: $(tail -5 /tmp/killed-dnf.log | tr '\n' ';')"
        echo "$seen"
        """
    )
    return host.sh(script).strip()


def recover(host: TestHost, command: str) -> list[str]:
    """What freight documents after a killed transaction; the commands run, in order."""
    ran = []
    listed = json.loads(host.run(["freight", "list", "--json"]))
    for image in listed["images"]:
        said = image.get("interrupted") or ""
        if "'dnf " in said:
            named = said.split("'dnf ", 1)[1].split("'", 1)[0]
            ran.append(f"dnf {named}")
            code, out = sh_status(host, f"dnf -y {named}")
            assert code == 0, out
    code, out = dnf(host, command)
    ran.append(f"dnf {command}")
    assert code == 0 or "No match for argument" in out or "No packages marked" in out, out
    code, out = sh_status(host, "freight repair")
    ran.append("freight repair")
    assert code == 0, out
    return ran


def assert_true_to_rpm(host: TestHost, shop: Shop, version: str | None, ran: list[str] | None = None) -> None:
    evrs = listed(host, "%{VERSION}-%{RELEASE}")
    info = json.loads(host.run(["freight", "list", "--json"]))
    if version is None:
        assert evrs == [], evrs
        assert_nothing_left(host, NAME)
        assert datasets(host, PARENT) == [PARENT]
        assert info["images"] == [] and info["instances"] == [], info
        return
    evr = shop.evrs[version]
    assert evrs == [evr], (evrs, ran, info)
    assert sh_status(host, f"rpm -V {PACKAGE}") == (0, "")
    [image] = info["images"]
    assert (image["version"], image["interrupted"], image["half_made"]) == (evr, None, False), image
    names = set(datasets(host, PARENT))
    wanted = {PARENT, f"{PARENT}/images", f"{PARENT}/images/{NAME}", f"{PARENT}/machines", f"{PARENT}/machines/{NAME}"}
    wanted |= {f"{PARENT}/images/{NAME}@{s}" for s in image["snapshots"]}
    assert names == wanted, names ^ wanted
    [machine] = info["instances"]
    runs = machine["version"].split("-", 1)[0]
    assert machine["state"] == "active", machine
    fetch(host, f"faulty {runs}", port=PORT)


# What rpm's database lists right after a kill in each phase: the proof the kill landed there.
# rpm adds a header after the files and before %post, and drops an erased one after its %postun.
LISTED = {
    **{f"install-{p}": [[]] for p in (*BEFORE, "download", *UNPACK[:-1])}, "install-after-unpack": [[], ["1.0"]],
    "install-post-install": [["1.0"]], "install-after-post-install": [["1.0"]],
    **{f"upgrade-{p}": [["1.0"]] for p in (*BEFORE, "download", *UNPACK[:-1])}, "upgrade-after-unpack": [["1.0"], ["1.0", "1.1"]],
    **{f"upgrade-{p}": [["1.0", "1.1"]] for p in ("post-install", "after-post-install", *ERASE[:3])},
    "upgrade-after-post-uninstall": [["1.0", "1.1"], ["1.1"]],
    **{f"remove-{p}": [["1.0"]] for p in (*BEFORE, *ERASE[:3], "erase-early", "erase-middle", "erase-late")},
    "remove-after-post-uninstall": [["1.0"], []],
}
HOOK_PHASES = {"pre-install", "post-install", "pre-uninstall", "post-uninstall"}
ATTEMPTS = 3  # a kill point between two phases is a narrow window: dnf may pass it between two looks


def listed(host: TestHost, tag: str = "%{VERSION}") -> list[str]:
    """What rpm's database lists of the container, as TAG writes each version."""
    out = host.sh(f"rpm -q --qf '{tag}\\n' {PACKAGE} 2>/dev/null || true")
    return sorted(v for v in out.split() if v[0].isdigit())


@pytest.mark.parametrize("point", POINTS, ids=lambda p: p.id)
def test_a_killed_transaction_leaves_the_host_true_to_rpm(point: Point, host: TestHost, shop: Shop) -> None:
    start = {"install": None, "upgrade": "1.0", "remove": "1.0"}[point.op]
    target = {"install": "1.0", "upgrade": "1.1", "remove": None}[point.op]
    command = {"install": f"install {PACKAGE}-{shop.evrs['1.0']}", "upgrade": "upgrade " + PACKAGE, "remove": "remove " + PACKAGE}[point.op]
    for _ in range(ATTEMPTS):
        start_from(host, shop, start)
        seen = kill_during(host, command, point.phase)
        if seen.startswith("killed"):
            break
    assert seen.startswith("killed"), f"{point.id}: dnf ended before the kill point was seen ({seen})"
    if point.phase in HOOK_PHASES:
        assert f"freight-host-hook {point.phase} {NAME} " in seen, seen
    if point.phase.startswith("after-"):
        assert seen == "killed: ;", seen  # between two hook phases: none ran
    assert listed(host) in LISTED[point.id], f"{point.id}: rpm lists {listed(host)} after the kill ({seen})"
    ran = recover(host, command)
    assert_true_to_rpm(host, shop, target, ran)


def test_a_power_cut_during_an_upgrade_leaves_the_host_true_to_rpm(host: TestHost, shop: Shop) -> None:
    """The whole host killed while rpm unpacks the upgrade (zfs-fuse with it), booted again on the same
    root; once its pool is imported, as a host's boot does, the same recovery as for a killed dnf."""
    start_from(host, shop, "1.0")
    host.sh(f"setsid nohup dnf -y --repo {REPO_ID} upgrade {PACKAGE} >/tmp/cut-dnf.log 2>&1 </dev/null &")
    deadline = time.monotonic() + 120
    while sh_status(host, condition("unpack"))[0] != 0:
        assert time.monotonic() < deadline, host.sh("cat /tmp/cut-dnf.log")
    host.power_cut()
    # -f: the test host has no /etc/hostid, so the pool looks last used by another system
    host.sh(f"zpool list {POOL} >/dev/null 2>&1 || zpool import -f -d /var/tmp {POOL}")
    assert listed(host) == ["1.0"]  # the cut came before the new header
    ran = recover(host, f"upgrade {PACKAGE}")
    assert ran[-2:] == [f"dnf upgrade {PACKAGE}", "freight repair"], ran
    host.sh(f"freight start {NAME}")  # its start at boot came before the pool was there
    assert_true_to_rpm(host, shop, "1.1")

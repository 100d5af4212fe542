"""Issue 5 end to end, in the booted test host: a base and its derivatives installed by dnf, serving side by side.

The base (container-webapp, port 8080, state under its web root) and a
derivative of files that replaces its page (container-webapp-prod, port 8081)
run as two machines of one image; a layer (container-webapp-extra, port 8082)
adds a package. What each machine runs is read over HTTP: its page, the base
release it sits on (/version.txt, which no derivative replaces) and what it
kept in its state (/uploads/). Both backends, with systemd as PID 1: install,
upgrade, restart, rollback, `dnf downgrade`, the removals dnf refuses and those it does.
"""

from __future__ import annotations

import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import write_manifest
from e2ehost import (
    PARENT,
    PORT,
    REPO_ID,
    UPLOADS,
    Published,
    assert_nothing_left,
    datasets,
    dnf,
    dnf_status,
    fetch,
    get,
    installed,
    machine_state,
    rpm_verify,
    sh_status,
    status,
)

if TYPE_CHECKING:
    from freight.testhost import TestHost

pytestmark = pytest.mark.slow

PROD_PORT, EXTRA_PORT = 8081, 8082
PROD_PAGE = "Hello from webapp-prod"
OVERLAYS = "/var/lib/freight/overlays"


@dataclass(frozen=True)
class Derivative:
    name: str
    evr: str
    rpm: Path
    files_size: int  # the bytes of the files its manifest ships


def _derivative(published: Published, name: str, body: str, files: dict[str, str]) -> Derivative:
    folder = published.work / name
    for src, text in files.items():
        (folder / src).parent.mkdir(parents=True, exist_ok=True)
        (folder / src).write_text(text)
    head = f"name: {name}\nversion: \"1.0\"\nsummary: a derivative of the demo web server\nlicense: MIT\nbase: webapp\n"
    manifest = write_manifest(folder, head + textwrap.dedent(body))
    evr = published.publish(manifest, update_lock="packages:" in body)  # a derivative of files only has no lock
    return Derivative(name, evr, published.rpm(name, evr), sum(len(t.encode()) for t in files.values()))


@pytest.fixture(scope="module")
def prod(published: Published) -> Derivative:
    """container-webapp-prod: examples/webapp-prod, with the page replaced and a port of its own."""
    return _derivative(published, "webapp-prod", f"""\
        base_version: ">= 1.0"
        files:
          - {{src: site/index.html, dest: /srv/www/index.html}}
        run:
          command: [/usr/bin/httpd, -f, -v, -p, "{PROD_PORT}", -h, /srv/www]
        """, {"site/index.html": f"<!doctype html>\n<h1>{PROD_PAGE}</h1>\n"})


@pytest.fixture(scope="module")
def extra(published: Published) -> Derivative:
    """container-webapp-extra: a layer installing demo-extra (a user of its own, files it owns) over the newest base."""
    from freight.dist import demorepo

    demorepo.make_repo(published.demo, [Path(__file__).parent / "specs/demo-extra.spec"])
    return _derivative(published, "webapp-extra", f"""\
        repos:
          - {{name: demo, baseurl: "{published.demo.as_uri()}"}}
          - {{name: containers, baseurl: "{published.repo.as_uri()}", gpgkey: "{(published.repo / 'RPM-GPG-KEY-freight').as_uri()}"}}
        packages: [demo-extra]
        files:
          - {{src: site/index.html, dest: /srv/www/index.html}}
        run:
          command: [/usr/bin/httpd, -f, -v, -p, "{EXTRA_PORT}", -h, /srv/www]
          user: extra  # demo-extra's user, which only the container's passwd has: it reads extra.txt
        """, {"site/index.html": "<h1>extras</h1>\n"})


def served_during(host: TestHost, command: str, urls: dict[int, str]) -> dict[int, list[str | None]]:
    """Run COMMAND in the host while fetching each port's path in URLS over and over; what each answered, in order."""
    done: list[tuple[int, str]] = []
    worker = threading.Thread(target=lambda: done.append(sh_status(host, command)))
    answers: dict[int, list[str | None]] = {port: [] for port in urls}
    worker.start()
    while worker.is_alive():
        for port, path in urls.items():
            answers[port].append(get(host, port, path))
        time.sleep(0.1)
    worker.join()
    assert done and done[0][0] == 0, done
    return answers


def keep(host: TestHost, instance: str, text: str) -> None:
    """TEXT in uploads/kept.txt of INSTANCE's state path, written where the host keeps it."""
    where = status(host, instance)["state_paths"][UPLOADS]
    host.write_text(f"{where}/kept.txt", text)


def test_base_and_derivative_serve_upgrade_roll_back_and_remove(storage: str, e2e_host: TestHost, published: Published, prod: Derivative) -> None:
    host = e2e_host
    old_www, old = published.newest

    # --- dnf pulls the base in for the derivative; two machines of one image serve their pages -------
    out = dnf(host, "install", "container-webapp-prod")
    assert (installed(host, "container-webapp"), installed(host, "container-webapp-prod")) == (old, prod.evr), out
    assert "webapp-prod: made from webapp" in out, out
    # nobody asked for the base's own machine: made (the derivative's is a clone of its image), not started
    assert "webapp: installed as a dependency, so its machine is made but not enabled or started" in out, out
    assert machine_state(host, "webapp") == "" and machine_state(host, "webapp-prod") == "running"
    assert host.sh("systemctl is-enabled systemd-nspawn@webapp.service || true").strip() != "enabled"
    host.run(["freight", "start", "webapp"])  # and it starts as usual when asked
    base_page, prod_page = fetch(host, f"demo-www {old_www}"), fetch(host, PROD_PAGE, PROD_PORT)
    assert PROD_PAGE not in base_page and "demo-www" not in prod_page
    assert (machine_state(host, "webapp"), machine_state(host, "webapp-prod")) == ("running", "running")
    assert fetch(host, f"demo-www {old_www}", PROD_PORT, "/version.txt")  # the rest of its files are the base's
    assert prod.rpm.stat().st_size < prod.files_size + 30 * 1024, (prod.rpm.stat().st_size, prod.files_size)
    info = status(host, "webapp-prod")
    assert (info["image"], info["overlay"], info["version"], info["storage"]) == ("webapp", "webapp-prod", old, storage), info
    if storage == "zfs":
        sets = datasets(host)
        assert f"{PARENT}/images/webapp-prod" not in sets, sets  # no image of its own: a clone of the base's snapshot
        origin = host.run(["zfs", "get", "-H", "-o", "value", "origin", f"{PARENT}/machines/webapp-prod"]).strip()
        assert origin == f"{PARENT}/images/webapp@{old}"

    # --- a file written in one instance is in no other, nor in the image --------------------------
    host.write_text(f"{info['root']}/srv/www/only-prod.html", "only in webapp-prod\n")
    assert fetch(host, "only in webapp-prod", PROD_PORT, "/only-prod.html")
    assert get(host, PORT, "/only-prod.html") is None
    assert host.sh("ls /var/lib/freight/images/webapp/srv/www").split() == ["index.html", "version.txt"]
    assert rpm_verify(host) == (0, "")
    for name, port in (("webapp", PORT), ("webapp-prod", PROD_PORT)):
        keep(host, name, f"kept by {name}\n")
        assert fetch(host, f"kept by {name}", port, "/uploads/kept.txt")

    # --- dnf upgrade of the base: both machines serve the old pages all along ---------------------
    new_www, new = published.release("Hello from the upgraded demo")
    answers = served_during(host, f"dnf -y --refresh --repo {REPO_ID} upgrade container-webapp", {PORT: "/", PROD_PORT: "/version.txt"})
    assert len(answers[PORT]) >= 3, answers  # dnf took long enough to be watched
    print(f"\nduring dnf upgrade on {storage}: {len(answers[PORT])} fetches from each machine, all of the old release")
    assert all(a is not None and f"demo-www {old_www}" in a for a in answers[PORT]), answers[PORT]
    assert all(a == f"demo-www {old_www}\n" for a in answers[PROD_PORT]), answers[PROD_PORT]
    assert installed(host, "container-webapp") == new
    assert [(status(host, n)["version"], status(host, n)["pending"]) for n in ("webapp", "webapp-prod")] == [(old, new)] * 2
    listing = host.run(["freight", "list"])
    assert "webapp+webapp-prod" in listing and f"{old} ({new} at restart)" in listing, listing

    # --- restarted, each moves onto the new snapshot; what they wrote outside their state is gone --
    for name in ("webapp", "webapp-prod"):
        host.run(["freight", "restart", name])
    assert "Hello from the upgraded demo" in fetch(host, f"demo-www {new_www}")
    assert fetch(host, f"demo-www {new_www}", PROD_PORT, "/version.txt") and fetch(host, PROD_PAGE, PROD_PORT)
    for name, port in (("webapp", PORT), ("webapp-prod", PROD_PORT)):
        assert get(host, port, "/uploads/kept.txt") == f"kept by {name}\n"
        assert status(host, name)["pending"] is None
    assert get(host, PROD_PORT, "/only-prod.html") is None

    # --- rollback: the old release again, in seconds, while the package stays new -------------------
    started = time.monotonic()
    said = host.run(["freight", "rollback", "webapp-prod"])
    took = time.monotonic() - started
    print(f"\nrollback with systemd running, {storage}: {took:.2f} s (stop, move, start)")
    assert took < 15, f"rollback with systemd took {took:.2f} s; the README promises under 15 s for stop, move and start"
    assert f"webapp-prod: rolled back from webapp {new} to {old} (restarted on it)" in said, said
    assert f"The package container-webapp stays at {new}" in said and f"'dnf downgrade container-webapp-{old}'" in said
    assert fetch(host, f"demo-www {old_www}", PROD_PORT, "/version.txt") and fetch(host, PROD_PAGE, PROD_PORT)
    assert get(host, PROD_PORT, "/uploads/kept.txt") == "kept by webapp-prod\n"
    host.run(["freight", "rollback", "webapp"])
    assert fetch(host, f"demo-www {old_www}")
    assert installed(host, "container-webapp") == new
    assert f"{old} (pinned by rollback; {new} is installed)" in host.run(["freight", "list"])

    # --- dnf downgrade: the durable way back, on the snapshot kept, with no second copy -------------
    snapshots = datasets(host) if storage == "zfs" else []
    out = dnf(host, "downgrade", f"container-webapp-{old}")
    assert f"webapp: reusing the kept snapshot of {old}" in out, out
    assert installed(host, "container-webapp") == old
    for name in ("webapp", "webapp-prod"):
        info = status(host, name)
        assert (info["version"], info["pending"], info["pinned"]) == (old, None, False), info
    if storage == "zfs":
        assert datasets(host) == snapshots  # the old snapshot served again: nothing made, nothing copied

    # --- the base cannot go while its derivative is installed (freight-host's dnf plugin) ----------
    code, out = dnf_status(host, "remove", "container-webapp")
    assert code == 1 and "container-webapp-prod would be removed only because container-webapp goes, and the machine webapp-prod" in out, out
    assert installed(host, "container-webapp") == old and installed(host, "container-webapp-prod") == prod.evr
    assert get(host, PORT) is not None and get(host, PROD_PORT) is not None
    assert host.sh("ls /etc/dnf/protected.d").split() == ["dnf.conf", "yum.conf"]  # not through protected.d: see freight.host.guard

    # --- removing the derivative removes its instance only -----------------------------------------
    # dnf pulled the base in for it, so it offers to clean the base up too, as for any package;
    # an administrator who wants the base keeps it the dnf way
    code, out = dnf_status(host, "--assumeno", "remove", "container-webapp-prod")
    assert code == 1 and "Removing unused dependencies:\n container-webapp " in out, out
    dnf(host, "mark", "install", "container-webapp")
    dnf(host, "remove", "container-webapp-prod")
    assert_nothing_left(host, "webapp-prod")
    assert get(host, PROD_PORT) is None and fetch(host, f"demo-www {old_www}")
    assert installed(host, "container-webapp") == old and machine_state(host, "webapp") == "running"
    if storage == "zfs":
        assert not [d for d in datasets(host) if "machines/webapp-prod" in d]


def test_layer_installs_and_runs_with_its_package(storage: str, e2e_host: TestHost, published: Published, extra: Derivative) -> None:
    host = e2e_host
    dnf(host, "install", "container-webapp-extra")
    base = installed(host, "container-webapp")
    assert base is not None and installed(host, "container-webapp-extra") == extra.evr
    assert fetch(host, "extras", EXTRA_PORT)
    assert machine_state(host, "webapp") == ""  # pulled in for the layer: not started
    host.run(["freight", "start", "webapp"])
    # demo-extra's file, 0640 and owned by its user, which the machine runs httpd as: the owners are the container's
    assert get(host, EXTRA_PORT, "/extra.txt") == "extra\n"
    assert get(host, PORT, "/extra.txt") is None and "extras" not in fetch(host, "demo-www")

    # the package holds what demo-extra added or changed, the page, and the image's rpm database
    shipped = host.sh(f"rpm -ql container-webapp-extra | grep '^{OVERLAYS}/webapp-extra/' | sed 's|^{OVERLAYS}/webapp-extra/||'").split()
    files = {p for p in shipped if not host.sh(f"test -d {OVERLAYS}/webapp-extra/{p} && echo dir || true").strip()}
    assert files == {"etc/group", "etc/passwd", "srv/extra/data", "srv/www/extra.txt", "srv/www/index.html",
                     "usr/lib/sysimage/rpm/rpmdb.sqlite"}, files
    assert extra.rpm.stat().st_size * 10 < published.rpm("webapp", base).stat().st_size

    # dnf pulled the base in for the layer: removing the layer cleans it up too, and the plugin lets it
    out = dnf(host, "remove", "container-webapp-extra")
    assert "Removing unused dependencies:\n container-webapp " in out, out
    for name in ("webapp-extra", "webapp"):
        assert_nothing_left(host, name)
    assert get(host, EXTRA_PORT) is None and get(host, PORT) is None

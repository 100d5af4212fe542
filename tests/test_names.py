"""Every path a distribution package can ship is packed exactly, under its own name, by real rpmbuild.

The odd tree holds each character rpm's file list syntax gives meaning to,
the kinds of files a root filesystem has, and a path near PATH_MAX; it is
packed first as a package of its own (corpus/treerpm.py, freight's naming),
then by `freight build` into a container, and each RPM's `rpm -qpl`, and
what `rpm --root` installs from it, must equal the tree path for path.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import DBPATH, copy_repo, freight, webapp_manifest, write_manifest

from corpus import treerpm
from freight.build import rpmnames
from freight.dist import demorepo
from freight.model import rpmbugs

ODD_NAMES = [
    "[", "]", "*", "?", "{", "}", "a*b", "what?", "{x}", "{a,b}", "x{a,b}y", "}{", "}}}}", "{{,}}", ",{", "a,b",
    "[[]", "[!a]", "[[:space:]]", "backup[1].conf", "100%", "%{name}", "%%", "%attr(0600,a,b) x", "%dir", "%lang(x)",
    "sp ace", " ", "  two  ", 'dq"x', '"', "sq'x", "'", "back\\slash", "\\", "\\*", "-lead", "--", "#hash", "~tilde",
    "a:", "x..", "$HOME", "`x`", "a;b&c|d<e>f(g)h", "^!", "café", "日本語", "\u200b", "z", "|", "~",
]
LONG_PARTS = 17  # 17 folders of 220 characters: a path of over 3,800 bytes, near PATH_MAX with the image's prefix


def make_odd_tree(root: Path, special_files: bool = True) -> None:
    """Odd names, every kind of file a package can ship (FIFOs and devices with SPECIAL_FILES)."""
    odd = root / "usr/share/odd"
    odd.mkdir(parents=True)
    for name in ODD_NAMES:
        (odd / name).write_text(name)
    nested = odd / "dir {x} [y] %z 'q\" *"
    nested.mkdir()
    (nested / "in [side] {a,b}").write_text("inside")
    (odd / "empty folder").mkdir()
    (odd / "sticky").mkdir(mode=0o1777)
    os.chmod(odd / "sticky", 0o1777)
    (odd / "setuid").write_text("#!/bin/sh\n")
    os.chmod(odd / "setuid", 0o4755)
    (odd / "setgid").write_text("#!/bin/sh\n")
    os.chmod(odd / "setgid", 0o2755)
    (odd / "hard one").write_text("linked")
    os.link(odd / "hard one", odd / "hard [two]")
    if special_files:
        os.mkfifo(odd / "fifo")
        os.mknod(odd / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.mknod(odd / "loop9", stat.S_IFBLK | 0o660, os.makedev(7, 9))
    os.symlink("no-such-target", odd / "dangling")
    os.symlink("/usr/share/odd/[", odd / "absolute {link}")
    with (odd / "sparse").open("wb") as f:
        f.write(b"start")
        f.seek(8 * 1024 * 1024)
        f.write(b"end")
    long = odd
    for i in range(LONG_PARTS):
        long = long / (f"{i:02d}" + "l" * 218)
    long.mkdir(parents=True)
    (long / "end").write_text("far")


def listing(root: Path) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            out.add("/" + os.path.relpath(os.path.join(dirpath, name), root))
    return out


def attributes(root: Path) -> dict[str, tuple]:
    """What rpm must keep of each path: type, mode, owner, size, content, link target, device, link group."""
    out: dict[str, tuple] = {}
    inodes: dict[int, str] = {}
    for rel in sorted(listing(root)):
        path = root / rel.lstrip("/")
        st = os.lstat(path)
        kind = stat.S_IFMT(st.st_mode)
        content: object = None
        if kind == stat.S_IFREG:
            content = path.read_bytes()
        elif kind == stat.S_IFLNK:
            content = os.readlink(path)
        elif kind in (stat.S_IFCHR, stat.S_IFBLK):
            content = st.st_rdev
        group = inodes.setdefault(st.st_ino, rel) if kind == stat.S_IFREG and st.st_nlink > 1 else None
        out[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_size if kind == stat.S_IFREG else 0, content, group)
    return out


def rpm_paths(rpm_file: Path) -> set[str]:
    out = subprocess.run(["rpm", "-qp", "--qf", "[%{FILENAMES}\\n]", rpm_file], capture_output=True, check=True).stdout
    return set(os.fsdecode(line) for line in out.split(b"\n") if line)


# rpm 4.18.0, Debian 12's, opens a FIFO or device node it installs, and so hangs on a FIFO
# (rpm #2195, #2275; fixed in 4.18.1). They are checked in the header, and installs here leave them out.
SPECIAL_FILES = ("fifo", "null", "loop9")


def install(rpm_file: Path, root: Path, under: str = "") -> None:
    root.mkdir()
    leave_out = [f"--excludepath={under}/usr/share/odd/{name}" for name in SPECIAL_FILES]
    subprocess.run(
        ["rpm", "-i", "--root", root, "--dbpath", DBPATH, "--nodeps", "--noscripts", "--nosignature", *leave_out, rpm_file],
        check=True, capture_output=True,
    )


def without_special_files(found: dict[str, tuple], under: str = "") -> dict[str, tuple]:
    return {p: a for p, a in found.items() if p not in {f"{under}/usr/share/odd/{n}" for n in SPECIAL_FILES}}


def header_special_files(rpm_file: Path) -> dict[str, tuple[int, int]]:
    """The FIFO's and device nodes' mode and device number, as the header has them."""
    out = subprocess.run(
        ["rpm", "-qp", "--qf", "[%{FILEMODES} %{FILERDEVS} %{FILENAMES}\\n]", rpm_file], capture_output=True, text=True, check=True
    ).stdout
    found = {}
    for line in out.splitlines():
        mode, rdev, name = line.split(" ", 2)
        if os.path.basename(name) in SPECIAL_FILES and "/usr/share/odd/" in name:
            found[os.path.basename(name)] = (int(mode), int(rdev))
    return found


def tree_special_files(root: Path) -> dict[str, tuple[int, int]]:
    return {n: (os.lstat(root / "usr/share/odd" / n).st_mode, os.lstat(root / "usr/share/odd" / n).st_rdev) for n in SPECIAL_FILES}


@pytest.fixture(scope="module")
def odd_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("odd") / "root"
    make_odd_tree(root)
    return root


@pytest.fixture(scope="module")
def odd_rpm(odd_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return treerpm.build(odd_tree, treerpm.Package("demo-odd", "1.0"), tmp_path_factory.mktemp("odd-rpm"))


@pytest.fixture(scope="module")
def odd_installable_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The odd tree without FIFOs and devices: dnf, through rpm 4.18.0, could not install them (SPECIAL_FILES)."""
    root = tmp_path_factory.mktemp("odd-installable") / "root"
    make_odd_tree(root, special_files=False)
    return root


@pytest.fixture(scope="module")
def odd_repo(demo_repo: Path, odd_installable_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = copy_repo(demo_repo, tmp_path_factory.mktemp("odd-repo") / "repo")
    shutil.copy2(treerpm.build(odd_installable_tree, treerpm.Package("demo-odd", "1.0"), tmp_path_factory.mktemp("odd-rpms")), repo)
    demorepo.createrepo(repo)
    return repo


def test_a_package_lists_exactly_its_tree(odd_tree: Path, odd_rpm: Path, tmp_path: Path) -> None:
    assert rpm_paths(odd_rpm) == listing(odd_tree) - {"/"}
    assert header_special_files(odd_rpm) == tree_special_files(odd_tree)
    install(odd_rpm, tmp_path / "root")
    want = without_special_files(attributes(odd_tree))
    got = attributes(tmp_path / "root")
    for runtime in [p for p in got if p not in want and (p == DBPATH or p.startswith(DBPATH + "/") or DBPATH.startswith(p + "/"))]:
        del got[runtime]  # the database rpm made, and the folders on its way
    assert got == want


def test_a_container_carries_every_odd_path(odd_repo: Path, odd_installable_tree: Path, tmp_path: Path) -> None:
    manifest = webapp_manifest(tmp_path / "w", odd_repo)
    manifest.write_text(manifest.read_text().replace("[demo-www]", "[demo-www, demo-odd]"))
    result = freight("build", manifest, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    container = Path(result.last_line)
    image = "/var/lib/freight/images/webapp"
    wanted = {image + p for p in listing(odd_installable_tree)}
    carried = rpm_paths(container)
    assert wanted - carried == set()
    install(container, tmp_path / "host", under=image)
    laid = attributes(tmp_path / "host" / image.lstrip("/"))
    odd = {p: a for p, a in attributes(odd_installable_tree).items() if p.startswith("/usr/share/odd")}
    assert {p: a for p, a in laid.items() if p.startswith("/usr/share/odd")} == odd


def test_a_package_whose_fifo_rpm_would_never_install_is_refused_before_dnf_runs(
    demo_repo: Path, odd_tree: Path, odd_rpm: Path, tmp_path: Path
) -> None:
    """demo-odd with its FIFO and device nodes: where this machine's rpm hangs installing a FIFO
    (4.18.0, rpm issue 2195), the build stops before the transaction and names the package and path;
    where it does not, the container carries them."""
    repo = copy_repo(demo_repo, tmp_path / "repo")
    shutil.copy2(odd_rpm, repo)
    demorepo.createrepo(repo)
    manifest = webapp_manifest(tmp_path / "w", repo)
    manifest.write_text(manifest.read_text().replace("[demo-www]", "[demo-www, demo-odd]"))
    result = freight("build", manifest, "-o", tmp_path / "out", timeout=300)
    version = rpmbugs.running_rpm()
    if rpmbugs.hangs_on_fifos(version):
        assert result.returncode == 1, result.stderr
        assert f"rpm {version} hangs installing a FIFO (rpm issue 2195, fixed in 4.18.1)" in result.stderr
        assert "demo-odd: /usr/share/odd/fifo" in result.stderr
        assert not manifest.with_suffix(".lock").exists()
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    else:
        assert result.returncode == 0, result.stderr
        assert header_special_files(Path(result.last_line)) == tree_special_files(odd_tree)


def test_names_rpm_refuses_stop_the_build_and_exclude_paths_leaves_them_out(demo_repo: Path, tmp_path: Path) -> None:
    """A scriptlet makes names no rpm header can hold: the build names them, who made them, and the way out."""
    tree = tmp_path / "tree"
    (tree / "usr/share/maker").mkdir(parents=True)
    (tree / "usr/share/maker/readme").write_text("x")
    post = textwrap.dedent(
        """\
        mkdir -p /var/lib/maker
        nl=$(printf '\\nx'); nl=${nl%x}
        touch "/var/lib/maker/new${nl}line" "/var/lib/maker/bad$(printf '\\377')byte" /var/lib/maker/fine
        """
    )
    rpm_file = treerpm.build(tree, treerpm.Package("demo-maker", "1.0", requires=["demo-base"], post=post), tmp_path / "rpms")
    repo = copy_repo(demo_repo, tmp_path / "repo")
    shutil.copy2(rpm_file, repo)
    demorepo.createrepo(repo)
    manifest = write_manifest(
        tmp_path / "w",
        f"""\
        name: maker
        version: "1.0"
        summary: names rpm refuses
        license: MIT
        repos:
          - name: demo
            baseurl: {repo.as_uri()}
        packages: [demo-maker]
        """,
    )
    result = freight("build", manifest, "-o", tmp_path / "out")
    assert result.returncode == 1
    assert "cannot package 2 paths of maker" in result.stderr
    assert "'/var/lib/maker/new\\nline': it holds the control character 0x0a" in result.stderr
    assert "'/var/lib/maker/bad\\udcffbyte': it is not valid UTF-8" in result.stderr
    assert "no package owns it (a package's scriptlet made it)" in result.stderr
    assert "exclude_paths" in result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    assert not manifest.with_suffix(".lock").exists()

    manifest.write_text(manifest.read_text() + "exclude_paths: ['/var/lib/maker/new*', '/var/lib/maker/bad*']\n")
    result = freight("build", manifest, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    carried = rpm_paths(Path(result.last_line))
    assert "/var/lib/freight/images/maker/var/lib/maker/fine" in carried
    assert not [p for p in carried if "/var/lib/maker/new" in p or "/var/lib/maker/bad" in p]
    inputs = json.loads(manifest.with_suffix(".lock").read_text())["inputs"]
    assert inputs["exclude_paths"] == ["/var/lib/maker/bad*", "/var/lib/maker/new*"]


@pytest.mark.parametrize(
    "name, why",
    [("/a\nb", "control character 0x0a"), ("/a\tb", "control character 0x09"), ("/a\x7fb", "0x7f"), (os.fsdecode(b"/a\xffb"), "not valid UTF-8")],
)
def test_refused_names_say_why(name: str, why: str) -> None:
    assert why in (rpmnames.refusal(name) or "")


@pytest.mark.parametrize("name", ["/a b", "/100%", "/x/ünïcode", '/a"b', "/a\\b", "/a[1]", "/{a,b}", "/日本"])
def test_names_rpm_can_carry_are_not_refused(name: str) -> None:
    assert rpmnames.refusal(name) is None


def test_plain_names_are_written_as_they_are_and_others_as_one_character_brackets() -> None:
    assert rpmnames.pattern("/usr/bin/ls") == "/usr/bin/ls"
    assert rpmnames.pattern("/usr/bin/[") == "/usr/bin/[[]"
    assert rpmnames.pattern("/a b%") == "/a[[:space:]]b[%%%%]"


def test_the_decoy_outnumbers_every_closing_brace() -> None:
    decoy = rpmnames.Decoy()
    decoy.see("/plain")
    assert decoy.depth == 1
    decoy.see(rpmnames.pattern("/}}}x"))
    assert decoy.depth == 4
    decoy.see(rpmnames.pattern("/{{,}}"))
    assert decoy.depth == 4

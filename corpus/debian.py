"""A yum repository of real Debian 12 packages as RPMs: what containers of a real distribution hold.

debootstrap's minbase set for bookworm (the Priority: required packages and
apt, with what they depend on), fetched with `apt-get download` and turned
into RPMs by corpus/treerpm.py: every file of each .deb with its mode, owner,
hard links and device numbers as dpkg-deb unpacks them, conffiles as
%config(noreplace), Depends and Provides within the set (without versions:
dpkg and rpm order some versions differently). Maintainer scripts do not
carry over; where one makes what the system needs, the conversion does the
same (in rpm's Lua, which needs nothing installed): base-passwd lays down /etc/passwd and /etc/group from its masters, so
files of groups such as shadow keep their group. Made once, then kept in the
cache the test host's image uses (freight.testhost.image.cache_dir()).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from corpus import treerpm
from freight.dist import demorepo
from freight.testhost.image import cache_dir

# debootstrap --variant=minbase bookworm, resolved against Debian 12's package lists.
MINBASE = """
adduser apt base-files base-passwd bash bsdutils coreutils dash debconf debian-archive-keyring debianutils
diffutils dpkg e2fsprogs findutils gawk gcc-12-base gpgv grep gzip hostname init-system-helpers libacl1
libapt-pkg6.0 libattr1 libaudit-common libaudit1 libblkid1 libbz2-1.0 libc-bin libc6 libcap-ng0 libcap2
libcom-err2 libcrypt1 libdb5.3 libdebconfclient0 libext2fs2 libffi8 libgcc-s1 libgcrypt20 libgdbm-compat4
libgdbm6 libgmp10 libgnutls30 libgpg-error0 libhogweed6 libidn2-0 liblz4-1 liblzma5 libmd0 libmount1 libmpfr6
libnettle8 libp11-kit0 libpam-modules libpam-modules-bin libpam-runtime libpam0g libpcre2-8-0 libperl5.36
libreadline8 libseccomp2 libselinux1 libsemanage-common libsemanage2 libsepol2 libsigsegv2 libsmartcols1 libss2
libstdc++6 libsystemd0 libtasn1-6 libtinfo6 libudev1 libunistring2 libuuid1 libxxhash0 libzstd1 login logsave
mawk mount ncurses-base ncurses-bin passwd perl perl-base perl-modules-5.36 readline-common sed sysvinit-utils
tar tzdata usr-is-merged util-linux util-linux-extra zlib1g
""".split()

# What a maintainer script makes that the system needs, done by the converted package in
# rpm's Lua: base-passwd is installed first, before any shell is there to run a script.
POST_LUA = {
    "base-passwd": """\
for _, name in ipairs({"passwd", "group"}) do
  local dest = "/etc/" .. name
  if io.open(dest) == nil then
    local master = io.open("/usr/share/base-passwd/" .. name .. ".master", "rb")
    local out = io.open(dest, "wb")
    out:write(master:read("a"))
    out:close()
    master:close()
  end
end""",
}
_ARCH = {"amd64": "x86_64", "arm64": "aarch64", "all": "noarch"}


def repository() -> Path:
    """The corpus repository, made on first use (a few minutes: downloads about 40 MB)."""
    key = hashlib.sha256(" ".join(MINBASE).encode() + Path(__file__).read_bytes() + Path(treerpm.__file__).read_bytes()).hexdigest()[:12]
    cache = cache_dir() / f"debian-corpus-{key}"
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.parent / ".debian-corpus.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (cache / "repodata/repomd.xml").exists():
            for old in cache.parent.glob("debian-corpus-*"):
                shutil.rmtree(old)
            _make(cache)
    return cache


def _make(out: Path) -> None:
    work = Path(tempfile.mkdtemp(prefix="debian-corpus.", dir=out.parent))
    try:
        debs = work / "debs"
        debs.mkdir()
        subprocess.run(["apt-get", "download", "-q", *MINBASE], cwd=debs, check=True, capture_output=True)
        fields = {deb: _fields(deb) for deb in sorted(debs.glob("*.deb"))}
        names = {f["Package"] for f in fields.values()}
        provided = names | {p for f in fields.values() for p in _names(f.get("Provides", ""))}
        repo = work / "repo"
        repo.mkdir()
        for deb, f in fields.items():
            _convert(deb, f, provided, work / "root", repo)
        demorepo.createrepo(repo)
        os.rename(repo, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fields(deb: Path) -> dict[str, str]:
    wanted = ["Package", "Version", "Architecture", "Depends", "Pre-Depends", "Provides", "Description"]
    out = subprocess.run(["dpkg-deb", "--field", deb, *wanted], capture_output=True, text=True, check=True).stdout
    found: dict[str, str] = {}
    for line in out.splitlines():
        if line[:1] not in (" ", "\t") and ":" in line:
            key, value = line.split(":", 1)
            found[key] = value.strip()
    return found


def _names(field: str) -> list[str]:
    return [alt.split()[0].split(":")[0] for group in field.split(",") for alt in group.split("|") if alt.strip()]


def _requires(field: str, provided: set[str]) -> list[str]:
    """Each dependency group, as far as the set can satisfy it: one name, or a rich `(a or b)`."""
    out = []
    for group in field.split(","):
        alts = sorted({alt.split()[0].split(":")[0] for alt in group.split("|") if alt.strip()} & provided)
        if len(alts) == 1:
            out.append(alts[0])
        elif alts:
            out.append("(" + " or ".join(alts) + ")")
    return out


def _evr(version: str) -> tuple[int | None, str, str]:
    epoch, _, rest = version.rpartition(":") if ":" in version else ("", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")
    return (int(epoch) if epoch else None), upstream.replace("-", "_"), revision.replace("-", "_")


def _convert(deb: Path, f: dict[str, str], provided: set[str], root: Path, repo: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    fsys = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-p", "--numeric-owner", "-C", root], input=fsys, check=True)
    users, groups = {0: "root"}, {0: "root"}
    with tarfile.open(fileobj=io.BytesIO(fsys)) as tar:
        for member in tar:
            users[member.uid] = member.uname or users.get(member.uid, str(member.uid))
            groups[member.gid] = member.gname or groups.get(member.gid, str(member.gid))
    conffiles = subprocess.run(["dpkg-deb", "--info", deb, "conffiles"], capture_output=True, text=True).stdout.split()
    name = f["Package"]
    epoch, version, release = _evr(f["Version"])
    non_root = len(users) > 1 or len(groups) > 1
    package = treerpm.Package(
        name, version, release, epoch=epoch, arch=_ARCH[f["Architecture"]],
        summary=f.get("Description", name).split("\n")[0] or name,
        requires=_requires(f.get("Depends", ""), provided) + _requires(f.get("Pre-Depends", ""), provided),
        requires_pre=["base-passwd"] if non_root and name != "base-passwd" else [],
        provides=sorted(set(_names(f.get("Provides", "")))),
        conffiles={c for c in conffiles if c.startswith("/")}, post=POST_LUA.get(name), post_lua=name in POST_LUA,
    )
    treerpm.build(root, package, repo, owner=lambda st: (users[st.st_uid], groups[st.st_gid]))

"""A synthetic but realistic RPM repository for the benchmarks, made with the real rpmbuild.

freight's costs grow with what a distribution is made of: many packages that
depend on each other, many small text files, some large binaries (compressible
code and incompressible compressed assets), symlinks, and real ELF files whose
colour rpm must get right. The generator makes such a repository from a few
numbers, so the same benchmark runs tiny (a test), small (CI) and large:

    python -m bench.repogen [--packages 120] [--files 12000] [--megabytes 300]

It is deterministic (a seed), and cached: a repository is made once per set of
parameters (and version of this generator) and reused by every later run.
Packages are built by `freight.demorepo.build_rpm`, on all cores, while the
next package's files are being written.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jinja2

from freight.build import rpmnames
from freight.common import log as flog
from freight.dist import demorepo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_CACHE = ROOT / "build" / "bench"
PREFIX = "bench"
FILESYSTEM = f"{PREFIX}-filesystem"
# Real ELF files of the build host, copied into some packages so that rpm's
# ELF colouring (and libmagic's cost on real binaries) is exercised.
ELF_CANDIDATES = (
    "/usr/bin/zstd",
    "/usr/bin/tar",
    "/usr/bin/gzip",
    "/usr/bin/file",
    "/usr/bin/rpm",
    "/usr/lib/x86_64-linux-gnu/libzstd.so.1",
    "/usr/lib/x86_64-linux-gnu/libmagic.so.1",
    "/usr/lib/x86_64-linux-gnu/libsqlite3.so.0",
    "/usr/lib64/libzstd.so.1",
    "/usr/lib64/libsqlite3.so.0",
)
LANGS = ("de", "es", "fr", "it", "ja", "nl", "pl", "pt_BR", "ru", "zh_CN")
TEXT_DIRS = ("doc", "templates", "scripts", "conf", "help", "examples", "schemas", "i18n")
FILESYSTEM_DIRS = (
    "/etc", "/usr", "/usr/bin", "/usr/lib64", "/usr/include", "/usr/share", "/usr/share/doc",
    "/usr/share/locale", "/var", "/var/lib", "/var/tmp", "/tmp", "/root", "/srv",
    *(f"/usr/share/locale/{lang}" for lang in LANGS),
    *(f"/usr/share/locale/{lang}/LC_MESSAGES" for lang in LANGS),
)
PAGE = 4096
# What distributions ship besides plain names (coreutils' `[`, locale and font files
# with spaces and quotes, shell-glob characters in test data): every fourth package
# carries a folder of them, so figure 1 packs what rpm's file lists find hardest.
ODD_NAMES = (
    "[", "]", "star*", "what?", "{brace}", "a,b}", "50%", "two words", "it's", 'say "hi"', "back\\slash",
    "-leading-dash", "naïve ünïcödé", "日本語",
)


@dataclass(frozen=True)
class Params:
    """The shape of the repository; every field is part of the cache key."""

    packages: int = 120
    files: int = 12_000
    megabytes: int = 300  # installed size, in MB (10^6 bytes)
    seed: int = 1

    def key(self) -> str:
        """Changes with the parameters and with the generator's own code (a new generator, a new repo)."""
        h = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode())
        for source in (Path(__file__), HERE / "package.spec.j2"):
            h.update(source.read_bytes())
        return f"{self.packages}p-{self.files}f-{self.megabytes}mb-{h.hexdigest()[:10]}"


@dataclass
class Entry:
    """One path of a package: a directory it owns, a file (with how to fill it) or a symlink."""

    path: str
    kind: str  # dir | text | code | blob | elf | link
    size: int = 0
    source: str = ""  # a symlink's target, or the host ELF file copied
    mode: int = 0o644


@dataclass
class PackagePlan:
    name: str
    arch: str
    requires: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)

    @property
    def nfiles(self) -> int:
        return sum(1 for e in self.entries if e.kind != "dir")

    @property
    def nbytes(self) -> int:
        return sum(e.size for e in self.entries)


# --- the plan: names, dependencies, paths and sizes ----------------------------


def plan(params: Params, arch: str) -> list[PackagePlan]:
    """Decide every package, path and size (no I/O but reading the host's ELF files' sizes)."""
    rng = random.Random(params.seed)
    elves = host_elves()
    fs = _filesystem_package()
    count = max(params.packages - 1, 1)
    file_weights = [rng.lognormvariate(0, 0.9) for _ in range(count)]
    byte_weights = [w * rng.lognormvariate(0, 0.8) for w in file_weights]
    budget = max(params.files - fs.nfiles, count * 6)
    packages: list[PackagePlan] = []
    arch_count = 0
    for i in range(count):
        name = f"{PREFIX}-{i + 1:03d}"
        is_arch = i % 3 != 2  # every third package is noarch data, as in a distribution
        elf = ""
        if is_arch:
            if elves and arch_count % 6 == 0:
                elf = elves[(arch_count // 6) % len(elves)]
            arch_count += 1
        nfiles = max(6, round(budget * file_weights[i] / sum(file_weights)))
        pkg = _package(rng, name, arch if is_arch else "noarch", nfiles, elf, odd=i % 4 == 0)
        pkg.requires = [FILESYSTEM, *_requires(rng, packages)]
        packages.append(pkg)
    _share_binary_bytes(rng, packages, byte_weights, params.megabytes * 1_000_000 - fs.nbytes)
    return [fs, *packages]


def _filesystem_package() -> PackagePlan:
    """The directories everyone shares and the files a container needs (like `filesystem` + `setup`)."""
    entries = [Entry(d, "dir") for d in FILESYSTEM_DIRS]
    entries += [Entry(f"/{link}", "link", source=f"usr/{target}") for link, target in (("bin", "bin"), ("sbin", "bin"), ("lib64", "lib64"))]
    entries += [Entry(f"/etc/{name}", "text", size=size) for name, size in (("os-release", 200), ("passwd", 0), ("group", 0))]
    return PackagePlan(name=FILESYSTEM, arch="noarch", entries=entries)


def _package(rng: random.Random, name: str, arch: str, nfiles: int, elf: str, odd: bool = False) -> PackagePlan:
    """NFILES paths: docs, a command, binaries (sized later), symlinks, translations and text;
    with ODD, a folder of the names in ODD_NAMES as well."""
    pkg = PackagePlan(name=name, arch=arch)
    add = pkg.entries.append
    share, doc, data = f"/usr/share/{name}", f"/usr/share/doc/{name}", f"/usr/share/{name}/data"
    for d in (share, doc, data):
        add(Entry(d, "dir"))
    if odd:
        add(Entry(f"{share}/odd names", "dir"))
        for odd_name in ODD_NAMES:
            add(Entry(f"{share}/odd names/{odd_name}", "text", size=_text_size(rng)))
    for stem in ("README", "NEWS", "COPYING"):
        add(Entry(f"{doc}/{stem}", "text", size=_text_size(rng)))
    if elf:
        add(Entry(f"/usr/bin/{name}", "elf", size=os.path.getsize(elf), source=elf, mode=0o755))
    else:
        add(Entry(f"/usr/bin/{name}", "text", size=_text_size(rng), mode=0o755))
    nbin = max(1, round(0.08 * nfiles))
    nlib = 0 if arch == "noarch" else max(1, math.ceil(nbin * 0.6))
    for j in range(nbin):
        if j < nlib:
            lib = f"lib{name}-{j}.so"
            add(Entry(f"/usr/lib64/{lib}.1.0", "code", mode=0o755))
            add(Entry(f"/usr/lib64/{lib}.1", "link", source=f"{lib}.1.0"))
            pkg.provides.append(f"{lib}.1()(64bit)")
        else:  # data files: a quarter already compressed (images, fonts, archives)
            add(Entry(f"{data}/data{j:03d}.bin", "blob" if rng.random() < 0.25 else "code"))
    for k in range(max(1, round(0.03 * nfiles))):
        add(Entry(f"/usr/bin/{name}-alias{k}", "link", source=name))
    if nfiles >= 40:
        for lang in LANGS[: max(1, round(0.04 * nfiles))]:
            add(Entry(f"/usr/share/locale/{lang}/LC_MESSAGES/{name}.mo", "code", size=_text_size(rng)))
    headers = arch != "noarch" and nfiles >= 30
    if headers:
        add(Entry(f"/usr/include/{name}", "dir"))
    sub = ""
    for n in range(max(0, nfiles - pkg.nfiles)):
        if n % 40 == 0:
            sub = f"{share}/{TEXT_DIRS[(n // 40) % len(TEXT_DIRS)]}{n // 40:02d}"
            add(Entry(sub, "dir"))
        if headers and n % 5 == 0:
            add(Entry(f"/usr/include/{name}/{name}-{n:04d}.h", "text", size=_text_size(rng)))
        else:
            add(Entry(f"{sub}/file{n:04d}.txt", "text", size=_text_size(rng)))
    return pkg


def _text_size(rng: random.Random) -> int:
    """Text files are small with a long tail: median 1.5 KB, rarely over 64 KB."""
    return int(min(max(rng.lognormvariate(math.log(1500), 1.1), 40), 256_000))


def _requires(rng: random.Random, earlier: list[PackagePlan]) -> list[str]:
    """0-3 dependencies on earlier packages: by soname where it has a library, else by name."""
    if not earlier:
        return []
    recent = earlier[-30:]
    picks = rng.sample(recent, k=min(len(recent), rng.choice((0, 1, 1, 2, 2, 3))))
    return [p.provides[0] if p.provides else p.name for p in picks]


def _share_binary_bytes(rng: random.Random, packages: list[PackagePlan], weights: list[float], total: int) -> None:
    """Give the binaries whatever the text and ELF files leave of TOTAL, in heavy-tailed sizes."""
    fixed = sum(p.nbytes for p in packages)
    left = max(total - fixed, 0)
    wsum = sum(weights)
    for pkg, weight in zip(packages, weights):
        bins = [e for e in pkg.entries if e.kind in ("code", "blob") and e.size == 0]
        share = left * weight / wsum
        sizes = [rng.lognormvariate(0, 1.2) for _ in bins]
        for entry, w in zip(bins, sizes):
            entry.size = max(PAGE, int(share * w / sum(sizes)))


def host_elves() -> list[str]:
    """The candidate ELF files this host has (resolved, deduplicated, in a fixed order)."""
    found: list[str] = []
    for candidate in ELF_CANDIDATES:
        path = os.path.realpath(candidate)
        try:
            with open(path, "rb") as f:
                if f.read(4) == b"\x7fELF" and path not in found:
                    found.append(path)
        except OSError:
            continue
    return found


# --- the content ---------------------------------------------------------------


class Content:
    """Fills files fast: words for text, skewed bytes with zero pages for code, random bytes for blobs.

    zstd -3 compresses the text and the code about 2.8x (like real ELF code)
    and the blobs not at all (like the compressed images, fonts and archives
    a distribution ships); the whole repository about 2.2x.
    """

    def __init__(self, seed: int) -> None:
        rng = random.Random(f"{seed}-vocabulary")
        letters = "abcdefghijklmnopqrstuvwxyz"
        self.words = ["".join(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(4000)] + ["\n"] * 300
        # A byte alphabet skewed like machine code: many zeros, a few common opcodes.
        self.table = bytes(0 if i < 140 else 1 + (i * 7) % 32 for i in range(256))

    def text(self, rng: random.Random, size: int) -> bytes:
        return " ".join(rng.choices(self.words, k=size // 5 + 1)).encode()[:size]

    def code(self, rng: random.Random, size: int) -> bytes:
        data = bytearray(rng.randbytes(size).translate(self.table))
        for page in range(0, size, PAGE):
            if rng.random() < 0.3:
                data[page : page + PAGE] = bytes(len(data[page : page + PAGE]))
        return bytes(data)

    def blob(self, rng: random.Random, size: int) -> bytes:
        return rng.randbytes(size)


def write_tree(pkg: PackagePlan, root: Path, content: Content, seed: int) -> None:
    """Write PKG's files under ROOT (its future buildroot layout)."""
    rng = random.Random(f"{seed}-{pkg.name}")
    for entry in pkg.entries:
        path = root / entry.path.lstrip("/")
        if entry.kind == "dir":
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if entry.kind == "link":
            path.symlink_to(entry.source)
            continue
        if entry.kind == "elf":
            shutil.copyfile(entry.source, path)
        elif entry.path == "/etc/passwd":
            path.write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n")
        elif entry.path == "/etc/group":
            path.write_text("root:x:0:\nnogroup:x:65534:\n")
        else:
            path.write_bytes(getattr(content, entry.kind)(rng, entry.size))
        path.chmod(entry.mode)


def write_config_files(folder: Path, count: int, seed: int) -> int:
    """COUNT small text files (a configuration overlay's) in FOLDER; return their total bytes."""
    rng = random.Random(f"{seed}-config")
    content = Content(seed)
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for n in range(count):
        data = content.text(rng, _text_size(rng))
        (folder / f"setting{n:02d}.conf").write_bytes(data)
        total += len(data)
    return total


def filelist(pkg: PackagePlan) -> tuple[str, int]:
    """The package's %files list (its own directories as %dir, files and symlinks), each path
    named as freight names it (freight.build.rpmnames); and how many `{` the buildroot's path
    must hold to keep brace expansion off those names."""
    decoy = rpmnames.Decoy()
    lines = []
    for e in pkg.entries:
        written = rpmnames.pattern(e.path)
        decoy.see(written)
        lines.append(f"%dir {written}\n" if e.kind == "dir" else f"{written}\n")
    return "".join(lines), decoy.depth


def render_spec(pkg: PackagePlan, tree: Path, filelist_path: Path) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE), undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    return env.get_template("package.spec.j2").render(
        name=pkg.name, version="1.0", arch=pkg.arch, requires=pkg.requires, provides=pkg.provides,
        nfiles=pkg.nfiles, tree=tree, filelist=filelist_path,
    )


# --- building and caching ------------------------------------------------------


@dataclass
class Repo:
    path: Path
    params: Params
    packages: list[str]
    files: int
    bytes: int
    rpm_bytes: int
    reused: bool


def ensure(params: Params, cache: Path = DEFAULT_CACHE) -> Repo:
    """The repository for PARAMS: from the cache when it was made before, else made now."""
    final = cache / "repos" / params.key()
    summary = final / "bench-repo.json"
    if summary.exists():
        return Repo(path=final, params=params, reused=True, **_load_summary(summary))
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{params.key()}.", dir=final.parent))
    try:
        repo = work / "repo"
        plans = plan(params, _host_arch())
        flog.step("Generating the bench repository %s (%d packages, %d files, %d MB)", params.key(), len(plans),
                  sum(p.nfiles for p in plans), sum(p.nbytes for p in plans) // 1_000_000)
        for _ in _build_all(plans, work, repo, params.seed):
            pass
        demorepo.createrepo(repo)
        info = {
            "packages": [p.name for p in plans],
            "files": sum(p.nfiles for p in plans),
            "bytes": sum(p.nbytes for p in plans),
            "rpm_bytes": sum(f.stat().st_size for f in repo.glob("*.rpm")),
        }
        (repo / "bench-repo.json").write_text(json.dumps({"params": asdict(params), **info}, indent=2) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(repo, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _drop_stale(final)
    return Repo(path=final, params=params, reused=False, **info)


def _drop_stale(current: Path) -> None:
    """Remove repositories of the same parameters made by an older generator: nothing would use them again."""
    params = json.loads((current / "bench-repo.json").read_text())["params"]
    for other in current.parent.glob(f"{current.name.rsplit('-', 1)[0]}-*"):
        try:
            same = json.loads((other / "bench-repo.json").read_text())["params"] == params
        except (OSError, ValueError, KeyError):
            continue
        if other != current and same:
            shutil.rmtree(other, ignore_errors=True)


def _load_summary(path: Path) -> dict:
    doc = json.loads(path.read_text())
    doc.pop("params")
    return doc


def _build_all(plans: list[PackagePlan], work: Path, repo: Path, seed: int) -> Iterator[Path]:
    """Write each package's tree, then rpmbuild it on a free core while the next tree is written."""
    content = Content(seed)
    futures: list[Future[Path]] = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for n, pkg in enumerate(plans, 1):
            tree = work / "trees" / pkg.name
            write_tree(pkg, tree, content, seed)
            lst = work / "lists" / f"{pkg.name}.files"
            lst.parent.mkdir(parents=True, exist_ok=True)
            listed, braces = filelist(pkg)
            lst.write_text(listed)
            spec = work / "specs" / f"{pkg.name}.spec"
            spec.parent.mkdir(parents=True, exist_ok=True)
            spec.write_text(render_spec(pkg, tree, lst))
            futures.append(pool.submit(_build_one, spec, repo, tree, braces))
            if n % 20 == 0:
                flog.log.info("  %d/%d packages written", n, len(plans))
        for future in futures:
            yield future.result()


def _build_one(spec: Path, repo: Path, tree: Path, braces: int) -> Path:
    """rpmbuild SPEC, its buildroot below a folder named by BRACES `{` that no file name closes."""
    try:
        return demorepo.build_rpm(spec, repo, {"_buildrootdir": "%{_topdir}/BUILDROOT/" + "{" * braces})
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def _host_arch() -> str:
    import rpm

    return rpm.expandMacro("%{_arch}")


def main(argv: list[str] | None = None) -> int:
    defaults = Params()
    parser = argparse.ArgumentParser(prog="python -m bench.repogen", description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=defaults.packages)
    parser.add_argument("--files", type=int, default=defaults.files)
    parser.add_argument("--megabytes", type=int, default=defaults.megabytes, help="installed size in MB")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    flog.setup()
    repo = ensure(Params(args.packages, args.files, args.megabytes, args.seed), args.cache_dir)
    flog.step("%s %s: %d packages, %d files, %.0f MB installed, %.0f MB of RPMs", "Reused" if repo.reused else "Made",
              repo.path, len(repo.packages), repo.files, repo.bytes / 1e6, repo.rpm_bytes / 1e6)
    print(repo.path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

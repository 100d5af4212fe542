"""`freight verify --installed NAME`: has anything changed in an installed container's image?

Two rpm databases know the image's files, and each is asked:

* the image's own (`rpm --root IMAGE --dbpath /usr/lib/sysimage/rpm -Va`): the
  vendors' package headers, with the digests, sizes, modes and owners the
  distribution recorded for every file of every package inside;
* the host's (`rpm -V container-NAME`): the container package's header, which
  covers the whole image as freight packed it, including files no vendor
  package owns (freight's metadata, files the manifest copied in).

Ownership: the host's rpm resolves the owner names its header records with the
host's /etc/passwd and /etc/group, so a file of a user that exists only inside
the container (say `www`) shows `U`/`G` there even when nothing changed (see
README, "Known limits"). For such a letter this module resolves the recorded
name with the image's own /etc/passwd or /etc/group, the users the container
runs with; when the file's numeric owner is that user's, the letter is dropped
and the file listed as owned by a container user instead. A file whose owner
differs from both is still reported. The image's own database needs no such
correction: `rpm --root IMAGE` resolves names with the image's files already.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freight.common.errors import FreightError
from freight.common.run import run
from freight.host.installed import HostView
from freight.model import accounts
from freight.model.paths import RPM_DBPATH

log = logging.getLogger("freight.host.verify")

# rpm -V: nine result characters (or "missing"), an attribute marker, the path.
_LINE = re.compile(r"^(?P<flags>missing|[.?SM5DLUGTP]{9})\s+(?P<attr>[cdglr]?)\s*(?P<path>/.*)$")
LETTERS = {
    "S": "size", "M": "mode", "5": "digest", "D": "device", "L": "link target",
    "U": "owner", "G": "group", "T": "mtime", "P": "capabilities", "missing": "missing",
}


@dataclass
class Changed:
    path: str  # as the host sees it
    host: str | None = None  # rpm -V's letters from the host's database
    image: str | None = None  # ... from the image's own database

    @property
    def reasons(self) -> list[str]:
        letters: set[str] = set()
        for flags in (self.host, self.image):
            if flags == "missing":
                letters.add("missing")
            elif flags:
                letters.update(ch for ch in flags if ch not in ".?")
        return [LETTERS[k] for k in LETTERS if k in letters]


@dataclass
class InstalledVerdict:
    container: str
    package: str
    image: str
    changed: list[Changed] = field(default_factory=list)
    owned_by_container_users: list[str] = field(default_factory=list)
    note: str | None = None

    @property
    def clean(self) -> bool:
        return not self.changed

    def to_json(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "package": self.package,
            "image": self.image,
            "clean": self.clean,
            "changed": [{"path": c.path, "host": c.host, "image": c.image, "reasons": c.reasons} for c in self.changed],
            "owned_by_container_users": self.owned_by_container_users,
            "note": self.note,
        }

    def render(self) -> str:
        head = f"{self.package} ({self.image}): " + ("clean" if self.clean else f"{len(self.changed)} changed file(s)")
        lines = [head] + ([f"  note: {self.note}"] if self.note else [])
        if self.changed:
            lines.append(f"  {'host rpm':<9}  {'image rpm':<9}  path  (what changed)")
        for c in self.changed:
            lines.append(f"  {c.host or '-':<9}  {c.image or '-':<9}  {c.path}  ({', '.join(c.reasons)})")
        if self.owned_by_container_users:
            lines.append(f"  {len(self.owned_by_container_users)} file(s) owned by users of the container only: "
                         "owners checked against the image's /etc/passwd and /etc/group")
        return "\n".join(lines)


def rpm_verify(argv: list[str]) -> dict[str, str]:
    """Run `rpm ... -V`; its changed files as PATH -> letters. Exit 1 only means changes.

    One line a path is safe: no rpm header holds a name with a newline or one that is not
    UTF-8 (rpmbuild refuses control characters, the header refuses the rest; freight's
    build stops on such names, freight.build.rpmnames), so no path rpm verifies can
    span two lines; spaces and the other odd characters stay inside the path group."""
    proc = run(["rpm", *argv], check=False)
    found = {}
    for line in proc.stdout.splitlines():
        m = _LINE.match(line)
        if m:
            found[m["path"]] = m["flags"]
        elif line.strip():
            log.info("rpm: %s", line.strip())
    if proc.returncode != 0 and not found:
        raise FreightError(f"rpm {' '.join(argv)} failed with exit code {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}")
    return found


def check(host: HostView, name: str) -> InstalledVerdict:
    container = host.container(name)
    image = host.image_dir(container.name)
    on_host = str(host.config.images_dir / container.name)
    derivative = False
    if not image.is_dir():
        # A derivative ships an overlay, not an image; its own database describes the
        # base's packages plus its own and only makes sense over the base's image.
        overlay_on_host = host.config.lib_dir / "overlays" / container.name
        if not host.below(overlay_on_host).is_dir():
            raise FreightError(f"{container.package} is installed but its image {image} does not exist")
        image, on_host, derivative = host.below(overlay_on_host), str(overlay_on_host), True
    verdict = InstalledVerdict(container.name, container.nevra, on_host)
    if derivative:
        verdict.note = "a derivative's overlay: checked with the host's database only"
    by_path: dict[str, Changed] = {}

    host_flags = rpm_verify(["--root", str(host.root), "-V", "--nodeps", "--noscripts", container.package])
    owners = host.file_owners(container.package) if any(_ownerish(f) for f in host_flags.values()) else {}
    users, groups = accounts.ids_by_name(image / "etc/passwd"), accounts.ids_by_name(image / "etc/group")
    for path, flags in sorted(host_flags.items()):
        if _ownerish(flags) and path in owners:
            flags = _discount_owners(host.below(Path(path)), flags, owners[path], users, groups)
            if flags is None:
                verdict.owned_by_container_users.append(path)
                continue
        by_path.setdefault(path, Changed(path)).host = flags

    if derivative:
        log.warning("%s: %s", container.name, verdict.note)
    elif (image / RPM_DBPATH.lstrip("/")).is_dir():
        image_flags = _verify_image(image)
        for path, flags in sorted(image_flags.items()):
            seen = f"{on_host}{path}"
            by_path.setdefault(seen, Changed(seen)).image = flags
    else:
        log.warning("%s has no rpm database of its own: only the host's database was asked", image)
    verdict.changed = [by_path[p] for p in sorted(by_path)]
    return verdict


def _verify_image(image: Path) -> dict[str, str]:
    """`rpm -Va` of IMAGE by its own database, read from a copy.

    Opening an sqlite rpm database writes beside it (a lock, -shm and -wal files),
    which fails on a read-only image (ZFS images are closed between transactions)
    and would change the image being checked. rpm puts --dbpath below --root, so the
    copy is named by a path relative to the image's real location."""
    real = image.resolve()
    with tempfile.TemporaryDirectory(prefix="freight-verify-db-") as tmp:
        for f in (real / RPM_DBPATH.lstrip("/")).iterdir():
            if f.is_file() and not f.name.startswith("."):
                shutil.copy2(f, tmp)
        dbpath = "/" + os.path.relpath(tmp, real)
        return rpm_verify(["--root", str(real), "--dbpath", dbpath, "-Va", "--nodeps", "--noscripts"])


def _ownerish(flags: str) -> bool:
    return flags != "missing" and ("U" in flags or "G" in flags)


def _discount_owners(
    path: Path, flags: str, recorded: tuple[str, str], users: dict[str, int], groups: dict[str, int]
) -> str | None:
    """FLAGS without U/G where the file's owner is the recorded name as the image resolves it;
    None when nothing else is left."""
    try:
        st = os.lstat(path)
    except OSError:
        return flags
    user, group = recorded
    out = list(flags)
    if "U" in flags and users.get(user) == st.st_uid:
        out[flags.index("U")] = "."
    if "G" in flags and groups.get(group) == st.st_gid:
        out[flags.index("G")] = "."
    text = "".join(out)
    return None if set(text) <= {"."} else text

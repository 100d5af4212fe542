"""Who owns a container's files: named at build time, given on the host, both by the container's own users.

The container's header names each file's owner, as read from the staged tree
with the container's own /etc/passwd and /etc/group (`Owners`). A host's rpm
resolves those names with the host's account files, so a file of `www` (a
user only the container has) lands as root's, and a name the host also has
gets the host's number for it. The build therefore also records, in the
package's metadata as `owners.json`, every path of the image (or a layer's
overlay) not owned by root (`RecordedOwners`); the host hook, and a layer's
build, which lays its base down as a host would, give those paths their
owners by the container's own account files.

Only owners: modes, times and capabilities stay as the container's header has
them, which is what the host's rpm wrote and what `rpm -V` checks. (`rpm
--setugids` is an alias of `--restore`, which would also put back the
vendors' modes and times over files the container changed on purpose, such as
a manifest's 0600 file laid over a packaged 0644 one, and knows no owner for a
folder a scriptlet made.)
"""

from __future__ import annotations

import json
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from freight.common.errors import FreightError
from freight.model import accounts, capabilities

log = logging.getLogger("freight.model.owners")

FILE_NAME = "owners.json"
FORMAT = 1


@dataclass
class Owners:
    """uid/gid to name maps from the container's own passwd and group files."""

    users: dict[int, str]
    groups: dict[int, str]

    @classmethod
    def of(cls, root: Path) -> Owners:
        return cls(users=accounts.names_by_id(root / "etc/passwd"), groups=accounts.names_by_id(root / "etc/group"))

    @classmethod
    def root_only(cls) -> Owners:
        """For trees whose every file freight copied, and so belongs to root."""
        return cls(users={0: "root"}, groups={0: "root"})

    def names(self, st: os.stat_result, rel: str) -> tuple[str, str] | None:
        """The (user, group) names of a file, or None for root's."""
        if st.st_uid == 0 and st.st_gid == 0:
            return None
        user = self.users.get(st.st_uid)
        group = self.groups.get(st.st_gid)
        if user is None or group is None:
            raise FreightError(
                f"{rel} is owned by {st.st_uid}:{st.st_gid}, which the container's /etc/passwd or /etc/group does not name"
            )
        return user, group


@dataclass
class RecordedOwners:
    """(user, group) names by path, relative to the tree they belong to (an image or an overlay), without a leading '/'."""

    paths: dict[str, tuple[str, str]] = field(default_factory=dict)
    # The whole mode of a setuid or setgid path: a host's rpm clears those bits when it
    # cannot resolve the owner (a user or group only the container has).
    modes: dict[str, int] = field(default_factory=dict)

    def under(self, prefix: str) -> RecordedOwners:
        """The entries below PREFIX (a path as recorded, with its leading '/'), made relative to it."""
        start = prefix.rstrip("/") + "/"
        return RecordedOwners(
            {p[len(start):]: o for p, o in self.paths.items() if p.startswith(start)},
            {p[len(start):]: m for p, m in self.modes.items() if p.startswith(start)},
        )

    def to_json(self) -> str:
        """[user, group], or [user, group, mode] for a setuid/setgid path; JSON escapes keep any name."""
        owners = {p: [*o, *([self.modes[p]] if p in self.modes else [])] for p, o in sorted(self.paths.items())}
        return json.dumps({"format": FORMAT, "owners": owners}, indent=1) + "\n"

    @classmethod
    def load(cls, meta_dir: Path) -> RecordedOwners:
        """The owners a package recorded in META_DIR; none if it predates them."""
        path = meta_dir / FILE_NAME
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            log.warning("%s has no %s (built by an older freight): its files keep the owners rpm gave them", meta_dir, FILE_NAME)
            return cls()
        except (OSError, ValueError) as exc:
            raise FreightError(f"{path}: cannot read the container's owners: {exc}") from None
        if doc.get("format") != FORMAT:
            raise FreightError(f"{path}: format {doc.get('format')!r} is not one this freight reads ({FORMAT})")
        owners = doc["owners"]
        return cls({p: (o[0], o[1]) for p, o in owners.items()}, {p: o[2] for p, o in owners.items() if len(o) > 2})

    def apply(self, root: Path) -> None:
        """Give ROOT's files their owners, by ROOT's own /etc/passwd and /etc/group."""
        users, groups = accounts.ids_by_name(root / "etc/passwd"), accounts.ids_by_name(root / "etc/group")
        for rel, (user, group) in self.paths.items():
            uid, gid = users.get(user), groups.get(group)
            if uid is None or gid is None:
                log.warning("%s: /%s belongs to %s:%s, which the container's account files do not name; left as it is", root, rel, user, group)
                continue
            _chown(root / rel, uid, gid, self.modes.get(rel))


def _chown(path: Path, uid: int, gid: int, mode: int | None = None) -> None:
    """lchown PATH, keeping what the kernel drops on a change of owner: setuid/setgid bits
    (MODE, when recorded, is what they must be) and file capabilities."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise FreightError(f"{path} is missing: the package that records its owner did not install it") from None
    if (st.st_uid, st.st_gid) == (uid, gid) and mode in (None, stat.S_IMODE(st.st_mode)):
        return
    if stat.S_ISLNK(st.st_mode):
        os.lchown(path, uid, gid)
        return
    kept = capabilities.raw(path) if stat.S_ISREG(st.st_mode) else None
    os.lchown(path, uid, gid)
    if mode is not None or st.st_mode & (stat.S_ISUID | stat.S_ISGID):
        os.chmod(path, mode if mode is not None else stat.S_IMODE(st.st_mode))
    if kept is not None:
        os.setxattr(path, capabilities.CAPABILITY_XATTR, kept)

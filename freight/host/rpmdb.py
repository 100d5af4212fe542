"""What freight asks of the host's rpm: its transaction lock, and which versions its database lists.

rpm holds a POSIX write lock on `%_rpmlock_path` for the whole of a
transaction, scriptlets included. An image with no finished install looks the
same whether its install died or is still running; the lock tells which, so a
repair never removes what a running dnf is writing, and `freight list` says
"being installed" rather than "half-made" while one runs. Which versions of a
container the database lists is what a repair puts the image back in step with
(freight.host.repair). Both follow the rpm configuration's `%_dbpath`.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from freight.common.errors import FreightError


def lock_path() -> Path:
    import rpm

    return Path(rpm.expandMacro("%{_rpmlock_path}"))


@contextmanager
def held() -> Iterator[None]:
    """rpm's lock, taken without waiting: no rpm transaction starts while this is held."""
    path = lock_path()
    if not path.parent.is_dir():
        yield  # no rpm database here: nothing rpm runs can be in the way
        return
    with open(path, "a") as f:
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise FreightError(f"an rpm transaction is running (it holds {path}); try again once dnf or rpm has ended") from None
        yield


def transaction_running() -> bool:
    """Whether an rpm transaction holds the lock now (a look, not a hold)."""
    try:
        with held():
            return False
    except FreightError:
        return True


def versions(package: str) -> list[str]:
    """The VERSION-RELEASEs of PACKAGE the host's rpm database lists (two after an upgrade that died
    between adding the new header and erasing the old), oldest first."""
    import rpm

    ts = rpm.TransactionSet()
    ts.setVSFlags(rpm._RPMVSF_NOSIGNATURES | rpm._RPMVSF_NODIGESTS)
    found = sorted(ts.dbMatch("name", package), key=lambda h: h[rpm.RPMTAG_INSTALLTID])
    return [f"{h[rpm.RPMTAG_VERSION]}-{h[rpm.RPMTAG_RELEASE]}" for h in found]

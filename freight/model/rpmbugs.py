"""Defects of the rpm a machine runs that freight must step around, known by version.

rpm 4.18.0, Debian 12's, opens each FIFO it installs before it is closed
again, and an open of a FIFO with no writer blocks forever: a transaction
that installs one never ends (rpm issue 2195, fixed in 4.18.1). Both sides
ask here: the build before dnf installs packages into a staging root, the
host's %pre before rpm unpacks a container whose image holds a FIFO. Each
refuses with a message instead of leaving a transaction hanging.
"""

from __future__ import annotations

import re

FIFO_HANG = ((4, 18, 0), (4, 18, 1))  # first affected, first fixed
FIFO_HANG_WHY = "rpm {version} hangs installing a FIFO (rpm issue 2195, fixed in 4.18.1)"


def _release(version: str) -> tuple[int, ...]:
    """The numeric release of an rpm version string ('4.18.0', '4.18.90', '4.19.1.1')."""
    return tuple(int(n) for n in re.findall(r"\d+", version.split("-", 1)[0])[:3])


def hangs_on_fifos(version: str) -> bool:
    """True for an rpm (its version string, as `rpm.__version__` gives it) that never
    finishes installing a FIFO."""
    first, fixed = FIFO_HANG
    return first <= _release(version) < fixed


def running_rpm() -> str:
    """The version of the rpm library this process would install with."""
    import rpm

    return str(rpm.__version__)

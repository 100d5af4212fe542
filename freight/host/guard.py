"""Which package removals dnf must refuse: those that would take a machine along that nobody asked to remove.

rpm's Requires tie a derivative to its base, so `dnf remove container-BASE`
would quietly remove the derivative too, and with it a machine. dnf's
protected.d cannot say "refuse the base unless its derivative goes at the
administrator's own wish": a base named there also blocks
`dnf remove container-DERIVATIVE` whenever dnf pulled the base in as a
dependency (it would then remove the base as unused, and a protected package
may not go at all). So freight-host's dnf plugin (freight.host.dnfplugin)
asks this module, giving the reason dnf has for each removal.

The rule: a machine may go only with its own package, removed because the
administrator named it or because nothing needs it any more. A machine that
would go because a package it runs on was removed (its base, freight-host),
or an unpackaged instance (`freight instance create`) whose image goes, stops
the transaction. Unpackaged instances are also named in protected.d
(instances.protect), which every dnf reads, the plugin or not.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from freight.host.registry import InstanceRecord


class Why(enum.Enum):
    """Why dnf removes a package (its transaction item's reason)."""

    ASKED = "named by the administrator"
    UNUSED = "no longer needed"  # dnf's clean_requirements_on_remove
    DRAGGED = "needs a package that goes"


def package(name: str) -> str:
    return f"container-{name}"


def owner(record: InstanceRecord) -> str | None:
    """The package whose removal removes the instance (None for an unpackaged one)."""
    return package(record.overlay or record.image) if record.packaged else None


def runs_on(record: InstanceRecord) -> list[str]:
    """The container packages the instance's root is made from: its image's, and its derivative's overlay."""
    return [package(record.image)] + ([package(record.overlay)] if record.overlay else [])


def refusals(instances: Iterable[InstanceRecord], removed: Mapping[str, Why]) -> list[str]:
    """What stops a transaction removing the packages REMOVED (name -> why): one line per machine it would take."""
    asked = sorted(name for name, why in removed.items() if why is Why.ASKED)
    out = []
    for record in instances:
        mine = owner(record)
        if mine is not None and removed.get(mine) in (Why.ASKED, Why.UNUSED):
            continue  # it goes with its package, as it should
        going = [p for p in runs_on(record) if p in removed]
        if mine is not None and mine in removed:
            out.append(
                f"{mine} would be removed only because {', '.join(asked) or 'a package it needs'} goes, and the machine "
                f"{record.name} is made from it: remove {mine} first, or name it too"
            )
        elif going:
            out.append(
                f"the instance {record.name} (made with 'freight instance create') runs on {', '.join(going)}: "
                f"remove it first with 'freight instance remove {record.name}'"
            )
    return out

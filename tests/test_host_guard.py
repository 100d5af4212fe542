"""freight.host.guard: which removals dnf must refuse, for each reason dnf gives (the plugin's decision)."""

from __future__ import annotations

import pytest

from freight.host.guard import Why, refusals
from freight.host.registry import InstanceRecord

BASE = InstanceRecord(name="webapp", image="webapp", snapshot="1.0-1", storage="zfs")
PROD = InstanceRecord(name="webapp-prod", image="webapp", snapshot="1.0-1", storage="zfs", overlay="webapp-prod", overlay_version="1.0-1")
SCRATCH = InstanceRecord(name="scratch", image="webapp", snapshot="1.0-1", storage="zfs")
PROD_COPY = InstanceRecord(name="prod-copy", image="webapp", snapshot="1.0-1", storage="dir", overlay="webapp-prod", overlay_version="1.0-1")
OTHER = InstanceRecord(name="db", image="db", snapshot="2-1", storage="zfs")

ASKED, UNUSED, DRAGGED = Why.ASKED, Why.UNUSED, Why.DRAGGED


@pytest.mark.parametrize(
    "removed",
    [
        {"container-webapp-prod": ASKED},  # the derivative alone: its machine only
        {"container-webapp-prod": ASKED, "container-webapp": UNUSED},  # dnf cleans up the base it pulled in
        {"container-webapp": ASKED, "container-webapp-prod": ASKED},  # both named
        {"container-webapp-prod": UNUSED, "container-webapp": UNUSED},  # both unused (dnf autoremove)
        {"container-db": ASKED},
        {"freight-host": ASKED},  # not a container: none of the guard's business
    ],
)
def test_allowed(removed: dict[str, Why]) -> None:
    assert refusals([BASE, PROD, OTHER], removed) == []


def test_the_base_alone_would_drag_the_derivative_along() -> None:
    assert refusals([BASE, PROD, OTHER], {"container-webapp": ASKED, "container-webapp-prod": DRAGGED}) == [
        "container-webapp-prod would be removed only because container-webapp goes, and the machine webapp-prod "
        "is made from it: remove container-webapp-prod first, or name it too"
    ]


def test_a_container_dragged_by_a_package_it_needs() -> None:
    # `dnf remove freight-host`: every container requires it; none was named
    assert refusals([BASE], {"container-webapp": DRAGGED}) == [
        "container-webapp would be removed only because a package it needs goes, and the machine webapp "
        "is made from it: remove container-webapp first, or name it too"
    ]


@pytest.mark.parametrize("why", list(Why))
def test_unpackaged_instances_hold_their_packages_whatever_the_reason(why: Why) -> None:
    refused = refusals([BASE, SCRATCH], {"container-webapp": why})
    assert refused[-1:] == [
        "the instance scratch (made with 'freight instance create') runs on container-webapp: "
        "remove it first with 'freight instance remove scratch'"
    ]
    assert len(refused) == (2 if why is DRAGGED else 1)  # dragged, the base's own machine is refused too
    assert refusals([PROD, PROD_COPY], {"container-webapp-prod": why})[-1:] == [
        "the instance prod-copy (made with 'freight instance create') runs on container-webapp-prod: "
        "remove it first with 'freight instance remove prod-copy'"
    ]

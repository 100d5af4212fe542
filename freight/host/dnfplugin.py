"""freight-host's dnf plugin: refuse a transaction that would remove a machine nobody asked to remove,
and tell the hook which containers it installs only as dependencies (freight.host.pulledin).

dnf loads it from its plugin folder (packaging/dnf-plugins/freight.py is the
file installed there); `--disableplugin=freight` or `enabled = 0` in
/etc/dnf/plugins/freight.conf turns it off. The decision is freight.host.guard's;
this only translates dnf's transaction into it, after dependency resolution
and before anything is downloaded or changed.
"""

from __future__ import annotations

import dnf
import dnf.exceptions
import libdnf.transaction


class FreightGuard(dnf.Plugin):
    """Stops `dnf remove container-BASE` from taking a derivative's machine along (see freight.host.guard)."""

    name = "freight"

    def resolved(self) -> None:
        self._note_dependencies()
        removals = [
            item for item in self.base.transaction
            if item.action == libdnf.transaction.TransactionItemAction_REMOVE and item.pkg.name.startswith("container-")
        ]
        if not removals:
            return
        # Only now: every dnf command loads this plugin, and most remove no container.
        from freight.common.errors import FreightError
        from freight.host import config, guard
        from freight.host.registry import InstanceRecord, Registry

        why = {
            libdnf.transaction.TransactionItemReason_USER: guard.Why.ASKED,
            libdnf.transaction.TransactionItemReason_CLEAN: guard.Why.UNUSED,
        }
        removed = {item.pkg.name: why.get(item.reason, guard.Why.DRAGGED) for item in removals}
        try:
            instances = Registry(config.load().registry_dir).all(InstanceRecord)
        except FreightError as exc:
            raise dnf.exceptions.Error(f"freight: cannot tell which machines this removal would take: {exc}") from None
        problems = guard.refusals(instances, removed)
        if problems:
            raise dnf.exceptions.Error(
                "freight: this would remove machines that nobody asked to remove:\n  " + "\n  ".join(problems)
            )

    def _note_dependencies(self) -> None:
        """Containers dnf pulls in for others: their machines are made, not started (freight.host.pulledin)."""
        pulled = [
            item.pkg.name[len("container-"):] for item in self.base.transaction
            if item.action == libdnf.transaction.TransactionItemAction_INSTALL
            and item.reason == libdnf.transaction.TransactionItemReason_DEPENDENCY
            and item.pkg.name.startswith("container-")
        ]
        if not pulled:
            return
        from freight.common.errors import FreightError
        from freight.host import config, pulledin

        try:
            pulledin.record(config.load(), pulled)
        except (FreightError, OSError) as exc:
            raise dnf.exceptions.Error(f"freight: cannot note the containers pulled in as dependencies: {exc}") from None

    def transaction(self) -> None:
        if any(item.pkg.name.startswith("container-") for item in self.base.transaction):
            from freight.host import config, pulledin

            pulledin.clear(config.load())

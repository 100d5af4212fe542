"""A real booted systemd host for freight's integration tests and `make demo`.

freight's host side (the installer hook, ZFS datasets, nspawn machines,
pystemd) can only be shown working on a machine where systemd is PID 1,
which the machine running the tests is not. So the tests boot one: a Debian 12
root made once by debootstrap and cached (`image`), copied for each boot and
fitted for the tests (`prepare`), booted with systemd-nspawn in a cgroup of its
own (`machine`, `cgroups`), and driven with nsenter.

    from freight.testhost import Bind, TestHost

    with TestHost.boot(binds=[Bind(repo_dir, "/srv/repo")]) as host:
        host.run(["dnf", "install", "-y", "container-demo"])

`python -m freight.testhost` boots one to keep (for `make demo`), gives a
shell in it, and stops it.
"""

from freight.testhost.image import PACKAGES, Recipe, ensure_image
from freight.testhost.machine import Bind, TestHost, TestHostError, prune, running

__all__ = ["PACKAGES", "Bind", "Recipe", "TestHost", "TestHostError", "ensure_image", "prune", "running"]

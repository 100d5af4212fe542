"""freight-host's dnf plugin; the code is freight.host.dnfplugin (dnf finds it among dnf.Plugin's subclasses)."""

from freight.host.dnfplugin import FreightGuard  # noqa: F401

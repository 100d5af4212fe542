"""Operating a running machine: exec, shell, cp, logs, tail and live limits.

Everything here goes through systemd and machined on the host (pystemd over
D-Bus) and through the kernel's namespaces, never through anything inside
the machine: a command container has no systemd, no D-Bus and maybe no
shell. It uses freight.host (records, settings, the machine's slice) and is
used by the commands; the host side never imports it.
"""

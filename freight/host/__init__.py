"""freight on a host: what a container RPM's scriptlets and `freight list/start/…` do.

A container package ships only files; this package turns them into a running
machine. One module per job:

- `config`    /etc/freight/host.conf: storage backend, ZFS parent, locations;
- `registry`  small JSON records of images, instances and kept state;
- `storage`   the zfs and dir backends behind one interface (image, snapshot,
              instance, state);
- `nspawn`    the .nspawn settings and the unit drop-in from the manifest's `run`;
- `systemd`   systemd control through pystemd, and knowing when there is none;
- `instances` one instance's life: created from a snapshot, moved, destroyed;
- `hook`      the scriptlet phases (`freight-host-hook`), driven by rpm's counts.
"""

"""Where a container's files are: the same strings in its RPM's file list and on a host.

The build lays the root filesystem out under these paths before rpmbuild packs
it, so a host that installs the RPM finds its image, a derivative's overlay and
the metadata (manifest, lock, owners) where the hook looks for them.
"""

from __future__ import annotations

LIB_DIR = "/var/lib/freight"  # freight-host's own records (host.conf may move it)
IMAGES_DIR = "/var/lib/freight/images"
OVERLAYS_DIR = "/var/lib/freight/overlays"
META_DIR = "/usr/share/freight/containers"
# Where a container's own rpm database lives (upstream rpm's default since 4.16).
# Debian's rpm would put it in ~/.rpmdb, so every rpm call on a staging root or
# image names it explicitly.
RPM_DBPATH = "/usr/lib/sysimage/rpm"
# The metadata a container carries in meta_dir(NAME).
MANIFEST_FILE = "manifest.json"
LOCK_FILE = "lock.json"
# The container's software bill of materials, in each format freight writes (see freight.build.sbom).
SBOM_FILES = {"spdx": "sbom.spdx.json", "cyclonedx": "sbom.cdx.json"}


def image_dir(name: str) -> str:
    return f"{IMAGES_DIR}/{name}"


def overlay_dir(name: str) -> str:
    return f"{OVERLAYS_DIR}/{name}"


def meta_dir(name: str) -> str:
    return f"{META_DIR}/{name}"

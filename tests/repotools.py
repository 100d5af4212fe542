"""Helpers for the publishing tests: watching which files a process opens, and
checking that a repository's metadata is whole and true to its packages."""

from __future__ import annotations

import ctypes
import hashlib
import os
import struct
import subprocess
import tempfile
from pathlib import Path

_IN_OPEN = 0x00000020
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")


class OpenWatch:
    """inotify IN_OPEN on a folder: the names of the files anything opened in it.

    The kernel reports every open(2) of a file in the watched folder, by any
    process, so this proves what a publish read without tracing it.
    """

    def __init__(self, folder: Path) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fd = self._libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if self._libc.inotify_add_watch(self._fd, os.fsencode(folder), _IN_OPEN) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")

    def opened(self) -> set[str]:
        names: set[str] = set()
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return names
            offset = 0
            while offset < len(data):
                _wd, _mask, _cookie, length = _EVENT.unpack_from(data, offset)
                name = data[offset + _EVENT.size : offset + _EVENT.size + length].rstrip(b"\0").decode()
                if name:
                    names.add(name)
                offset += _EVENT.size + length

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> OpenWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_repository(folder: Path, pubkey: Path | None = None) -> dict[str, str]:
    """Assert the metadata is whole and matches the package files; return {location: pkgId}.

    Every file repomd.xml names exists with its checksum; every package the
    metadata lists exists with its checksum; with PUBKEY, repomd.xml.asc is a
    good signature by that key (checked with gpgv, as librepo would).
    """
    import createrepo_c as cr

    repomd = cr.Repomd(str(folder / "repodata" / "repomd.xml"))
    for record in repomd.records:
        path = folder / record.location_href
        assert path.is_file(), f"repomd.xml names {record.location_href}, which is missing"
        assert sha256(path) == record.checksum, f"{record.location_href} does not match repomd.xml"
    md = cr.Metadata()
    md.locate_and_load_xml(str(folder))
    packages = {}
    for key in md.keys():
        pkg = md.get(key)
        path = folder / pkg.location_href
        assert path.is_file(), f"the metadata lists {pkg.location_href}, which is missing"
        assert sha256(path) == pkg.pkgId, f"{pkg.location_href} changed since it was published"
        packages[pkg.location_href] = pkg.pkgId
    if pubkey is not None:
        with tempfile.TemporaryDirectory(prefix="gpgv-") as home:  # never the user's ~/.gnupg
            subprocess.run(["gpg", "--homedir", home, "--batch", "--import", str(pubkey)], check=True, capture_output=True)
            gpgv = subprocess.run(["gpgv", "--homedir", home, "--keyring", f"{home}/pubring.kbx",
                                   str(folder / "repodata" / "repomd.xml.asc"), str(folder / "repodata" / "repomd.xml")],
                                  capture_output=True, text=True)
            subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], capture_output=True)
        assert gpgv.returncode == 0, gpgv.stderr
    return packages

"""File capabilities in the text form rpm's `%caps()` takes, read with libcap.

cpio carries no extended attributes, so a capability a vendor package gave a
file in the staging root reaches the container RPM only if the file list names
it. libcap (which rpm itself links, so it is wherever rpm is) turns the
kernel's binary attribute into that text; freight does not parse the format.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import tempfile
from pathlib import Path

from freight.common.errors import FreightError

CAPABILITY_XATTR = "security.capability"


@functools.cache
def _libcap() -> ctypes.CDLL:
    name = ctypes.util.find_library("cap") or "libcap.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise FreightError(f"libcap is missing ({exc}); it is needed to read file capabilities") from None
    lib.cap_get_file.argtypes = [ctypes.c_char_p]
    lib.cap_get_file.restype = ctypes.c_void_p
    lib.cap_to_text.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.cap_to_text.restype = ctypes.c_void_p
    lib.cap_free.argtypes = [ctypes.c_void_p]
    lib.cap_free.restype = ctypes.c_int
    lib.cap_from_text.argtypes = [ctypes.c_char_p]
    lib.cap_from_text.restype = ctypes.c_void_p
    lib.cap_set_file.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    lib.cap_set_file.restype = ctypes.c_int
    return lib


def raw(path: str | os.PathLike[str]) -> bytes | None:
    """PATH's capabilities as the kernel stores them, or None (one cheap attribute read; most files have none)."""
    try:
        return os.getxattr(path, CAPABILITY_XATTR, follow_symlinks=False)
    except OSError:
        return None


def text_of(path: str) -> str:
    """PATH's capabilities as `cap_to_text` writes them, e.g. `cap_net_raw=ep`."""
    lib = _libcap()
    caps = lib.cap_get_file(os.fsencode(path))
    if not caps:
        err = ctypes.get_errno()
        raise FreightError(f"cannot read the file capabilities of {path}: {os.strerror(err or errno.EIO)}")
    try:
        text = lib.cap_to_text(caps, None)
        if not text:
            raise FreightError(f"libcap cannot write the capabilities of {path} as text")
        try:
            return ctypes.string_at(text).decode()
        finally:
            lib.cap_free(text)
    finally:
        lib.cap_free(caps)


def can_hold(folder: Path) -> bool:
    """Whether files in FOLDER can carry capabilities (zfs-fuse, for one, holds no extended attributes)."""
    lib = _libcap()
    caps = lib.cap_from_text(b"cap_net_raw=ep")
    fd, probe = tempfile.mkstemp(prefix=".freight-caps-probe.", dir=folder)
    os.close(fd)
    try:
        return lib.cap_set_file(os.fsencode(probe), caps) == 0
    finally:
        os.unlink(probe)
        lib.cap_free(caps)

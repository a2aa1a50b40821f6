"""Code packages (the tar file of a flow's code a run or deployment records) read safely:
they come from a file someone sent, so nothing in one may reach outside the directory it
is extracted to, and damage of any kind is one ``MetaflowDataCorruption`` line.

The package is decompressed in memory first (at most ``MAX_UNPACKED`` bytes), then read
as a plain tar: a damaged stream fails before any file is written, with one error type.
"""

from __future__ import annotations

import io
import math
import tarfile
from typing import Any

from .escape import escape_terminal
from .exception import MetaflowDataCorruption, MetaflowException

#: The most bytes a code package may hold uncompressed (a package is a flow's code).
MAX_UNPACKED = 1 << 30

#: A member's time outside this range (or not a number) is set to 0 when extracted.
_MAX_MTIME = 1 << 34

_BAD_STREAM = (OSError, EOFError, ValueError)


def _damaged(what: str | BaseException) -> MetaflowDataCorruption:
    """The one-line error for a damaged package: ``what`` is wrong (or the error that said so)."""
    if isinstance(what, BaseException):
        what = str(what) or type(what).__name__
    return MetaflowDataCorruption(f"The code package is damaged: {escape_terminal(what)}")


def _decompressor(data: bytes) -> Any:
    """The decompressor for ``data``'s compression (by its magic bytes), or None."""
    import bz2
    import lzma
    import zlib

    if data[:2] == b"\x1f\x8b":
        return zlib.decompressobj(wbits=31)
    if data[:3] == b"BZh":
        return bz2.BZ2Decompressor()
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMADecompressor()
    return None


def unpacked(data: bytes) -> bytes:
    """The tar bytes of a code package (gzip, bzip2, xz or none), decompressed; damage
    or more than ``MAX_UNPACKED`` bytes is a ``MetaflowDataCorruption``."""
    import lzma
    import zlib

    d = _decompressor(data)
    if d is None:
        return data
    try:
        out = d.decompress(data, MAX_UNPACKED + 1)
    except (*_BAD_STREAM, zlib.error, lzma.LZMAError) as e:
        raise _damaged(e) from None
    if len(out) > MAX_UNPACKED:
        raise _damaged(f"it holds more than {MAX_UNPACKED} bytes uncompressed")
    if not d.eof:
        raise _damaged("its compressed stream is cut short")
    return bytes(out)


def open_code_package(data: bytes) -> tarfile.TarFile:
    """The code package ``data`` as an open ``TarFile`` (in memory)."""
    try:
        return tarfile.open(fileobj=io.BytesIO(unpacked(data)), mode="r:")
    except (tarfile.TarError, *_BAD_STREAM) as e:
        raise _damaged(e) from None


def read_member(tar: tarfile.TarFile, name: str) -> bytes | None:
    """The bytes of regular file ``name`` of an open package; None if it has none."""
    try:
        fh = tar.extractfile(name)
        return None if fh is None else fh.read()
    except KeyError:
        return None
    except (tarfile.TarError, *_BAD_STREAM) as e:
        raise _damaged(e) from None


def _data_filter(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
    """tarfile's ``data`` filter, and a time that is no time (NaN, out of range) set to 0."""
    out = tarfile.data_filter(member, path)
    mtime = out.mtime
    if not (isinstance(mtime, (int, float)) and math.isfinite(mtime) and 0 <= mtime < _MAX_MTIME):
        out = out.replace(mtime=0, deep=False)
    return out


def extract_code_package(data: bytes, dest: str) -> None:
    """Extract a code package (a tar file, compressed or not) into ``dest`` with tarfile's
    ``data`` filter: no member outside ``dest``, no device, no link out of it. Such a
    member, or bytes that are no archive, is a ``MetaflowDataCorruption``; a Python
    without extraction filters (3.11.0-3.11.3) a one-line ``MetaflowException``."""
    import sys

    if not hasattr(tarfile, "data_filter"):
        raise MetaflowException(
            f"This Python ({sys.version.split()[0]}) cannot extract a code package "
            "safely: use Python 3.11.4 or newer"
        )
    with open_code_package(data) as tar:
        try:
            tar.extractall(dest, filter=_data_filter)
        except (tarfile.TarError, EOFError, ValueError, OverflowError) as e:
            # (a link out of dest, an absolute path, a member cut short ...)
            raise _damaged(e) from None

"""``mfstore verify``'s check of blobs: every chunk present, decompressed within the
recorded size, and the whole value hashing to its sha1."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..exception import MetaflowDataCorruption, MetaflowNotFound
from .codec import sha_key, unpack_chunk
from .tables import BLOB_RECORD, chunk_rows

if TYPE_CHECKING:
    from ..store import Store

#: ``progress(done, total, what)`` callback of long operations.
Progress = Callable[[int, int, str], None]


def verify_blob(store: Store, sha: str) -> str | None:
    """What is wrong with blob ``sha`` (its chunks are missing, it cannot be decompressed
    within its recorded size, it does not hash to its sha or add up to its size), or
    None when it is sound. Memory stays within the recorded size."""
    try:
        key = sha_key(sha)
    except MetaflowNotFound:
        return "is not a sha1"
    row = store.one(BLOB_RECORD, {"sha": key})
    if row is None:
        return "is missing"
    bid, size, n_chunks, codec = row
    if not isinstance(size, int) or not isinstance(n_chunks, int) or size < 0 or n_chunks < 1:
        return f"has a bad record (size {size!r}, chunks {n_chunks!r})"
    if n_chunks > size + 1:
        return f"records {n_chunks} chunks for {size} bytes"
    try:
        rest = chunk_rows(store, bid, n_chunks) if n_chunks > 1 else []
    except MetaflowDataCorruption as exc:
        return str(exc)
    digest = hashlib.sha1()
    left = size
    for table, rowid, c, _length in [("blobs", bid, codec, 0), *rest]:
        try:
            part = unpack_chunk(c, store.read_blob(table, "data", rowid), left)
        except Exception as exc:
            return f"cannot be decompressed ({' '.join(str(exc).split())[:120]})"
        left -= len(part)
        digest.update(part)
    if left:
        return f"content is {size - left} bytes, recorded size {size}"
    if digest.hexdigest() != sha.lower():
        return f"content has sha {digest.hexdigest()}"
    return None


def verify_blobs(store: Store, progress: Progress | None = None) -> list[tuple[str, str]]:
    """``(sha, problem)`` for every blob whose chunks are missing, cannot be decompressed,
    or do not hash to its sha or add up to its size (empty list: all sound)."""
    out: list[tuple[str, str]] = []
    rows = store.query("SELECT lower(hex(sha)) FROM blobs ORDER BY sha")
    for i, (sha,) in enumerate(rows):
        if progress is not None and i % 64 == 0:
            progress(i, len(rows), sha)
        problem = verify_blob(store, sha)
        if problem is not None:
            out.append((sha, problem))
    if progress is not None:
        progress(len(rows), len(rows), "done")
    return out

"""Copying a blob from one file into another as stored (never recompressed): merges,
exports and imports between .mfdb files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..exception import StoreError
from .codec import SMALL, sha_key
from .tables import BLOB_FILLED, INSERT_BLOB, INSERT_CHUNK, chunk_rows, insert_blob, type_id

if TYPE_CHECKING:
    from ..store import Store


#: A blob's row with its type's name, the first chunk only when small (``SMALL`` is part
#: of the text: one parameter less per blob copied).
_SOURCE_ROW = (
    "SELECT b.blob_id, b.size, b.stored_size, b.chunks, t.name, b.value_json, b.codec, "
    f"CASE WHEN length(b.data) <= {SMALL} THEN b.data END "
    "FROM blobs b LEFT JOIN types t ON t.type_id = b.type_id WHERE b.sha = :sha"
)


def copy_blob(src: Store, dst: Store, sha: str) -> int | None:
    """Copy blob ``sha`` from ``src`` into ``dst`` as stored (never recompressed), inside
    ``dst.write()``. Returns the stored bytes added, or None if ``dst`` has it already."""
    return copy_blob_id(src, dst, sha)[1]


def copy_blob_id(src: Store, dst: Store, sha: str) -> tuple[int, int | None]:
    """``copy_blob`` that also returns the blob's id in ``dst``: ``(blob_id, stored bytes
    added or None)``. A small first chunk comes with the row (no second read)."""
    key = sha_key(sha)
    row = src.one(_SOURCE_ROW, {"sha": key})
    if row is None:
        raise StoreError(f"{src.path}: blob {sha} is missing (run `mfstore verify {src.path}`)")
    bid, size, stored, n_chunks, type_name, value_json, codec, small = row
    have = dst.one(BLOB_FILLED, {"sha": key})
    if have is not None:
        found, no_type, no_json = have
        if (no_type and type_name is not None) or (no_json and value_json is not None):
            insert_blob(dst, sha, type_name=type_name, value_json=value_json)
        return int(found), None
    rest = chunk_rows(src, bid, n_chunks)
    new_id = dst.insert(
        INSERT_BLOB,
        (
            key,
            size,
            stored,
            n_chunks,
            type_id(dst, type_name),
            value_json,
            codec,
            small if isinstance(small, bytes) else src.read_blob("blobs", "data", bid),
        ),
    )
    for seq, (table, rowid, c, _length) in enumerate(rest, start=1):
        dst.execute(INSERT_CHUNK, (new_id, seq, c, src.read_blob(table, "data", rowid)))
    return new_id, int(stored)

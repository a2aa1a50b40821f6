"""Content-addressed bytes: one row per distinct value, chunked, zstd where it helps.

The key is the sha1 of the raw bytes (for artifacts: the pickled bytes, which is the
``sha`` Metaflow reports). The API speaks hex shas; the file keeps the 20-byte digest
(``blobs.sha``) and an integer ``blob_id`` that artifacts point to. This package is the
only one that touches the ``blobs``, ``blob_chunks`` and ``types`` tables. It never
pickles; see ``artifacts.py``.

Checking on read: a value is checked against its sha1 when it is small (cheap), and
large values through the content checksum of their zstd frames (xxh64 of the
decompressed bytes, verified by zstd while decompressing): large chunks are always
written as zstd frames with a checksum, even when incompressible (zstd then stores raw
blocks). Large chunks without a checksum (written by older versions) are checked
against the sha1. ``verify_blobs`` (``mfstore verify``) always checks the full sha1.

- ``blobs.codec``: the chunk format (sha keys, zstd pack/unpack, ``pack_blob``), no I/O;
- ``blobs.tables``: the rows (insert, ids, types, bulk rows, a blob's chunk list);
- ``blobs.read``: checked reads (whole, chunk by chunk, streamed into a loader, batched);
- ``blobs.copy``: a blob from one file into another, as stored;
- ``blobs.verify``: ``mfstore verify``'s full check.
"""

from __future__ import annotations

from .codec import (
    FAST_ABOVE,
    PIECE_SIZE,
    SMALL,
    TINY,
    ZSTD_LEVEL,
    PackedBlob,
    pack_blob,
    pack_chunk,
    pack_parts,
    sha1_hex,
    sha_key,
    unpack_chunk,
    use_chunk_size,
)
from .copy import copy_blob, copy_blob_id
from .read import (
    copy_blob_to,
    file_text,
    from_json,
    get_blob,
    get_small_blobs,
    iter_blob_chunks,
    load_blob,
)
from .tables import (
    blob_id,
    blob_ids,
    blob_rows,
    has_blob,
    insert_blob,
    insert_blob_rows,
    next_blob_id,
    type_id,
)
from .verify import Progress, verify_blob, verify_blobs

# ``CHUNK_SIZE`` (blobs.codec) is not repeated here: change it with ``use_chunk_size``.
__all__ = [
    "FAST_ABOVE",
    "PIECE_SIZE",
    "SMALL",
    "TINY",
    "ZSTD_LEVEL",
    "PackedBlob",
    "Progress",
    "blob_id",
    "blob_ids",
    "blob_rows",
    "copy_blob",
    "copy_blob_id",
    "copy_blob_to",
    "file_text",
    "from_json",
    "get_blob",
    "get_small_blobs",
    "has_blob",
    "insert_blob",
    "insert_blob_rows",
    "iter_blob_chunks",
    "load_blob",
    "next_blob_id",
    "pack_blob",
    "pack_chunk",
    "pack_parts",
    "sha1_hex",
    "sha_key",
    "type_id",
    "unpack_chunk",
    "use_chunk_size",
    "verify_blob",
    "verify_blobs",
]

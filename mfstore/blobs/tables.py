"""The ``blobs``, ``blob_chunks`` and ``types`` rows: ids, inserts (one by one, or as
rows assigned ahead for the bulk path), and the ordered chunk list of a blob."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..exception import MetaflowDataCorruption, MetaflowNotFound, UnsafeArtifactError
from .codec import PackedBlob, sha_key

#: Chunks larger than this are inserted as ``zeroblob(n)`` and then written into the
#: row's pages (``Store.write_blob``): binding them would copy the bytes twice more (into
#: the bound parameter and into the record) before SQLite puts them in pages.
DIRECT_WRITE_ABOVE = 256 * 1024

if TYPE_CHECKING:
    from ..store import Store

#: A blob's record by its sha (``:sha``, ``sha_key``): what reading or verifying it needs first.
BLOB_RECORD = "SELECT blob_id, size, chunks, codec FROM blobs WHERE sha = :sha"
#: A blob's id by its sha, and whether its type and JSON form are still missing.
BLOB_FILLED = "SELECT blob_id, type_id IS NULL, value_json IS NULL FROM blobs WHERE sha = :sha"
#: A blob's row ``(sha, size, stored_size, chunks, type_id, value_json, codec, data)``, its
#: first chunk in ``data``. Row INSERTs bind their row by position, every other statement
#: names its parameters (the rule is stated in ``mfstore.writer``).
INSERT_BLOB = (
    "INSERT INTO blobs (sha, size, stored_size, chunks, type_id, value_json, codec, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
#: A chunk's row ``(blob_id, seq, codec, data)`` (``seq`` 1..).
INSERT_CHUNK = "INSERT INTO blob_chunks (blob_id, seq, codec, data) VALUES (?, ?, ?, ?)"
#: The same rows with ``data`` the chunk's length: its bytes are written after
#: (``DIRECT_WRITE_ABOVE``).
INSERT_BLOB_DIRECT = INSERT_BLOB.replace("?)", "zeroblob(?))")
INSERT_CHUNK_DIRECT = INSERT_CHUNK.replace("?)", "zeroblob(?))")


def type_id(store: Store, name: str | None) -> int | None:
    """Id of a type name in ``types`` (added if new); inside ``store.write()``."""
    if name is None:
        return None
    found = store.scalar("SELECT type_id FROM types WHERE name = :name", {"name": name})
    if found is None:
        found = store.scalar("INSERT INTO types (name) VALUES (?) RETURNING type_id", (name,))
    return int(found)


def blob_id(store: Store, sha: str) -> int | None:
    """``blobs.blob_id`` of ``sha``, or None if the file lacks it."""
    found = store.scalar("SELECT blob_id FROM blobs WHERE sha = :sha", {"sha": sha_key(sha)})
    return None if found is None else int(found)


def blob_ids(store: Store, shas: Iterable[str]) -> dict[str, int]:
    """``blobs.blob_id`` of each of ``shas`` the file holds (one statement per 500)."""
    keys = [sha_key(sha) for sha in shas]
    found: dict[str, int] = {}
    for i in range(0, len(keys), 500):
        part = {f"k{j}": key for j, key in enumerate(keys[i : i + 500])}
        sql = "SELECT sha, blob_id FROM blobs WHERE sha IN ({})".format(
            ",".join(f":{k}" for k in part)
        )
        for key, bid in store.query(sql, part):
            found[bytes(key).hex()] = int(bid)
    return found


def has_blob(store: Store, sha: str) -> bool:
    """True if the file holds blob ``sha``."""
    return blob_id(store, sha) is not None


def insert_blob(
    store: Store,
    blob: PackedBlob | str,
    *,
    type_name: str | None = None,
    value_json: str | None = None,
) -> int:
    """Insert a packed blob unless its sha is present; return its ``blob_id``. Inside
    ``store.write()``. ``blob`` may be a sha already in the file. The value's type and
    JSON form are recorded with the blob (once; filled in if an earlier insert lacked them).
    """
    sha = blob if isinstance(blob, str) else blob.sha
    key = sha_key(sha)
    row = store.one(BLOB_FILLED, {"sha": key})
    if row is not None:
        found, no_type, no_json = row
        if (no_type and type_name is not None) or (no_json and value_json is not None):
            store.execute(
                "UPDATE blobs SET type_id = coalesce(type_id, :type), "
                "value_json = coalesce(value_json, :json) WHERE blob_id = :blob",
                {"type": type_id(store, type_name), "json": value_json, "blob": found},
            )
        return int(found)
    if isinstance(blob, str):
        raise MetaflowNotFound(f"blob {sha} is not in {store.path}")
    (codec, data), rest = blob.chunks[0], blob.chunks[1:]
    first_direct = len(data) > DIRECT_WRITE_ABOVE
    new_id = store.insert(
        INSERT_BLOB_DIRECT if first_direct else INSERT_BLOB,
        (
            key,
            blob.size,
            blob.stored_size,
            len(blob.chunks),
            type_id(store, type_name),
            value_json,
            codec,
            len(data) if first_direct else data,
        ),
    )
    if first_direct:
        store.write_blob("blobs", "data", new_id, data)
    for seq, (c, d) in enumerate(rest, start=1):
        if len(d) > DIRECT_WRITE_ABOVE:
            pk = store.insert(
                INSERT_CHUNK_DIRECT,
                (new_id, seq, c, len(d)),
            )
            store.write_blob("blob_chunks", "data", pk, d)
        else:
            store.execute(INSERT_CHUNK, (new_id, seq, c, d))
    return new_id


def next_blob_id(store: Store) -> int:
    """The ``blob_id`` the next inserted blob gets (inside a bulk transaction, where ids
    are assigned ahead: see ``blob_rows``)."""
    return int(store.scalar("SELECT coalesce(max(blob_id), 0) + 1 FROM blobs"))


def blob_rows(
    blob: PackedBlob, new_id: int, type_id: int | None, value_json: str | None
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """The ``blobs`` row and ``blob_chunks`` rows of a packed blob with id ``new_id``, for
    ``insert_blob_rows`` (the bulk path of ``insert_blob``, for a sha not in the file)."""
    (codec, data), rest = blob.chunks[0], blob.chunks[1:]
    row = (
        new_id,
        sha_key(blob.sha),
        blob.size,
        blob.stored_size,
        len(blob.chunks),
        type_id,
        value_json,
        codec,
        data,
    )
    return row, [(new_id, seq, c, d) for seq, (c, d) in enumerate(rest, start=1)]


def insert_blob_rows(
    store: Store, rows: Sequence[Sequence[Any]], chunk_rows: Sequence[Sequence[Any]]
) -> None:
    """Insert rows made by ``blob_rows`` (one statement per table); inside ``store.write()``."""
    if rows:
        store.executemany(
            "INSERT INTO blobs (blob_id, sha, size, stored_size, chunks, type_id, value_json, "
            "codec, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    if chunk_rows:
        store.executemany(INSERT_CHUNK, chunk_rows)


def chunk_rows(store: Store, bid: int, n_chunks: int) -> list[tuple[str, int, str, int]]:
    """``(table, rowid, codec, stored length)`` of chunks 1.. of a blob, in order."""
    rows = store.query(
        "SELECT seq, chunk_pk, codec, length(data) FROM blob_chunks WHERE blob_id = :blob "
        "ORDER BY seq",
        {"blob": bid},
    )
    seqs = [r[0] for r in rows]
    # Length first: a hostile count (chunks = 2**62) must not build a range list.
    if len(seqs) != n_chunks - 1 or seqs != list(range(1, n_chunks)):
        raise MetaflowDataCorruption(f"has chunks {seqs}, expected 1..{n_chunks - 1}")
    return [("blob_chunks", pk, codec, length) for _seq, pk, codec, length in rows]


def check_size_record(sha: str, size: Any, n_chunks: Any, max_bytes: int | None) -> None:
    """Refuse a blob's row before reading its bytes: a size or chunk count that cannot be
    (``MetaflowDataCorruption``), or a size beyond ``max_bytes`` (``UnsafeArtifactError``)."""
    if not isinstance(size, int) or not isinstance(n_chunks, int) or size < 0:
        raise MetaflowDataCorruption(f"blob {sha} has a bad size record")
    if n_chunks < 1 or n_chunks > size + 1:
        raise MetaflowDataCorruption(f"blob {sha} records {n_chunks} chunks for {size} bytes")
    if max_bytes is not None and size > max_bytes:
        raise UnsafeArtifactError(
            f"blob {sha} is {size} bytes, beyond the loading budget of {max_bytes} bytes"
        )

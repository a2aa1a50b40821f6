"""Content-addressed bytes: one row per distinct value, chunked, zstd where it helps.

The key is the sha1 of the raw bytes (for artifacts: the pickled bytes, which is the
``sha`` Metaflow reports). The API speaks hex shas; the file keeps the 20-byte digest
(``blobs.sha``) and an integer ``blob_id`` that artifacts point to. This module is the
only one that touches the ``blobs``, ``blob_chunks`` and ``types`` tables. It never
pickles; see ``artifacts.py``.

Checking on read: a value is checked against its sha1 when it is small (cheap), and
large values through the content checksum of their zstd frames (xxh64 of the
decompressed bytes, verified by zstd while decompressing): large chunks are always
written as zstd frames with a checksum, even when incompressible (zstd then stores raw
blocks). Large chunks without a checksum (written by older versions) are checked
against the sha1. ``verify_blobs`` (``mfstore verify``) always checks the full sha1.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, BinaryIO, TypeVar

from .exception import MetaflowDataCorruption, MetaflowNotFound, StoreError, UnsafeArtifactError

if TYPE_CHECKING:
    from .store import Store

#: Raw bytes per chunk; values above SQLite's 1 GB blob limit span several chunks.
CHUNK_SIZE = 256 * 1024 * 1024
#: zstd level of chunks up to ``FAST_ABOVE`` bytes.
ZSTD_LEVEL = 3
#: Values larger than this are cut into ``PIECE_SIZE`` chunks, hashed and compressed (zstd
#: level 1) in parallel threads.
FAST_ABOVE = 4 * 1024 * 1024
#: Raw bytes per chunk of a large value: each is its own zstd frame (with its checksum),
#: so chunks compress in parallel and every buffer stays small enough for the allocator
#: to reuse (a fresh 100 MB buffer costs its page faults, ~0.1 s here).
PIECE_SIZE = 8 * 1024 * 1024
#: Values up to this size are read in one statement and checked against their sha1.
SMALL = 1024 * 1024

#: Largest piece decompressed at once (memory is bounded by the bytes produced).
_READ_PIECE = 16 * 1024 * 1024

#: ``progress(done, total, what)`` callback of long operations.
Progress = Callable[[int, int, str], None]

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def sha1_hex(raw: bytes | memoryview) -> str:
    """The content address of ``raw``."""
    return hashlib.sha1(raw).hexdigest()


def sha_key(sha: str) -> bytes:
    """The 20-byte digest stored in ``blobs.sha`` for a hex sha (``MetaflowNotFound`` if malformed)."""
    try:
        key = bytes.fromhex(sha)
    except (TypeError, ValueError):
        raise MetaflowNotFound(f"{sha!r} is not a sha1 (40 hex digits)") from None
    if len(key) != 20:
        raise MetaflowNotFound(f"{sha!r} is not a sha1 (40 hex digits)")
    return key


#: Below this size zstd cannot win (its frame header and checksum take 10+ bytes).
TINY = 64
_local = threading.local()


def _compressor(size: int) -> Any:
    """A zstd compressor for a chunk of ``size`` bytes (one per thread and kind: creating
    one costs more than compressing a small value)."""
    fast = size > FAST_ABOVE
    cache = getattr(_local, "zstd", None)
    if cache is None:
        cache = _local.zstd = {}
    found = cache.get(fast)
    if found is None:
        import zstandard

        if fast:
            found = zstandard.ZstdCompressor(level=1, write_checksum=True)
        else:
            found = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True)
        cache[fast] = found
    return found


def pack_chunk(raw: bytes | memoryview, *, framed: bool = False) -> tuple[str, bytes]:
    """``(codec, payload)`` of one chunk: a zstd frame with a checksum when it is smaller,
    the chunk is large, or ``framed`` (a chunk of a large value: the checksum is what checks
    large values on read), else raw."""
    if len(raw) < TINY and not framed:
        return "raw", bytes(raw)
    packed = _compressor(len(raw)).compress(raw)
    if len(packed) < len(raw) or len(raw) > SMALL or framed:
        return "zstd", packed
    return "raw", bytes(raw)


def _pack_piece(raw: memoryview) -> tuple[str, bytes]:
    return pack_chunk(raw, framed=True)


def unpack_chunk(codec: str, data: bytes, limit: int = CHUNK_SIZE) -> bytes:
    """The raw bytes of one chunk; never more than ``limit`` bytes are produced (a zstd
    frame that declares or expands to more is damaged or hostile: refused)."""
    if codec == "raw":
        if len(data) > limit:
            raise MetaflowDataCorruption(f"a chunk holds {len(data)} bytes, more than recorded")
        return data
    if codec == "zstd":
        import zstandard

        # Streamed in pieces: a frame header may declare any size; memory follows the
        # bytes actually produced, and stops one piece past the recorded size.
        pieces: list[bytes] = []
        produced = 0
        with zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True) as r:
            while True:
                piece = r.read(min(_READ_PIECE, limit + 1 - produced) or 1)
                if not piece:
                    break
                produced += len(piece)
                if produced > limit:
                    raise MetaflowDataCorruption("a chunk expands beyond its recorded size")
                pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)
    raise MetaflowDataCorruption(f"unknown blob codec {codec!r}")


def _has_checksum(codec: str, data: bytes) -> bool:
    # zstd frame header: magic, then the descriptor byte; bit 2 = content checksum flag.
    return codec == "zstd" and data[:4] == _ZSTD_MAGIC and len(data) > 4 and bool(data[4] & 4)


class PackedBlob:
    """Bytes ready to insert: sha, raw size and (codec, payload) chunks."""

    __slots__ = ("chunks", "sha", "size")

    def __init__(self, sha: str, size: int, chunks: list[tuple[str, bytes]]) -> None:
        self.sha = sha
        self.size = size
        self.chunks = chunks

    @property
    def stored_size(self) -> int:
        """Bytes the chunks take in the file."""
        return sum(len(data) for _, data in self.chunks)


def pack_blob(raw: bytes | memoryview, sha: str | None = None) -> PackedBlob:
    """Hash and compress ``raw`` (outside any transaction: this is the slow part).

    A large value is cut into ``PIECE_SIZE`` chunks; a pool of threads hashes the whole
    value while it compresses the chunks (sha1 and zstd both release the GIL)."""
    if type(raw) is bytes and len(raw) <= min(FAST_ABOVE, CHUNK_SIZE):  # a small value
        return PackedBlob(sha or sha1_hex(raw), len(raw), [pack_chunk(raw)])
    return pack_parts([raw], sha)


def pack_parts(parts: Sequence[bytes | memoryview], sha: str | None = None) -> PackedBlob:
    """``pack_blob`` of the concatenation of ``parts`` without making it (a pickler's
    output: its large ``bytes`` values arrive as the values themselves, uncopied)."""
    views = [memoryview(p).cast("B") for p in parts]
    size = sum(len(v) for v in views)
    if size <= FAST_ABOVE:
        raw = views[0] if len(views) == 1 else memoryview(b"".join(views))
        return PackedBlob(sha or sha1_hex(raw), size, _pack_chunks(raw, CHUNK_SIZE))
    from concurrent.futures import ThreadPoolExecutor

    pieces = _pieces(views, min(CHUNK_SIZE, PIECE_SIZE))
    with ThreadPoolExecutor(_pack_threads()) as pool:
        digest = pool.submit(_sha1_parts, views) if sha is None else None
        # Every chunk a checksummed frame, the last (possibly small) one too: a value
        # mixing framed and raw chunks would be checked by hashing it all on read.
        chunks = list(pool.map(_pack_piece, pieces))
        sha = sha if digest is None else digest.result()
    return PackedBlob(sha, size, chunks)


def _sha1_parts(views: Sequence[memoryview]) -> str:
    digest = hashlib.sha1()
    for view in views:
        digest.update(view)
    return digest.hexdigest()


def _pieces(views: Sequence[memoryview], step: int) -> Iterator[memoryview]:
    """The concatenation of ``views`` in ``step``-byte pieces (only a piece that spans two
    views is copied)."""
    pending: list[memoryview] = []
    have = 0
    for view in views:
        pos = 0
        while pos < len(view):
            take = min(step - have, len(view) - pos)
            pending.append(view[pos : pos + take])
            have += take
            pos += take
            if have == step:
                yield pending[0] if len(pending) == 1 else memoryview(b"".join(pending))
                pending, have = [], 0
    if pending:
        yield pending[0] if len(pending) == 1 else memoryview(b"".join(pending))


def _pack_threads() -> int:
    """Threads that hash and compress a large value: the cores, at most 8 (2 at least: one
    hashes while the other compresses)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(2, min(8, cores or 2))


def _pack_chunks(view: memoryview, step: int) -> list[tuple[str, bytes]]:
    return [pack_chunk(view[start : start + step]) for start in range(0, max(len(view), 1), step)]


# -- the tables ---------------------------------------------------------------------


def type_id(store: Store, name: str | None) -> int | None:
    """Id of a type name in ``types`` (added if new); inside ``store.write()``."""
    if name is None:
        return None
    found = store.scalar("SELECT type_id FROM types WHERE name = ?", (name,))
    if found is None:
        found = store.scalar("INSERT INTO types (name) VALUES (?) RETURNING type_id", (name,))
    return int(found)


def blob_id(store: Store, sha: str) -> int | None:
    """``blobs.blob_id`` of ``sha``, or None if the file lacks it."""
    found = store.scalar("SELECT blob_id FROM blobs WHERE sha = ?", (sha_key(sha),))
    return None if found is None else int(found)


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
    row = store.one(
        "SELECT blob_id, type_id IS NULL, value_json IS NULL FROM blobs WHERE sha = ?", (key,)
    )
    if row is not None:
        found, no_type, no_json = row
        if (no_type and type_name is not None) or (no_json and value_json is not None):
            store.execute(
                "UPDATE blobs SET type_id = coalesce(type_id, ?), value_json = coalesce(value_json, ?) "
                "WHERE blob_id = ?",
                (type_id(store, type_name), value_json, found),
            )
        return int(found)
    if isinstance(blob, str):
        raise MetaflowNotFound(f"blob {sha} is not in {store.path}")
    (codec, data), rest = blob.chunks[0], blob.chunks[1:]
    store.execute(
        "INSERT INTO blobs (sha, size, stored_size, chunks, type_id, value_json, codec, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            key,
            blob.size,
            blob.stored_size,
            len(blob.chunks),
            type_id(store, type_name),
            value_json,
            codec,
            data,
        ),
    )
    new_id = int(store.conn.last_insert_rowid())
    if rest:
        store.executemany(
            "INSERT INTO blob_chunks (blob_id, seq, codec, data) VALUES (?, ?, ?, ?)",
            [(new_id, seq, c, d) for seq, (c, d) in enumerate(rest, start=1)],
        )
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
        store.executemany(
            "INSERT INTO blob_chunks (blob_id, seq, codec, data) VALUES (?, ?, ?, ?)", chunk_rows
        )


def _chunk_rows(store: Store, bid: int, n_chunks: int) -> list[tuple[str, int, str, int]]:
    """``(table, rowid, codec, stored length)`` of chunks 1.. of a blob, in order."""
    rows = store.query(
        "SELECT seq, chunk_pk, codec, length(data) FROM blob_chunks WHERE blob_id = ? ORDER BY seq",
        (bid,),
    )
    seqs = [r[0] for r in rows]
    # Length first: a hostile count (chunks = 2**62) must not build a range list.
    if len(seqs) != n_chunks - 1 or seqs != list(range(1, n_chunks)):
        raise MetaflowDataCorruption(f"has chunks {seqs}, expected 1..{n_chunks - 1}")
    return [("blob_chunks", pk, codec, length) for _seq, pk, codec, length in rows]


def _size_record(sha: str, size: Any, n_chunks: Any, max_bytes: int | None) -> None:
    if not isinstance(size, int) or not isinstance(n_chunks, int) or size < 0:
        raise MetaflowDataCorruption(f"blob {sha} has a bad size record")
    if n_chunks < 1 or n_chunks > size + 1:
        raise MetaflowDataCorruption(f"blob {sha} records {n_chunks} chunks for {size} bytes")
    if max_bytes is not None and size > max_bytes:
        raise UnsafeArtifactError(
            f"blob {sha} is {size} bytes, beyond the loading budget of {max_bytes} bytes"
        )


def iter_blob_chunks(store: Store, sha: str, max_bytes: int | None = None) -> Iterator[bytes]:
    """The raw bytes of a blob, chunk by chunk (sizes checked, content unverified).

    A blob whose recorded size exceeds ``max_bytes`` raises ``UnsafeArtifactError``
    before anything is read; no chunk ever expands beyond the recorded size.
    """
    row = store.one("SELECT blob_id, size, chunks, codec FROM blobs WHERE sha = ?", (sha_key(sha),))
    if row is None:
        raise MetaflowNotFound(f"blob {sha} is missing from {store.path}")
    bid, size, n_chunks, codec = row
    _size_record(sha, size, n_chunks, max_bytes)
    rest = _chunk_rows(store, bid, n_chunks) if n_chunks > 1 else []
    left = size
    for table, rowid, c, _length in [("blobs", bid, codec, 0), *rest]:
        part = unpack_chunk(c, store.read_blob(table, "data", rowid), left)
        left -= len(part)
        yield part
    if left:
        raise MetaflowDataCorruption(f"blob {sha} is {left} bytes shorter than recorded")


def get_blob(
    store: Store, sha: str, *, what: str | None = None, max_bytes: int | None = None
) -> bytes:
    """The raw bytes of blob ``sha``, checked (see the module docstring).

    ``what`` names the value for the error (e.g. an artifact pathspec); ``max_bytes``
    refuses a blob recorded as larger before reading it (``load_safe``'s budget).
    """
    label = what or f"blob {sha}"
    key = sha_key(sha)
    checked = False
    try:
        with store.read():
            row = store.one(
                "SELECT blob_id, size, chunks, codec, length(data), "
                "CASE WHEN length(data) <= ? THEN data END FROM blobs WHERE sha = ?",
                (SMALL, key),
            )
            if row is None:
                raise MetaflowNotFound(f"blob {sha} is missing from {store.path}")
            bid, size, n_chunks, codec, length, small = row
            _size_record(sha, size, n_chunks, max_bytes)
            if n_chunks == 1 and small is not None:
                raw = unpack_chunk(codec, small, size)
            else:
                chunks = [("blobs", bid, codec, length)]
                if n_chunks > 1:
                    chunks += _chunk_rows(store, bid, n_chunks)
                parts = []
                checked = True
                left = size
                for table, rowid, c, _length in chunks:
                    data = store.read_blob(table, "data", rowid)
                    checked = checked and _has_checksum(c, data)
                    parts.append(unpack_chunk(c, data, left))
                    left -= len(parts[-1])
                    del data
                raw = parts[0] if len(parts) == 1 else b"".join(parts)
                del parts
    except MetaflowDataCorruption as exc:
        raise MetaflowDataCorruption(f"{label} is damaged in {store.path}: {exc}") from None
    except UnsafeArtifactError as exc:
        raise UnsafeArtifactError(f"{label}: {exc}") from None
    except Exception as exc:  # zstd errors (checksum mismatch included) on damaged payloads
        if isinstance(exc, (MetaflowNotFound, StoreError)):
            raise
        raise MetaflowDataCorruption(
            f"{label} is damaged in {store.path} (cannot decompress: {exc}); run `mfstore verify`"
        ) from None
    if len(raw) != size:
        raise MetaflowDataCorruption(
            f"{label} is damaged in {store.path}: its content is {len(raw)} bytes, "
            f"expected {size}; run `mfstore verify`"
        )
    if not checked:
        actual = sha1_hex(raw)
        if actual != sha.lower():
            raise MetaflowDataCorruption(
                f"{label} is damaged in {store.path}: its content has sha {actual}, expected {sha}; "
                "run `mfstore verify` and use a good copy of the file"
            )
    return raw


class _ChunkStream(io.RawIOBase):
    """The raw bytes of a blob as a file, decompressed straight into the reader's buffer
    (an unpickler reads large ``bytes`` values with ``readinto``: no intermediate copy).
    Chunks without a zstd checksum are hashed as they stream; ``finish()`` drains the
    stream and checks the size and (for those) the sha1."""

    def __init__(self, store: Store, sha: str, bid: int, size: int, chunks: list[Any]) -> None:
        self._store = store
        self._sha = sha
        self._size = size
        self._chunks = chunks  # (table, rowid, codec, stored length), read lazily
        self._next = 0
        self._src: Any = None
        self._pos = 0
        self._hash: Any = None
        self._checksummed = False
        self._reader: Any = None

    def readable(self) -> bool:
        return True

    def _open_next(self) -> bool:
        if self._next >= len(self._chunks):
            return False
        table, rowid, codec, _length = self._chunks[self._next]
        self._next += 1
        self._close_reader()
        reader = self._store.blob_reader(table, "data", rowid)
        head = reader.read(5)
        reader.seek(0)
        if _has_checksum(codec, head):
            import zstandard

            # The compressed bytes stream from SQLite 1 MB at a time into zstd, which
            # writes into the caller's buffer: no whole-value copy of either.
            self._reader = reader
            self._src = zstandard.ZstdDecompressor().stream_reader(
                reader,  # type: ignore[arg-type]  # a file-like with read(n)
                read_size=1 << 20,
            )
            self._checksummed = True
            return True
        data = reader.read()
        reader.close()
        if self._hash is None:
            self._hash = hashlib.sha1()
        if codec == "zstd":
            data = unpack_chunk(codec, data)
        elif codec != "raw":
            raise MetaflowDataCorruption(f"unknown blob codec {codec!r}")
        self._src = io.BytesIO(data)
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while True:
            if self._src is None and not self._open_next():
                return 0
            n = int(self._src.readinto(view[: self._size - self._pos + 1]))
            if self._pos + n > self._size:
                raise MetaflowDataCorruption("its content expands beyond its recorded size")
            if n:
                if self._hash is not None:
                    self._hash.update(view[:n])
                self._pos += n
                return n
            self._src = None  # this chunk is done (a zstd frame's checksum was checked)

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def close(self) -> None:
        self._close_reader()
        super().close()

    def finish(self) -> None:
        """Read what is left and check the size and (where no checksum did) the sha1."""
        scratch = bytearray(1 << 16)
        while self.readinto(scratch):
            pass
        if self._pos != self._size:
            raise MetaflowDataCorruption(f"its content is {self._pos} bytes, expected {self._size}")
        if self._hash is None:
            return  # every chunk was checked by its zstd checksum
        if self._checksummed:  # mixed (never written so): hash the whole value
            actual = sha1_hex(b"".join(iter_blob_chunks(self._store, self._sha)))
        else:
            actual = self._hash.hexdigest()
        if actual != self._sha.lower():
            raise MetaflowDataCorruption(f"its content has sha {actual}")


T = TypeVar("T")


def load_blob(
    store: Store, sha: str, load: Callable[[IO[bytes]], T], *, what: str | None = None
) -> T:
    """``load(file)`` over the raw bytes of blob ``sha`` (e.g. an unpickler), checked as
    ``get_blob`` checks them: a damaged value raises ``MetaflowDataCorruption``, never
    returns. Large values stream from the file into ``load`` without a full copy."""
    label = what or f"blob {sha}"
    key = sha_key(sha)
    with store.read():
        row = store.one(
            "SELECT blob_id, size, chunks, codec, length(data) FROM blobs WHERE sha = ?", (key,)
        )
        if row is None:
            raise MetaflowNotFound(f"blob {sha} is missing from {store.path}")
        bid, size, n_chunks, codec, length = row
        try:
            _size_record(sha, size, n_chunks, None)
        except MetaflowDataCorruption as exc:
            raise MetaflowDataCorruption(f"{label} is damaged in {store.path}: {exc}") from None
        if size <= SMALL and n_chunks == 1:
            return load(io.BytesIO(get_blob(store, sha, what=what)))
        try:
            chunks = [("blobs", bid, codec, length)]
            if n_chunks > 1:
                chunks += _chunk_rows(store, bid, n_chunks)
            with _ChunkStream(store, sha, bid, size, chunks) as stream:
                buffered = io.BufferedReader(stream, 1 << 16)  # (closing it closes stream)
                try:
                    value = load(buffered)
                except BaseException as exc:
                    # A damaged value shows up as a zstd error, or as a failing load
                    # before the checksum is reached: report the damage if there is one.
                    stream.finish()
                    if isinstance(exc, _zstd_error()):
                        raise MetaflowDataCorruption(f"cannot decompress: {exc}") from None
                    raise
                stream.finish()
                del buffered
                return value
        except MetaflowDataCorruption as exc:
            raise MetaflowDataCorruption(
                f"{label} is damaged in {store.path}: {exc}; run `mfstore verify` and use a good "
                "copy of the file"
            ) from None
        except _zstd_error() as exc:
            raise MetaflowDataCorruption(
                f"{label} is damaged in {store.path} (cannot decompress: {exc}); run `mfstore verify`"
            ) from None


def _zstd_error() -> type[Exception]:
    import zstandard

    error: type[Exception] = zstandard.ZstdError
    return error


def copy_blob(src: Store, dst: Store, sha: str) -> int | None:
    """Copy blob ``sha`` from ``src`` into ``dst`` as stored (never recompressed), inside
    ``dst.write()``. Returns the stored bytes added, or None if ``dst`` has it already."""
    return copy_blob_id(src, dst, sha)[1]


def copy_blob_id(src: Store, dst: Store, sha: str) -> tuple[int, int | None]:
    """``copy_blob`` that also returns the blob's id in ``dst``: ``(blob_id, stored bytes
    added or None)``. A small first chunk comes with the row (no second read)."""
    key = sha_key(sha)
    row = src.one(
        "SELECT b.blob_id, b.size, b.stored_size, b.chunks, t.name, b.value_json, b.codec, "
        "CASE WHEN length(b.data) <= ? THEN b.data END "
        "FROM blobs b LEFT JOIN types t ON t.type_id = b.type_id WHERE b.sha = ?",
        (SMALL, key),
    )
    if row is None:
        raise StoreError(f"{src.path}: blob {sha} is missing (run `mfstore verify {src.path}`)")
    bid, size, stored, n_chunks, type_name, value_json, codec, small = row
    have = dst.one(
        "SELECT blob_id, type_id IS NULL, value_json IS NULL FROM blobs WHERE sha = ?", (key,)
    )
    if have is not None:
        found, no_type, no_json = have
        if (no_type and type_name is not None) or (no_json and value_json is not None):
            insert_blob(dst, sha, type_name=type_name, value_json=value_json)
        return int(found), None
    rest = _chunk_rows(src, bid, n_chunks)
    dst.execute(
        "INSERT INTO blobs (sha, size, stored_size, chunks, type_id, value_json, codec, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
    new_id = int(dst.conn.last_insert_rowid())
    for seq, (table, rowid, c, _length) in enumerate(rest, start=1):
        dst.execute(
            "INSERT INTO blob_chunks (blob_id, seq, codec, data) VALUES (?, ?, ?, ?)",
            (new_id, seq, c, src.read_blob(table, "data", rowid)),
        )
    return new_id, int(stored)


def verify_blob(store: Store, sha: str) -> str | None:
    """What is wrong with blob ``sha`` (its chunks are missing, it cannot be decompressed
    within its recorded size, it does not hash to its sha or add up to its size), or
    None when it is sound. Memory stays within the recorded size."""
    try:
        key = sha_key(sha)
    except MetaflowNotFound:
        return "is not a sha1"
    row = store.one("SELECT blob_id, size, chunks, codec FROM blobs WHERE sha = ?", (key,))
    if row is None:
        return "is missing"
    bid, size, n_chunks, codec = row
    if not isinstance(size, int) or not isinstance(n_chunks, int) or size < 0 or n_chunks < 1:
        return f"has a bad record (size {size!r}, chunks {n_chunks!r})"
    if n_chunks > size + 1:
        return f"records {n_chunks} chunks for {size} bytes"
    try:
        rest = _chunk_rows(store, bid, n_chunks) if n_chunks > 1 else []
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


def copy_blob_to(store: Store, sha: str, fh: BinaryIO) -> int:
    """Write the raw bytes of blob ``sha`` to ``fh`` chunk by chunk (never the whole value
    in memory twice), checking the sha; return the size. The Metaflow extension hands
    Metaflow's datastore file paths this way."""
    digest = hashlib.sha1()
    size = 0
    try:
        with store.read():
            for part in iter_blob_chunks(store, sha):
                digest.update(part)
                fh.write(part)
                size += len(part)
    except MetaflowDataCorruption as exc:
        raise MetaflowDataCorruption(f"blob {sha} is damaged in {store.path}: {exc}") from None
    if digest.hexdigest() != sha:
        raise MetaflowDataCorruption(
            f"blob {sha} is damaged in {store.path}: its content has sha {digest.hexdigest()}; "
            "run `mfstore verify` and use a good copy of the file"
        )
    return size


def get_small_blobs(store: Store, wanted: dict[int, str]) -> dict[str, bytes]:
    """The raw bytes of several single-chunk blobs ``{blob_id: sha}`` in one statement,
    checked against their sha1 as ``get_blob`` checks small values. A blob that is
    chunked, larger than ``SMALL`` or fails a check is left out: reading it alone with
    ``get_blob``/``load_blob`` then reports what is wrong."""
    import json

    found: dict[str, bytes] = {}
    if not wanted:
        return found
    rows = store.query(
        "SELECT blob_id, size, chunks, codec, data FROM blobs WHERE blob_id IN "
        "(SELECT value FROM json_each(?)) AND chunks = 1 AND length(data) <= ?",
        (json.dumps(sorted(wanted)), SMALL),
    )
    for bid, size, n_chunks, codec, data in rows:
        sha = wanted.get(bid)
        if sha is None or not isinstance(data, bytes) or not isinstance(size, int):
            continue
        try:
            _size_record(sha, size, n_chunks, SMALL)
            raw = unpack_chunk(codec, data, size)
        except Exception:  # damaged: the one-by-one read reports it
            continue
        if len(raw) == size and sha1_hex(raw) == sha.lower():
            found[sha] = raw
    return found

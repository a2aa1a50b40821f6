"""Reading blobs, always checked (see the package docstring): whole values (``get_blob``),
chunk by chunk (``iter_blob_chunks``, ``copy_blob_to``), streamed into a loader without a
full copy (``load_blob``), and many small values in one statement (``get_small_blobs``)."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, BinaryIO, TypeVar

from ..exception import MetaflowDataCorruption, MetaflowNotFound, StoreError, UnsafeArtifactError
from .codec import SMALL, has_checksum, sha1_hex, sha_key, unpack_chunk
from .tables import BLOB_RECORD, check_size_record, chunk_rows

if TYPE_CHECKING:
    from ..store import Store


#: A blob's record, its first chunk's stored length, and that chunk when it is small
#: (``SMALL``, part of the text: one parameter less to bind on every small read).
_RECORD_AND_SMALL_DATA = (
    "SELECT blob_id, size, chunks, codec, length(data), "
    f"CASE WHEN length(data) <= {SMALL} THEN data END FROM blobs WHERE sha = :sha"
)


def iter_blob_chunks(store: Store, sha: str, max_bytes: int | None = None) -> Iterator[bytes]:
    """The raw bytes of a blob, chunk by chunk (sizes checked, content unverified).

    A blob whose recorded size exceeds ``max_bytes`` raises ``UnsafeArtifactError``
    before anything is read; no chunk ever expands beyond the recorded size.
    """
    row = store.one(BLOB_RECORD, {"sha": sha_key(sha)})
    if row is None:
        raise MetaflowNotFound(f"blob {sha} is missing from {store.path}")
    bid, size, n_chunks, codec = row
    check_size_record(sha, size, n_chunks, max_bytes)
    rest = chunk_rows(store, bid, n_chunks) if n_chunks > 1 else []
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
            row = store.one(_RECORD_AND_SMALL_DATA, {"sha": key})
            if row is None:
                raise MetaflowNotFound(f"blob {sha} is missing from {store.path}")
            bid, size, n_chunks, codec, length, small = row
            check_size_record(sha, size, n_chunks, max_bytes)
            if n_chunks == 1 and small is not None:
                raw = unpack_chunk(codec, small, size)
            else:
                chunks = [("blobs", bid, codec, length)]
                if n_chunks > 1:
                    chunks += chunk_rows(store, bid, n_chunks)
                parts = []
                checked = True
                left = size
                for table, rowid, c, _length in chunks:
                    data = store.read_blob(table, "data", rowid)
                    checked = checked and has_checksum(c, data)
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
        if has_checksum(codec, head):
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


def file_text(store: Store | None, ref: str, *, what: str = "file") -> str | None:
    """The text of a task file kept as metadata of type ``mfstore-file`` (cards, their
    data): its value ``ref`` is ``{"text": ...}`` inline, or ``{"sha": ...}`` for a blob (as
    the Metaflow extension keeps larger files), read from ``store`` (checked; undecodable
    bytes replaced). None for any other value, or for a blob when ``store`` is None."""
    try:
        value = json.loads(ref)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("text"), str):
        return str(value["text"])
    if isinstance(value.get("sha"), str) and store is not None:
        return get_blob(store, value["sha"], what=what).decode("utf-8", "replace")
    return None


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
            "SELECT blob_id, size, chunks, codec, length(data) FROM blobs WHERE sha = :sha",
            {"sha": key},
        )
        if row is None:
            raise MetaflowNotFound(f"blob {sha} is missing from {store.path}")
        bid, size, n_chunks, codec, length = row
        try:
            check_size_record(sha, size, n_chunks, None)
        except MetaflowDataCorruption as exc:
            raise MetaflowDataCorruption(f"{label} is damaged in {store.path}: {exc}") from None
        if size <= SMALL and n_chunks == 1:
            return load(io.BytesIO(get_blob(store, sha, what=what)))
        try:
            chunks = [("blobs", bid, codec, length)]
            if n_chunks > 1:
                chunks += chunk_rows(store, bid, n_chunks)
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
        "(SELECT value FROM json_each(:ids)) AND chunks = 1 AND length(data) <= :small",
        {"ids": json.dumps(sorted(wanted)), "small": SMALL},
    )
    for bid, size, n_chunks, codec, data in rows:
        sha = wanted.get(bid)
        if sha is None or not isinstance(data, bytes) or not isinstance(size, int):
            continue
        try:
            check_size_record(sha, size, n_chunks, SMALL)
            raw = unpack_chunk(codec, data, size)
        except Exception:  # damaged: the one-by-one read reports it
            continue
        if len(raw) == size and sha1_hex(raw) == sha.lower():
            found[sha] = raw
    return found


def from_json(text: str | None, kind: type[T] | tuple[type[T], ...]) -> T | None:
    """JSON text kept in the file (a ``value_json``, a card's data) read back when it is
    a ``kind`` (a type or a tuple of types, as ``isinstance`` takes); None when ``text``
    is None, is not JSON, or holds another kind of value."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, kind) else None

"""Content-addressed bytes: one row per distinct value, chunked, zstd where it helps.

The key is the sha1 hex of the raw bytes (for artifacts: the pickled bytes, which is
the ``sha`` Metaflow reports). This module is the only one that touches the ``blobs``
and ``blob_chunks`` tables: pack/unpack (``pack_blob``, ``unpack_chunk``), insert
(``insert_blob``), read (``get_blob``, ``iter_blob_chunks``), copy between files as
stored (``copy_blob``) and verify (``verify_blobs``). It never pickles; see ``artifacts.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from .exception import MetaflowDataCorruption, MetaflowNotFound

if TYPE_CHECKING:
    from .store import Store

#: Raw bytes per chunk; values above SQLite's 1 GB blob limit span several chunks.
CHUNK_SIZE = 256 * 1024 * 1024
ZSTD_LEVEL = 3

#: ``progress(done, total, what)`` callback of long operations.
Progress = Callable[[int, int, str], None]


def sha1_hex(raw: bytes | memoryview) -> str:
    """The content address of ``raw``."""
    return hashlib.sha1(raw).hexdigest()


def pack_chunk(raw: memoryview) -> tuple[str, bytes]:
    """``(codec, payload)`` of one chunk: zstd when it is smaller, else the raw bytes."""
    import zstandard

    packed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(raw)
    if len(packed) < len(raw):
        return "zstd", packed
    return "raw", bytes(raw)


def unpack_chunk(codec: str, data: bytes) -> bytes:
    """The raw bytes of one stored chunk (``MetaflowDataCorruption`` for an unknown codec)."""
    if codec == "raw":
        return data
    if codec == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompress(data)
    raise MetaflowDataCorruption(f"unknown blob codec {codec!r}")


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
    """Hash and compress ``raw`` (outside any transaction: this is the slow part)."""
    view = memoryview(raw)
    sha = sha or sha1_hex(view)
    chunks = [
        pack_chunk(view[start : start + CHUNK_SIZE])
        for start in range(0, max(len(view), 1), CHUNK_SIZE)
    ]
    return PackedBlob(sha, len(view), chunks)


def insert_blob(store: Store, blob: PackedBlob) -> bool:
    """Insert a packed blob unless its sha is present; True if inserted. Inside ``store.write()``."""
    if store.scalar("SELECT 1 FROM blobs WHERE sha = ?", (blob.sha,)):
        return False
    store.execute(
        "INSERT INTO blobs (sha, size, stored_size, chunks) VALUES (?, ?, ?, ?)",
        (blob.sha, blob.size, blob.stored_size, len(blob.chunks)),
    )
    store.executemany(
        "INSERT INTO blob_chunks (sha, seq, codec, data) VALUES (?, ?, ?, ?)",
        [(blob.sha, seq, codec, data) for seq, (codec, data) in enumerate(blob.chunks)],
    )
    return True


def has_blob(store: Store, sha: str) -> bool:
    """True if the file holds blob ``sha``."""
    return bool(store.scalar("SELECT 1 FROM blobs WHERE sha = ?", (sha,)))


def iter_blob_chunks(store: Store, sha: str) -> Iterator[bytes]:
    """The raw bytes of a blob, chunk by chunk (unverified)."""
    row = store.one("SELECT chunks FROM blobs WHERE sha = ?", (sha,))
    if row is None:
        raise MetaflowNotFound(f"blob {sha} is missing from {store.path}")
    for seq in range(row[0]):
        chunk = store.one(
            "SELECT codec, data FROM blob_chunks WHERE sha = ? AND seq = ?", (sha, seq)
        )
        if chunk is None:
            raise MetaflowDataCorruption("blob %s in %s lacks chunk %d" % (sha, store.path, seq))
        yield unpack_chunk(chunk[0], chunk[1])


def get_blob(store: Store, sha: str, *, what: str | None = None) -> bytes:
    """The raw bytes of blob ``sha``, checked against the sha.

    ``what`` names the value for the error (e.g. an artifact pathspec).
    """
    label = what or f"blob {sha}"
    try:
        with store.read():
            parts = list(iter_blob_chunks(store, sha))
    except MetaflowDataCorruption as exc:
        raise MetaflowDataCorruption(f"{label} is damaged in {store.path}: {exc}") from None
    except Exception as exc:  # zstd errors on damaged payloads
        if isinstance(exc, MetaflowNotFound):
            raise
        raise MetaflowDataCorruption(
            f"{label} is damaged in {store.path} (cannot decompress: {exc}); run `mfstore verify`"
        ) from None
    raw = parts[0] if len(parts) == 1 else b"".join(parts)
    actual = sha1_hex(raw)
    if actual != sha:
        raise MetaflowDataCorruption(
            f"{label} is damaged in {store.path}: its content has sha {actual}, expected {sha}; "
            "run `mfstore verify` and use a good copy of the file"
        )
    return raw


def copy_blob(src: Store, dst: Store, sha: str) -> int | None:
    """Copy blob ``sha`` from ``src`` into ``dst`` as stored (never recompressed), inside
    ``dst.write()``. Returns the stored bytes added, or None if ``dst`` has it already."""
    if has_blob(dst, sha):
        return None
    row = src.one("SELECT sha, size, stored_size, chunks FROM blobs WHERE sha = ?", (sha,))
    if row is None:
        from .exception import StoreError

        raise StoreError(f"{src.path}: blob {sha} is missing (run `mfstore verify {src.path}`)")
    dst.execute("INSERT INTO blobs (sha, size, stored_size, chunks) VALUES (?, ?, ?, ?)", row)
    dst.executemany(
        "INSERT INTO blob_chunks (sha, seq, codec, data) VALUES (?, ?, ?, ?)",
        src.query(
            "SELECT sha, seq, codec, data FROM blob_chunks WHERE sha = ? ORDER BY seq", (sha,)
        ),
    )
    return int(row[2])


def verify_blobs(store: Store, progress: Progress | None = None) -> list[tuple[str, str]]:
    """``(sha, problem)`` for every blob whose chunks are missing, cannot be decompressed,
    or do not hash to its sha or add up to its size (empty list: all sound)."""
    out: list[tuple[str, str]] = []
    rows = store.query("SELECT sha, size, chunks FROM blobs ORDER BY sha")
    for i, (sha, size, n_chunks) in enumerate(rows):
        if progress is not None and i % 64 == 0:
            progress(i, len(rows), sha)
        chunks = store.query(
            "SELECT seq, codec, data FROM blob_chunks WHERE sha = ? ORDER BY seq", (sha,)
        )
        seqs = [c[0] for c in chunks]
        if seqs != list(range(n_chunks)):
            out.append((sha, "has chunks %s, expected 0..%d" % (seqs, n_chunks - 1)))
            continue
        try:
            raw = b"".join(unpack_chunk(codec, data) for _, codec, data in chunks)
        except Exception as exc:
            out.append((sha, f"cannot be decompressed ({exc})"))
            continue
        actual = sha1_hex(raw)
        if actual != sha:
            out.append((sha, f"content has sha {actual}"))
        elif len(raw) != size:
            out.append((sha, "content is %d bytes, recorded size %d" % (len(raw), size)))
    if progress is not None:
        progress(len(rows), len(rows), "done")
    return out


def copy_blob_to(store: Store, sha: str, fh: BinaryIO) -> int:
    """Write the raw bytes of blob ``sha`` to ``fh`` chunk by chunk (never the whole value
    in memory twice), checking the sha; return the size."""
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

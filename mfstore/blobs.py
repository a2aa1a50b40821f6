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

from .exception import MetaflowDataCorruption, MetaflowNotFound, StoreError, UnsafeArtifactError

if TYPE_CHECKING:
    from .store import Store

#: Raw bytes per chunk; values above SQLite's 1 GB blob limit span several chunks.
CHUNK_SIZE = 256 * 1024 * 1024
ZSTD_LEVEL = 3
#: Largest piece decompressed at once (memory is bounded by the bytes produced).
_READ_PIECE = 16 * 1024 * 1024

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


def iter_blob_chunks(store: Store, sha: str, max_bytes: int | None = None) -> Iterator[bytes]:
    """The raw bytes of a blob, chunk by chunk (sizes checked, content unverified).

    A blob whose recorded size exceeds ``max_bytes`` raises ``UnsafeArtifactError``
    before anything is read; no chunk ever expands beyond the recorded size.
    """
    row = store.one("SELECT size, chunks FROM blobs WHERE sha = ?", (sha,))
    if row is None:
        raise MetaflowNotFound(f"blob {sha} is missing from {store.path}")
    size, n_chunks = row
    if not isinstance(size, int) or not isinstance(n_chunks, int) or size < 0:
        raise MetaflowDataCorruption(f"blob {sha} has a bad size record")
    if n_chunks < 1 or n_chunks > size + 1:
        raise MetaflowDataCorruption(f"blob {sha} records {n_chunks} chunks for {size} bytes")
    if max_bytes is not None and size > max_bytes:
        raise UnsafeArtifactError(
            f"blob {sha} is {size} bytes, beyond the loading budget of {max_bytes} bytes"
        )
    left = size
    for seq in range(n_chunks):
        chunk = store.one(
            "SELECT codec, data FROM blob_chunks WHERE sha = ? AND seq = ?", (sha, seq)
        )
        if chunk is None:
            raise MetaflowDataCorruption(f"blob {sha} in {store.path} lacks chunk {seq}")
        part = unpack_chunk(chunk[0], chunk[1], left)
        left -= len(part)
        yield part
    if left:
        raise MetaflowDataCorruption(f"blob {sha} is {left} bytes shorter than recorded")


def get_blob(
    store: Store, sha: str, *, what: str | None = None, max_bytes: int | None = None
) -> bytes:
    """The raw bytes of blob ``sha``, checked against the sha.

    ``what`` names the value for the error (e.g. an artifact pathspec); ``max_bytes``
    refuses a blob recorded as larger before reading it (``load_safe``'s budget).
    """
    label = what or f"blob {sha}"
    try:
        with store.read():
            parts = list(iter_blob_chunks(store, sha, max_bytes))
    except MetaflowDataCorruption as exc:
        raise MetaflowDataCorruption(f"{label} is damaged in {store.path}: {exc}") from None
    except UnsafeArtifactError as exc:
        raise UnsafeArtifactError(f"{label}: {exc}") from None
    except Exception as exc:  # zstd errors on damaged payloads
        if isinstance(exc, (MetaflowNotFound, StoreError)):
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


def verify_blob(store: Store, sha: str) -> str | None:
    """What is wrong with blob ``sha`` (its chunks are missing, it cannot be decompressed
    within its recorded size, it does not hash to its sha or add up to its size), or
    None when it is sound. Memory stays within the recorded size."""
    row = store.one("SELECT size, chunks FROM blobs WHERE sha = ?", (sha,))
    if row is None:
        return "is missing"
    size, n_chunks = row
    if not isinstance(size, int) or not isinstance(n_chunks, int) or size < 0 or n_chunks < 1:
        return f"has a bad record (size {size!r}, chunks {n_chunks!r})"
    seqs = [
        s for (s,) in store.query("SELECT seq FROM blob_chunks WHERE sha = ? ORDER BY seq", (sha,))
    ]
    if n_chunks > size + 1 or len(seqs) != n_chunks or seqs != list(range(n_chunks)):
        return f"has chunks {seqs[:8]}, expected 0..{n_chunks - 1}"
    digest = hashlib.sha1()
    left = size
    for seq in range(n_chunks):
        codec, data = store.one(
            "SELECT codec, data FROM blob_chunks WHERE sha = ? AND seq = ?", (sha, seq)
        ) or (None, b"")
        try:
            part = unpack_chunk(codec, data, left)
        except Exception as exc:
            return f"cannot be decompressed ({' '.join(str(exc).split())[:120]})"
        left -= len(part)
        digest.update(part)
    if left:
        return f"content is {size - left} bytes, recorded size {size}"
    if digest.hexdigest() != sha:
        return f"content has sha {digest.hexdigest()}"
    return None


def verify_blobs(store: Store, progress: Progress | None = None) -> list[tuple[str, str]]:
    """``(sha, problem)`` for every blob whose chunks are missing, cannot be decompressed,
    or do not hash to its sha or add up to its size (empty list: all sound)."""
    out: list[tuple[str, str]] = []
    rows = store.query("SELECT sha FROM blobs ORDER BY sha")
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

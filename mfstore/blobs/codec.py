"""The chunk format of a blob: content addresses (sha1), the sizes a value is cut at, and
each chunk's codec (``raw``, or a zstd frame with its content checksum). Pure: no file,
no table (see ``blobs.tables``)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from ..exception import MetaflowDataCorruption, MetaflowNotFound

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


@contextlib.contextmanager
def use_chunk_size(size: int) -> Iterator[None]:
    """Cut values into chunks of at most ``size`` raw bytes inside the block (instead of
    ``CHUNK_SIZE``), to write multi-chunk values without hundreds of MB (tests, tools).
    Process-wide while the block runs; a file written so reads like any other::

        with blobs.use_chunk_size(1000):
            insert_blob(store, pack_blob(value))
    """
    global CHUNK_SIZE
    if size < 1:
        raise ValueError(f"chunk size must be at least 1 byte, not {size}")
    old, CHUNK_SIZE = CHUNK_SIZE, size
    try:
        yield
    finally:
        CHUNK_SIZE = old


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


def has_checksum(codec: str, data: bytes) -> bool:
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
        if digest is not None:
            sha = digest.result()
    return PackedBlob(sha or "", size, chunks)


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

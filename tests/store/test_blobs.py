"""Content-addressed blobs: sha, dedup, compression choice, chunking, corruption."""

from __future__ import annotations

import hashlib
import os
import pickle

import pytest

from mfstore import blobs
from mfstore.artifacts import prepare_artifact, prepare_artifacts
from mfstore.exception import MetaflowDataCorruption
from mfstore.store import Store
from mfstore.writer import Writer


def _put(store: Store, raw: bytes) -> str:
    packed = blobs.pack_blob(raw)
    with store.write():
        blobs.insert_blob(store, packed)
    return packed.sha


def test_sha_and_size_are_metaflows(store: Store) -> None:
    value = {"a": [1, 2, 3], "b": "x"}
    art = prepare_artifact(value)
    raw = pickle.dumps(value, protocol=4)
    assert art.sha == hashlib.sha1(raw).hexdigest()
    assert art.blob is not None and art.blob.size == len(raw)


def test_same_value_is_stored_once(store: Store) -> None:
    w = Writer(store)
    big = bytes(5 * 1024 * 1024)
    for flow in ("A", "B"):
        run = w.begin_run(flow, user_name="u", system_tags=["user:u"])
        for _ in range(3):
            task = w.add_task(run, "start")
            w.begin_attempt(task, 0)
            w.end_attempt(
                task, 0, artifacts=prepare_artifacts({"big": big}), task_ok=True, success=True
            )
    assert store.scalar("SELECT count(*) FROM artifacts") == 6
    assert store.scalar("SELECT count(*) FROM blobs") == 1
    size, stored = store.one("SELECT size, stored_size FROM blobs")
    assert size == 5242889  # Metaflow reports this size for 5 MiB of bytes
    assert stored < size // 100


def test_incompressible_blob_is_kept_raw(store: Store) -> None:
    raw = os.urandom(100_000)
    with store.write():
        blobs.insert_blob(store, blobs.pack_blob(raw))
    codec, data = store.one("SELECT codec, data FROM blobs")
    assert codec == "raw" and data == raw
    assert blobs.get_blob(store, hashlib.sha1(raw).hexdigest()) == raw


def test_large_incompressible_blob_is_a_checksummed_zstd_frame(store: Store) -> None:
    """Large chunks are zstd frames with a content checksum even when zstd cannot shrink
    them: reading checks the checksum instead of re-hashing the whole value."""
    raw = os.urandom(3 * blobs.SMALL)
    sha = _put(store, raw)
    codec, data = store.one("SELECT codec, data FROM blobs")
    assert codec == "zstd" and data[:4] == b"\x28\xb5\x2f\xfd" and data[4] & 4
    assert len(data) < len(raw) + 1024
    assert blobs.get_blob(store, sha) == raw
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0x01  # inside a raw block: only the checksum can tell
    with store.write():
        store.execute("UPDATE blobs SET data = ?", (bytes(damaged),))
    with pytest.raises(MetaflowDataCorruption, match="the value is damaged"):
        blobs.get_blob(store, sha, what="the value")
    assert [s for s, _ in blobs.verify_blobs(store)] == [sha]


def test_large_raw_chunk_is_checked_against_its_sha(store: Store) -> None:
    """A large chunk without a checksum (older files kept incompressible chunks raw) is
    checked against the full sha1."""
    raw = os.urandom(2 * blobs.SMALL)
    sha = _put(store, raw)
    damaged = bytearray(raw)
    damaged[12345] ^= 0x01
    with store.write():
        store.execute("UPDATE blobs SET codec = 'raw', data = ?", (raw,))
    assert blobs.get_blob(store, sha) == raw
    with store.write():
        store.execute("UPDATE blobs SET data = ?", (bytes(damaged),))
    with pytest.raises(MetaflowDataCorruption, match="content has sha"):
        blobs.get_blob(store, sha)


def test_chunked_blob_round_trip(store: Store) -> None:
    raw = os.urandom(2500) + bytes(3000)
    with blobs.use_chunk_size(1000):
        sha = _put(store, raw)
    assert store.scalar("SELECT chunks FROM blobs WHERE sha = ?", (bytes.fromhex(sha),)) == 6
    assert [r[0] for r in store.query("SELECT seq FROM blob_chunks ORDER BY seq")] == list(
        range(1, 6)
    )
    assert blobs.get_blob(store, sha) == raw
    # the usual size again after the block
    other = _put(store, raw[::-1])
    assert store.scalar("SELECT chunks FROM blobs WHERE sha = ?", (bytes.fromhex(other),)) == 1
    assert blobs.get_blob(store, other) == raw[::-1]


def test_damaged_blob_is_a_clear_error_never_a_wrong_value(store: Store) -> None:
    sha = _put(store, pickle.dumps(list(range(1000)), protocol=4))
    with store.write():
        store.execute(
            "UPDATE blobs SET codec = 'raw', data = ? WHERE sha = ?",
            (pickle.dumps([1], protocol=4), bytes.fromhex(sha)),
        )
    with pytest.raises(MetaflowDataCorruption, match="F/1/start/2/x is damaged"):
        blobs.get_blob(store, sha, what="F/1/start/2/x")


def test_undecompressible_blob_is_a_clear_error(store: Store) -> None:
    sha = _put(store, bytes(10_000))
    with store.write():
        store.execute("UPDATE blobs SET data = ? WHERE sha = ?", (b"garbage", bytes.fromhex(sha)))
    with pytest.raises(MetaflowDataCorruption, match="cannot decompress"):
        blobs.get_blob(store, sha, what="the artifact")


def test_artifact_larger_than_sqlite_blob_limit(store: Store) -> None:
    """A real 1.1 GB value (SQLite's blob limit is 1 GB): stored in chunks, read back whole,
    and reading its small sibling never touches it."""
    from mfstore.artifacts import loads

    w = Writer(store)
    run = w.begin_run("Big", user_name="u", system_tags=["user:u"])
    task = w.add_task(run, "start")
    w.begin_attempt(task, 0)
    value = b"\x01" * 1_100_000_000
    arts = prepare_artifacts({"big": value, "small": 1})
    del value
    w.end_attempt(task, 0, artifacts=arts, task_ok=True, success=True)
    big_sha = arts["big"].sha
    del arts
    size, chunks = store.one(
        "SELECT size, chunks FROM blobs WHERE sha = ?", (bytes.fromhex(big_sha),)
    )
    # Large values are cut into PIECE_SIZE chunks (each below SQLite's limit).
    assert size > 1_000_000_000 and chunks == -(-size // blobs.PIECE_SIZE)
    back = loads(blobs.get_blob(store, big_sha))
    assert len(back) == 1_100_000_000 and back[:3] == b"\x01\x01\x01" and back[-1:] == b"\x01"


@pytest.mark.parametrize(
    "value",
    [
        os.urandom(9_000_000),  # one large bytes value, handed to the packer uncopied
        bytearray(os.urandom(5_000_000)),
        {"a": os.urandom(5_000_000), "b": bytes(12_000_000), "c": list(range(1000))},
        list(range(400_000)),  # many pickle frames, below FAST_ABOVE
        "é" * 3_000_000,
    ],
    ids=["bytes", "bytearray", "dict", "list", "str"],
)
def test_large_values_pack_to_metaflows_sha_in_pieces(store: Store, value: object) -> None:
    """The pickler's output is packed in pieces without joining it: the sha is still that
    of the pickled bytes (Metaflow's), every piece but the last is PIECE_SIZE raw bytes,
    and the value reads back whole."""
    import cloudpickle

    from mfstore.artifacts import loads

    raw = cloudpickle.dumps(value, protocol=4)
    art = prepare_artifact(value)
    assert art.sha == hashlib.sha1(raw).hexdigest()
    assert art.blob is not None and art.blob.size == len(raw)
    pieces = [blobs.unpack_chunk(c, d) for c, d in art.blob.chunks]
    assert b"".join(pieces) == raw
    if len(raw) > blobs.FAST_ABOVE:
        assert [len(p) for p in pieces[:-1]] == [blobs.PIECE_SIZE] * (len(pieces) - 1)
        # Every chunk, the short last one too, is a zstd frame with a content checksum
        # (frame header descriptor bit 2): reading checks them, never a sha1 of it all.
        assert all(c == "zstd" and d[4] & 4 for c, d in art.blob.chunks)
    with store.write():
        blobs.insert_blob(store, art.blob)
    assert loads(blobs.get_blob(store, art.sha)) == value
    assert blobs.load_blob(store, art.sha, lambda fh: fh.read()) == raw
    assert blobs.verify_blob(store, art.sha) is None


def test_large_chunks_are_written_into_their_rows_as_packed(store: Store) -> None:
    """Chunks above ``DIRECT_WRITE_ABOVE`` are inserted as zeroblob(n) and written into
    their pages: the rows hold exactly the packed chunks, in order."""
    raw = os.urandom(2 * blobs.PIECE_SIZE + 12345)
    packed = blobs.pack_blob(raw)
    assert len(packed.chunks) == 3
    with store.write():
        blobs.insert_blob(store, packed)
    stored = [store.scalar("SELECT data FROM blobs")] + [
        r[0] for r in store.query("SELECT data FROM blob_chunks ORDER BY seq")
    ]
    assert stored == [data for _codec, data in packed.chunks]
    assert blobs.get_blob(store, packed.sha) == raw
    assert blobs.verify_blobs(store) == []


def test_a_failed_write_leaves_no_directly_written_chunk(store: Store) -> None:
    raw = os.urandom(blobs.PIECE_SIZE + 1)
    packed = blobs.pack_blob(raw)
    with pytest.raises(RuntimeError), store.write():
        blobs.insert_blob(store, packed)
        raise RuntimeError("the task's write fails after its blob")
    assert store.scalar("SELECT count(*) FROM blobs") == 0
    assert store.scalar("SELECT count(*) FROM blob_chunks") == 0
    with store.write():
        blobs.insert_blob(store, packed)
    assert blobs.get_blob(store, packed.sha) == raw
    assert blobs.verify_blobs(store) == []

"""The sha check, safe loading, and that reading one artifact touches only its blob."""

from __future__ import annotations

import pytest

from mfstore import DataArtifact, Run
from mfstore.exception import MetaflowDataCorruption, UnsafeArtifactError


def test_corrupt_chunk_names_the_artifact(history):
    r = history.run(values={"x": "a value", "y": "another value"})
    x = DataArtifact(r.pathspec + "/end/2/x")
    y = DataArtifact(r.pathspec + "/end/2/y")
    with history.store.write():
        history.store.execute(
            "UPDATE blobs SET codec = 'raw', data = ? WHERE sha = ?",
            (b"garbage", bytes.fromhex(x.sha)),
        )
    with pytest.raises(MetaflowDataCorruption) as e:
        _ = x.data
    assert r.pathspec + "/end/2/x" in str(e.value)
    with pytest.raises(MetaflowDataCorruption):
        _ = Run(r.pathspec).data.x
    assert y.data == "another value"  # other artifacts are untouched


def test_reading_one_artifact_reads_only_its_blob(history):
    r = history.run(values={"x": 1, "y": 2})
    art = DataArtifact(r.pathspec + "/end/2/x")
    seen = []
    history_store = art._store
    history_store.conn.exec_trace = lambda cur, sql, b: seen.append((sql, b)) or True
    try:
        assert art.data == 1
    finally:
        history_store.conn.exec_trace = None
    shas = {
        v
        for _, b in seen
        for v in (b.values() if isinstance(b, dict) else b or ())
        if isinstance(v, bytes) and len(v) == 20
    }
    assert shas == {bytes.fromhex(art.sha)}


def test_load_safe_refuses_code(history):
    class Custom:
        pass

    r = history.run(values={"obj": Custom(), "plain": {"a": [1, 2]}})
    assert DataArtifact(r.pathspec + "/end/2/plain").load_safe() == {"a": [1, 2]}
    with pytest.raises(UnsafeArtifactError):
        DataArtifact(r.pathspec + "/end/2/obj").load_safe()


def test_a_damaged_byte_in_a_large_values_chunk_is_caught_by_data(history):
    """A large value (written chunk by chunk straight into its rows' pages) with one byte
    flipped inside a raw zstd block of its second chunk: ``.data`` refuses it (the frame
    checksum), ``mfstore verify``'s full check names it, other artifacts still read."""
    import os

    from mfstore import blobs

    big = os.urandom(20_000_000)
    r = history.run(values={"big": big, "small": "fine"})
    art = DataArtifact(r.pathspec + "/end/2/big")
    assert art.data == big
    store = history.store
    pk, data = store.one(
        "SELECT chunk_pk, data FROM blob_chunks WHERE seq = 1 AND blob_id = "
        "(SELECT blob_id FROM blobs WHERE sha = ?)",
        (bytes.fromhex(art.sha),),
    )
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0x40
    with store.write():
        store.execute("UPDATE blob_chunks SET data = ? WHERE chunk_pk = ?", (bytes(damaged), pk))
    with pytest.raises(MetaflowDataCorruption) as e:
        _ = DataArtifact(r.pathspec + "/end/2/big").data
    assert r.pathspec + "/end/2/big" in str(e.value)
    assert [sha for sha, _ in blobs.verify_blobs(store)] == [art.sha]
    assert DataArtifact(r.pathspec + "/end/2/small").data == "fine"

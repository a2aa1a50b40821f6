"""``.data`` of an artifact the file records as plain data never runs the pickle: the
record (shown by `show`, the views and the UI as an int, a list ...) is what the user
trusts, so bytes that are something else are refused as corruption."""

from __future__ import annotations

import hashlib
import pickle
import sqlite3
from pathlib import Path

import pytest

from mfstore.exception import MetaflowDataCorruption

from .conftest import build_file, evil_pickle


def _swap_bytes(path: Path, name: str, raw: bytes, *, keep_json: bool) -> None:
    """Give artifact ``name`` of every task the bytes ``raw`` (a sound blob: they hash to
    its sha), as an attacker with a stock SQLite would."""
    sha = hashlib.sha1(raw).digest()
    con = sqlite3.connect(path)
    bids = {
        bid
        for (bid,) in con.execute(
            "SELECT DISTINCT blob_id FROM mf_artifacts WHERE name = ?", (name,)
        )
    }
    for bid in bids:
        json_set = "" if keep_json else ", value_json = NULL"
        con.execute(
            "UPDATE blobs SET sha = ?, size = ?, stored_size = ?, codec = 'raw', data = ?"
            f"{json_set} WHERE blob_id = ?",
            (sha, len(raw), len(raw), raw, bid),
        )
    con.commit()
    con.close()


@pytest.fixture
def hostile(tmp_path: Path, client_db):
    path = tmp_path / "theirs.mfdb"
    build_file(path, runs=1)
    return path, client_db


def test_an_int_that_is_a_pickle_of_code_is_refused(hostile, tmp_path: Path) -> None:
    path, use = hostile
    marker = tmp_path / "ran"
    _swap_bytes(path, "x", evil_pickle(marker), keep_json=False)
    use(path)
    from mfstore import Flow

    run = Flow("SharedFlow").latest_run
    with pytest.raises(MetaflowDataCorruption, match=r"recorded as plain data \(builtins.int\)"):
        _ = run["start"].task["x"].data
    # the batched path (tasks of one step iteration share their reads) too
    with pytest.raises(MetaflowDataCorruption, match="recorded as plain data"):
        _ = [t["x"].data for t in run["end"]]
    with pytest.raises(MetaflowDataCorruption, match="recorded as plain data"):
        _ = run["end"].task.data.x
    assert not marker.exists()


def test_a_json_list_that_is_a_pickle_of_code_is_refused(hostile, tmp_path: Path) -> None:
    path, use = hostile
    marker = tmp_path / "ran"
    # _graph_info is a dict with a JSON value: recorded as plain data
    _swap_bytes(path, "_graph_info", evil_pickle(marker), keep_json=True)
    use(path)
    from mfstore import Flow

    task = Flow("SharedFlow").latest_run["start"].task
    with pytest.raises(MetaflowDataCorruption, match=r"recorded as plain data \(builtins.dict\)"):
        _ = task["_graph_info"].data
    assert not marker.exists()


def test_plain_values_still_load_and_other_values_still_unpickle(hostile) -> None:
    path, use = hostile
    # A value of a type the file does not record as plain (a set) loads with .data as
    # Metaflow does: the user asked for the value of a non-plain artifact.
    _swap_bytes(path, "_task_ok", pickle.dumps({1, 2}, protocol=4), keep_json=False)
    con = sqlite3.connect(path)
    con.execute("INSERT OR IGNORE INTO types (name) VALUES ('builtins.set')")
    con.execute(
        "UPDATE blobs SET type_id = (SELECT type_id FROM types WHERE name = 'builtins.set') "
        "WHERE blob_id IN (SELECT blob_id FROM mf_artifacts WHERE name = '_task_ok')"
    )
    con.commit()
    con.close()
    use(path)
    from mfstore import Flow

    task = Flow("SharedFlow").latest_run["start"].task
    assert task["x"].data == 0
    assert task["_graph_info"].data["start_step"] == "start"
    assert task["_task_ok"].data == {1, 2}

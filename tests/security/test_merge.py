"""Issue 12, class 3: merge checks THEIRS before it copies anything, and never impersonates."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from .conftest import build_file, cli, digest, one_line_error


def _edit(path: Path, *statements: str, params: tuple = ()) -> None:
    """The attacker's edit, with a stock SQLite connection."""
    con = sqlite3.connect(path)
    for sql in statements:
        con.execute(sql, params if "?" in sql else ())
    con.commit()
    con.close()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    mine, theirs = tmp_path / "mine.mfdb", tmp_path / "theirs.mfdb"
    build_file(mine, flow="MyFlow", user="me")
    build_file(theirs, flow="SharedFlow", user="mallory", runs=2)
    return mine, theirs


def _refused(mine: Path, theirs: Path, *named: str) -> str:
    before = digest(mine)
    line = one_line_error(cli("merge", str(theirs), "--into", str(mine)))
    for n in named:
        assert n in line, line
    assert "nothing was copied" in line
    assert digest(mine) == before
    return line


def _an_artifact_sha(path: Path, name: str = "x") -> str:
    con = sqlite3.connect(path)
    (sha,) = con.execute(
        "SELECT sha FROM mf_artifacts WHERE name = ? ORDER BY task_pk DESC LIMIT 1", (name,)
    ).fetchone()
    con.close()
    return sha


def test_a_blob_whose_bytes_do_not_hash_to_its_sha_refuses_the_whole_merge(files) -> None:
    mine, theirs = files
    sha = _an_artifact_sha(theirs)
    import pickle

    _edit(
        theirs,
        "UPDATE blobs SET codec = 'raw', data = ? WHERE lower(hex(sha)) = ?",
        params=(pickle.dumps(12345, protocol=4), sha),
    )
    _edit(theirs, f"UPDATE blobs SET size = 18 WHERE lower(hex(sha)) = '{sha}'")
    _refused(mine, theirs, "SharedFlow/", "/x", "does not verify", sha)


def test_missing_chunks_and_zstd_bombs_refuse(files, tmp_path: Path) -> None:
    import zstandard

    mine, theirs = files
    sha = _an_artifact_sha(theirs)
    # the value records a second chunk that is not there (the first is in the blob row)
    _edit(theirs, f"UPDATE blobs SET chunks = 2 WHERE lower(hex(sha)) = '{sha}'")
    _refused(mine, theirs, sha, "chunks")

    other = tmp_path / "bomb.mfdb"
    build_file(other, flow="BombFlow", runs=2)
    sha = _an_artifact_sha(other)
    bomb = zstandard.ZstdCompressor().compress(b"\0" * (64 * 1024 * 1024))
    _edit(
        other,
        "UPDATE blobs SET codec = 'zstd', data = ? WHERE lower(hex(sha)) = ?",
        params=(bomb, sha),
    )
    _refused(mine, other, sha, "cannot be decompressed")


def test_a_blob_already_in_mine_is_never_overwritten(tmp_path: Path) -> None:
    from mfstore.blobs import get_blob, verify_blobs
    from mfstore.store import Store

    mine, theirs = tmp_path / "mine.mfdb", tmp_path / "theirs.mfdb"
    build_file(mine, flow="MyFlow")
    build_file(theirs, flow="SharedFlow")  # same values: the same shas
    sha = _an_artifact_sha(theirs)
    assert sha == _an_artifact_sha(mine)
    _edit(
        theirs,
        "UPDATE blobs SET codec = 'raw', data = X'00' WHERE lower(hex(sha)) = ?",
        params=(sha,),
    )
    before = Store(mine, reader=True)
    good = get_blob(before, sha)
    before.close()
    result = cli("merge", str(theirs), "--into", str(mine))
    assert result.exit_code == 0, result.output
    after = Store(mine, reader=True)
    try:
        assert get_blob(after, sha) == good
        assert verify_blobs(after) == []
        assert after.scalar("SELECT count(*) FROM runs") == 2
    finally:
        after.close()


def test_a_future_dated_run_cannot_pose_as_the_latest(files, client_db) -> None:
    mine, theirs = files
    future = int(time.time() * 1000) + 10 * 86_400_000
    _edit(theirs, f"UPDATE runs SET ts_epoch = {future} WHERE run_pk = 1")
    _refused(mine, theirs, "dated in the future", "SharedFlow/")


@pytest.mark.parametrize(
    "attack",
    [
        "INSERT INTO tag_events (run_pk, ts_epoch, user_name, removed, added) "
        "VALUES (1, 1700000000000, 'm', 'not json', '[]')",
        "INSERT INTO tag_events (run_pk, ts_epoch, user_name, removed, added) "
        "VALUES (1, 1700000000000, 'm', '[]', '{\"a\": 1}')",
        "INSERT INTO tag_events (run_pk, ts_epoch, user_name, removed, added) "
        "VALUES (1, 99999999999999999, 'm', '[]', '[]')",
        "UPDATE runs SET finished_at = -5 WHERE run_pk = 1",
        "UPDATE attempts SET started_at = 4611686018427387904",
    ],
)
def test_bad_rows_give_a_one_line_refusal(files, attack: str) -> None:
    mine, theirs = files
    _edit(theirs, attack)
    _refused(mine, theirs, "SharedFlow/")


def test_dry_run_lists_what_would_come_in_and_writes_nothing(files) -> None:
    mine, theirs = files
    before = digest(mine)
    result = cli("merge", str(theirs), "--into", str(mine), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "SharedFlow  mallory  2 would be added  0 already there" in result.output
    assert "nothing was written" in result.output
    assert digest(mine) == before
    absent = mine.with_name("new.mfdb")
    assert cli("merge", str(theirs), "--into", str(absent), "--dry-run").exit_code == 0
    assert not absent.exists()


def test_merged_runs_record_where_they_came_from(files, client_db) -> None:
    import mfstore

    mine, theirs = files
    day_before = time.strftime("%Y-%m-%d", time.gmtime())
    assert cli("merge", str(theirs), "--into", str(mine)).exit_code == 0
    days = {day_before, time.strftime("%Y-%m-%d", time.gmtime())}  # a merge across midnight
    client_db(mine)
    runs = list(mfstore.Flow("SharedFlow"))
    assert len(runs) == 2
    for run in runs:
        p = run.merged_from
        assert p is not None and p.file == "theirs.mfdb" and p.merged_by
        assert p.merged_at[:10] in days
        assert len(p.source_id) == 12
        assert run.user_tags == {"shared"}
    assert all(r.merged_from is None for r in mfstore.Flow("MyFlow"))
    rows = cli(
        "sql",
        "--json",
        str(mine),
        "SELECT run_id, system_tags FROM mf_runs WHERE flow = 'SharedFlow'",
    )
    assert rows.exit_code == 0 and all(
        any(t.startswith("merged-from:theirs.mfdb id=") for t in json.loads(r["system_tags"]))
        for r in json.loads(rows.output)
    )
    shown = cli("show", f"SharedFlow/{runs[0].id}", "--mfdb", str(mine))
    assert shown.exit_code == 0 and "merged-from:theirs.mfdb" in shown.output
    # merging the same file again: the runs are identical (provenance is not content)
    again = cli("merge", str(theirs), "--into", str(mine))
    assert again.exit_code == 0 and "0 added" in again.output and "0 conflicts" in again.output


@pytest.mark.parametrize(
    ("attack", "named"),
    [
        # The views would show 43 while the artifact holds 0 (format 3 keeps the JSON
        # value and the type beside the bytes, outside what the sha covers).
        ("UPDATE blobs SET value_json = '43' WHERE blob_id = {bid}", "recorded JSON value"),
        (
            "UPDATE blobs SET type_id = (SELECT type_id FROM types WHERE name = 'builtins.str') "
            "WHERE blob_id = {bid}",
            "is recorded as builtins.str but holds a builtins.int",
        ),
    ],
)
def test_a_blob_record_that_lies_about_its_value_refuses(files, attack: str, named: str) -> None:
    mine, theirs = files
    sha = _an_artifact_sha(theirs)
    con = sqlite3.connect(theirs)
    (bid,) = con.execute("SELECT blob_id FROM blobs WHERE lower(hex(sha)) = ?", (sha,)).fetchone()
    con.execute("INSERT OR IGNORE INTO types (name) VALUES ('builtins.str')")
    con.commit()
    con.close()
    _edit(theirs, attack.format(bid=bid))
    _refused(mine, theirs, "artifact SharedFlow/", named)


def test_a_pickle_recorded_as_plain_data_refuses_and_runs_nothing(files, tmp_path: Path) -> None:
    import hashlib

    from .conftest import evil_pickle

    mine, theirs = files
    marker = tmp_path / "ran"
    raw = evil_pickle(marker)
    sha = hashlib.sha1(raw).hexdigest()
    old = _an_artifact_sha(theirs)
    # A sound blob (its bytes hash to its sha) whose record says builtins.int.
    _edit(
        theirs,
        "UPDATE blobs SET sha = ?, size = ?, stored_size = ?, codec = 'raw', data = ?, "
        "value_json = NULL WHERE lower(hex(sha)) = ?",
        params=(bytes.fromhex(sha), len(raw), len(raw), raw, old),
    )
    _refused(mine, theirs, "is recorded as plain data (builtins.int) but is not")
    assert not marker.exists()

"""The .mfdb file: identity, versioning, bad files, transactions."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import struct
import subprocess
from pathlib import Path

import pytest

from mfstore.artifacts import prepare_artifacts
from mfstore.exception import (
    MetaflowNotFound,
    NotAnMfdbError,
    SchemaTooNewError,
    SchemaTooOldError,
    StoreReadOnlyError,
    TruncatedFileError,
)
from mfstore.migrations import APPLICATION_ID, FORMAT_VERSION
from mfstore.store import Store
from mfstore.writer import Writer


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_run(store: Store, flow: str = "F") -> None:
    w = Writer(store)
    run = w.begin_run(flow, user_name="alice", system_tags=["user:alice"])
    task = w.add_task(run, "start")
    w.begin_attempt(task, 0)
    w.end_attempt(task, 0, artifacts=prepare_artifacts({"x": 1}), task_ok=True, success=True)
    w.end_run(run, successful=True)


def test_new_file_is_identified_and_versioned(store: Store, store_path: Path) -> None:
    _write_run(store)
    store.close()
    con = sqlite3.connect(store_path)
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert con.execute("PRAGMA user_version").fetchone()[0] == FORMAT_VERSION
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    con.close()


def test_stock_sqlite3_shell_reads_the_file(store: Store, store_path: Path) -> None:
    _write_run(store)
    store.close()
    out = subprocess.run(
        ["sqlite3", str(store_path), "SELECT flow_id, status FROM runs; PRAGMA integrity_check;"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["F|successful", "ok"]


def test_run_end_folds_the_wal_into_the_file(
    store: Store, store_path: Path, tmp_path: Path
) -> None:
    _write_run(store)
    # The writer still has the file open: a plain copy of the main file alone must hold the run.
    copy = tmp_path / "copy.mfdb"
    copy.write_bytes(store_path.read_bytes())
    con = sqlite3.connect(copy)
    assert con.execute("SELECT status FROM runs").fetchall() == [("successful",)]
    con.close()


def test_missing_file_is_not_created_by_readers(tmp_path: Path) -> None:
    path = tmp_path / "nope.mfdb"
    with pytest.raises(MetaflowNotFound, match="does not exist"):
        Store(path)
    assert not path.exists()


@pytest.mark.parametrize(
    "content, error, message",
    [
        (b"hello, this is a text file\n" * 10, NotAnMfdbError, "not an SQLite database"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), NotAnMfdbError, "not an SQLite database"),
    ],
)
def test_non_sqlite_files_are_refused_untouched(
    tmp_path: Path, content: bytes, error: type, message: str
) -> None:
    path = tmp_path / "bad.mfdb"
    path.write_bytes(content)
    before = _digest(path)
    with pytest.raises(error, match=message) as info:
        Store(path, create=True)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mfdb"]


def test_sqlite_file_that_is_not_an_mfdb(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    before = _digest(path)
    with pytest.raises(NotAnMfdbError, match="SQLite database but not an mfstore file"):
        Store(path, create=True)
    assert _digest(path) == before


def test_truncated_file(store: Store, store_path: Path, tmp_path: Path) -> None:
    for i in range(5):
        _write_run(store, f"F{i}")
    store.close()
    data = store_path.read_bytes()
    cut = tmp_path / "cut.mfdb"
    cut.write_bytes(data[: len(data) // 2])
    before = _digest(cut)
    with pytest.raises(TruncatedFileError, match="truncated"):
        Store(cut, create=True)
    assert _digest(cut) == before


def test_file_from_a_newer_mfstore(store: Store, store_path: Path) -> None:
    store.close()
    con = sqlite3.connect(store_path)
    con.execute(f"PRAGMA user_version = {FORMAT_VERSION + 1}")
    con.commit()
    con.close()
    before = _digest(store_path)
    with pytest.raises(SchemaTooNewError, match=r"newer mfstore .*upgrade mfstore"):
        Store(store_path)
    assert _digest(store_path) == before


def test_header_user_version_offset_matches_sqlite(store: Store, store_path: Path) -> None:
    store.close()
    header = store_path.read_bytes()[:100]
    assert struct.unpack(">i", header[60:64])[0] == FORMAT_VERSION
    assert struct.unpack(">i", header[68:72])[0] == APPLICATION_ID


def test_readonly_store_refuses_writes(store: Store, store_path: Path) -> None:
    _write_run(store)
    store.close()
    ro = Store(store_path, readonly=True)
    assert ro.scalar("SELECT count(*) FROM runs") == 1
    with pytest.raises(StoreReadOnlyError, match="read-only"), ro.write():
        pass
    ro.close()


def test_readonly_when_directory_is_not_writable(
    store: Store, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_run(store)
    store.close()
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if mode == os.W_OK else real_access(p, mode)
    )
    ro = Store(store_path)
    assert ro.readonly
    assert ro.scalar("SELECT count(*) FROM runs") == 1
    ro.close()


def test_write_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.write():
        store.execute("INSERT INTO flows (flow_id, ts_epoch) VALUES ('A', 1)")
        raise RuntimeError("boom")
    assert store.scalar("SELECT count(*) FROM flows") == 0


def test_nested_write_is_a_savepoint(store: Store) -> None:
    with store.write():
        store.execute("INSERT INTO flows (flow_id, ts_epoch) VALUES ('A', 1)")
        with pytest.raises(RuntimeError), store.write():
            store.execute("INSERT INTO flows (flow_id, ts_epoch) VALUES ('B', 1)")
            raise RuntimeError("inner")
    assert [r[0] for r in store.query("SELECT flow_id FROM flows")] == ["A"]


def test_tracer_sees_every_statement(store_path: Path) -> None:
    seen: list[str] = []
    s = Store(store_path, create=True, tracer=lambda sql, params: seen.append(sql))
    s.scalar("SELECT count(*) FROM runs")
    assert any("FROM runs" in q for q in seen)
    s.close()


def test_tracer_block_sees_only_its_statements(store: Store) -> None:
    seen: list[tuple[str, object]] = []
    store.scalar("SELECT 1 FROM flows")
    with store.tracer(lambda sql, params: seen.append((sql, params))):
        store.scalar("SELECT count(*) FROM runs WHERE flow_id = ?", ("F",))
        with store.tracer(lambda sql, params: seen.append(("inner", None))):
            store.scalar("SELECT 2")
    store.scalar("SELECT 3")
    assert seen == [
        ("SELECT count(*) FROM runs WHERE flow_id = ?", ("F",)),
        ("SELECT 2", ()),
        ("inner", None),
    ]


def test_insert_and_change_report_rowid_and_count(store: Store) -> None:
    with store.write():
        store.execute("INSERT INTO flows (flow_id, ts_epoch) VALUES ('A', 1)")
        pk = store.insert("INSERT INTO tagsets (flow_id, digest) VALUES ('A', 'd')")
        assert store.scalar("SELECT tagset_id FROM tagsets WHERE digest = 'd'") == pk
        assert store.change("UPDATE flows SET ts_epoch = 2 WHERE flow_id = 'A'") == 1
        assert store.change("UPDATE flows SET ts_epoch = 2 WHERE flow_id = 'Z'") == 0


def test_columns_of_a_result_with_rows_without_rows_and_without_a_result_set(
    store: Store,
) -> None:
    with store.write():
        store.execute("INSERT INTO flows (flow_id, ts_epoch) VALUES ('A', 1)")
    cursor = store.execute("SELECT flow_id, ts_epoch AS t FROM flows")
    assert store.columns("SELECT flow_id, ts_epoch AS t FROM flows", cursor) == ["flow_id", "t"]
    assert list(cursor) == [("A", 1)]
    empty = "SELECT flow_id AS f FROM flows WHERE 0"
    assert store.columns(empty, store.execute(empty)) == ["f"]
    assert store.columns("PRAGMA user_version = 5") == []
    # prepared, never run: the statement changes nothing
    with store.write():
        sql = "INSERT INTO flows (flow_id, ts_epoch) VALUES ('B', 2) RETURNING flow_id AS made"
        assert store.columns(sql) == ["made"]
    assert store.query("SELECT flow_id FROM flows") == [("A",)]


def test_a_format_older_than_any_migration_is_named_old(store_path: Path) -> None:
    Store(store_path, create=True).close()
    con = sqlite3.connect(store_path)
    con.execute("PRAGMA user_version = 0")
    con.commit()
    con.close()
    with pytest.raises(SchemaTooOldError, match="older than any"):
        Store(store_path)


def test_a_copy_right_after_a_tag_edit_carries_it(
    store: Store, store_path: Path, tmp_path: Path
) -> None:
    w = Writer(store)
    run = w.begin_run("F", user_name="alice", system_tags=["user:alice"])
    w.end_run(run, successful=True)
    w.replace_user_tags(run.run_pk, [], ["reviewed"], user_name="bob")
    copy = tmp_path / "copy.mfdb"
    copy.write_bytes(store_path.read_bytes())  # the writer still has the file open
    con = sqlite3.connect(copy)
    assert con.execute("SELECT tag FROM tagset_tags WHERE is_system = 0").fetchall() == [
        ("reviewed",)
    ]
    assert con.execute("SELECT user_name, added FROM tag_events").fetchall() == [
        ("bob", '["reviewed"]')
    ]
    con.close()

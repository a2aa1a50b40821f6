"""Format migrations on populated files: v1, v2, v3 and v4 histories move to the current format
in one transaction, and every documented view shows exactly what it showed before."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mfstore import migrations, sharing
from mfstore.exception import StoreError
from mfstore.migrations import schema_views
from mfstore.store import FORMAT_VERSION, Store

#: Written by mfstore 0.1.0 (format 2) from tests/sql/fixture.py (fixed clock), plus a code
#: package and a tag edit.
V2_FILE = Path(__file__).parent / "fixtures" / "history_v2.mfdb"
#: The same history written in format 3 (V2_FILE migrated by mfstore's format-3 code).
V3_FILE = Path(__file__).parent / "fixtures" / "history_v3.mfdb"
#: The same history written in format 4 (V3_FILE migrated by mfstore's format-4 code), plus
#: a deployment made by that code: tests/flows/deployed_values_flow.py, `production create`
#: with STAMP=at-create and `--config-value opts "a = 5"` (format 4 kept neither); journal
#: mode DELETE, like the others, so reading it in place leaves nothing beside it.
V4_FILE = Path(__file__).parent / "fixtures" / "history_v4.mfdb"
#: Each format's fixture (format 1: V2_FILE without the views).
FIXTURES = {1: V2_FILE, 2: V2_FILE, 3: V3_FILE, 4: V4_FILE}
#: The documented views (schema.sql's other views give older formats' tables back).
VIEWS = [name for name, _ in schema_views() if name.startswith("mf_")]


def _views(path: Path, columns: dict[str, list[str]] | None = None) -> dict[str, list[tuple]]:
    """Rows of every documented view (only ``columns`` when given), read by stdlib sqlite3."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out = {}
        for view in VIEWS:
            cols = (columns or {}).get(view) or [
                r[1] for r in con.execute(f"PRAGMA table_info({view})")
            ]
            sql = "SELECT {} FROM {}".format(", ".join(cols), view)
            out[view] = sorted(con.execute(sql).fetchall(), key=repr)
        return out
    finally:
        con.close()


def _columns(path: Path) -> dict[str, list[str]]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {v: [r[1] for r in con.execute(f"PRAGMA table_info({v})")] for v in VIEWS}
    finally:
        con.close()


def _old_file(tmp_path: Path, version: int) -> Path:
    path = tmp_path / f"history_v{version}.mfdb"
    shutil.copyfile(FIXTURES[version], path)
    if version == 1:  # format 1 = format 2 without the views
        con = sqlite3.connect(path)
        for view in reversed(VIEWS):
            con.execute(f"DROP VIEW {view}")
        con.execute("PRAGMA user_version = 1")
        con.commit()
        con.close()
    return path


def _rows(path: Path, table: str) -> list[tuple]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
    finally:
        con.close()


def _dump(path: Path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def _user_version(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("PRAGMA user_version").fetchone()[0])
    finally:
        con.close()


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_populated_file_migrates_and_views_are_unchanged(tmp_path: Path, version: int) -> None:
    source = FIXTURES[version]
    assert _user_version(source) == max(version, 2)
    before_cols = _columns(source)
    before = _views(source, before_cols)
    assert sum(len(rows) for rows in before.values()) > 100
    path = _old_file(tmp_path, version)
    Store(path).close()
    assert _user_version(path) == FORMAT_VERSION == 5
    after_cols = _columns(path)
    for view, cols in before_cols.items():  # views only gain columns
        assert after_cols[view][: len(cols)] == cols, view
    assert _views(path, before_cols) == before
    assert sharing.verify(path) == []
    if version == 3:  # format 4's views of format 3's tables give their rows back
        for table in ("artifacts", "metadata_values"):
            assert _rows(path, table) == _rows(source, table)


@pytest.mark.parametrize("version", [2, 3, 4])
def test_migrated_file_reads_like_before_through_the_client(tmp_path: Path, version: int) -> None:
    import mfstore

    path = _old_file(tmp_path, version)
    Store(path).close()  # readers never migrate (`mfstore upgrade` does this)
    mfstore.metadata(str(path))
    try:
        mfstore.namespace(None)
        run = mfstore.Run("TrainFlow/104")
        assert run.data.accuracy == 0.88
        assert run.code is None or run.code.script_name
        task = run["end"].task
        assert task["accuracy"].sha == hashlib.sha1(task["accuracy"]._raw()).hexdigest()
        assert {m.name for m in task.metadata} >= {"attempt-done", "attempt_ok"}
        assert mfstore.Run("TrainFlow/101").code.script_name == "train.py"
        assert "later" in mfstore.Run("TrainFlow/101").tags
    finally:
        mfstore.default_metadata()
        mfstore.namespace(mfstore.default_namespace())


@pytest.mark.parametrize("version", [2, 3, 4])
def test_interrupted_migration_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: int
) -> None:
    path = _old_file(tmp_path, version)
    before = _dump(path)
    # The last step fails: from format 2, after step 3 has already run in the transaction.
    last = migrations.FORMAT_VERSION
    monkeypatch.setitem(
        migrations.MIGRATIONS, last, migrations.MIGRATIONS[last] + "\nSELECT no_such_function();"
    )
    with pytest.raises(StoreError):
        Store(path)
    assert _dump(path) == before
    assert _user_version(path) == version


def test_migrated_file_takes_new_metadata_after_its_own(tmp_path: Path) -> None:
    """Format 4 numbers a task's metadata entries; a task migrated from format 3 keeps its
    numbers, and an entry written later comes after them (the latest wins)."""
    from mfstore.writer import MetadataEntry, TaskRef, Writer

    path = _old_file(tmp_path, 3)
    with Store(path) as store:
        row = store.execute(
            "SELECT t.task_pk, t.step_name, t.task_id, r.run_pk, r.flow_id, r.run_number "
            "FROM tasks t JOIN runs r USING (run_pk) WHERE t.step_name = 'work' LIMIT 1"
        ).fetchone()
        before = store.scalar("SELECT max(metadata_pk) FROM metadata WHERE task_pk = ?", (row[0],))
        assert before is not None
        from mfstore.writer import RunRef

        task = TaskRef(row[0], RunRef(row[3], row[4], row[5]), row[1], row[2])
        Writer(store).add_metadata(
            task, [MetadataEntry("foreach-execution-path", "work:7", ts_epoch=1)]
        )
        after = store.execute(
            "SELECT metadata_pk FROM metadata WHERE task_pk = ? ORDER BY metadata_pk", (row[0],)
        ).fetchall()
        assert after[-1][0] == before + 1
        assert store.scalar("SELECT foreach_index FROM mf_tasks WHERE task_pk = ?", (row[0],)) == 7


def test_deployment_from_format_4_runs_as_before(tmp_path: Path) -> None:
    """Format 5 keeps what `production create` fixed; a deployment made before keeps NULL
    and its runs do what they did: evaluate the default function when they start and use
    the configs' defaults (not the --config-value given to that create)."""
    import mfstore
    from tests.flowfiles import FlowRunner

    runner = FlowRunner(tmp_path)
    shutil.copyfile(V4_FILE, runner.db)
    Store(runner.db).close()
    assert _user_version(runner.db) == FORMAT_VERSION
    assert _rows(runner.db, "deployments")[0][-1] is None  # values_json
    tokens = str(tmp_path / "tokens")
    runner.run(
        "deployed_values_flow.py", "production", "trigger", "--run-id-file", "rid",
        STAMP="later", METAFLOW_TOKEN_HOME=tokens,
    )  # fmt: skip
    mfstore.metadata(str(runner.db))
    try:
        mfstore.namespace(None)
        run = mfstore.Run("DeployedValuesFlow/" + (tmp_path / "rid").read_text())
        assert run.data.seen == {"stamp": "later", "lr": 0.1, "a": 1}
        assert any(t.startswith("production:") for t in run.system_tags)
    finally:
        mfstore.default_metadata()
        mfstore.namespace(mfstore.default_namespace())


def test_schema_sql_is_parsed_once_per_process(tmp_path: Path) -> None:
    """Creating a file, migrating a format-1 one (its ``@name`` lines, its views dropped and
    rebuilt) and the full schema comparison all use one parse of schema.sql (in a fresh
    process, with the statement splitter counted)."""
    old = _old_file(tmp_path, 1)
    script = f"""
from mfstore import migrations, schema
from mfstore.store import Store

parses = []
split = migrations._statements
migrations._statements = lambda text: parses.append(text) or split(text)
Store({str(tmp_path / "new.mfdb")!r}, create=True).close()
with Store({str(old)!r}) as store:
    assert store.scalar("PRAGMA user_version") == migrations.FORMAT_VERSION
    assert schema.problems(store.query("SELECT type, name, tbl_name, sql FROM sqlite_master")) == []
migrations.schema_views(), migrations.schema_statement("runs")
print(len(parses))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["1"]

"""Format migrations on populated files: v1 and v2 histories move to the current format in
one transaction, and every documented view shows exactly what it showed before."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from mfstore import migrations, sharing
from mfstore.exception import StoreError
from mfstore.migrations import schema_views
from mfstore.store import FORMAT_VERSION, Store

#: Written by mfstore 0.1.0 (format 2) from tests/sql/fixture.py (fixed clock), plus a code
#: package and a tag edit.
V2_FILE = Path(__file__).parent / "fixtures" / "history_v2.mfdb"
VIEWS = [name for name, _ in schema_views()]


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
    shutil.copyfile(V2_FILE, path)
    if version == 1:  # format 1 = format 2 without the views
        con = sqlite3.connect(path)
        for view in reversed(VIEWS):
            con.execute(f"DROP VIEW {view}")
        con.execute("PRAGMA user_version = 1")
        con.commit()
        con.close()
    return path


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


@pytest.mark.parametrize("version", [1, 2])
def test_populated_file_migrates_and_views_are_unchanged(tmp_path: Path, version: int) -> None:
    before_cols = _columns(V2_FILE)
    before = _views(V2_FILE, before_cols)
    assert sum(len(rows) for rows in before.values()) > 100
    path = _old_file(tmp_path, version)
    Store(path).close()
    assert _user_version(path) == FORMAT_VERSION == 3
    after_cols = _columns(path)
    for view, cols in before_cols.items():  # views only gain columns
        assert after_cols[view][: len(cols)] == cols, view
    assert _views(path, before_cols) == before
    assert sharing.verify(path) == []


def test_migrated_file_reads_like_before_through_the_client(tmp_path: Path) -> None:
    import mfstore

    path = _old_file(tmp_path, 2)
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


def test_interrupted_migration_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _old_file(tmp_path, 2)
    before = _dump(path)
    monkeypatch.setitem(
        migrations.MIGRATIONS, 3, migrations.MIGRATIONS[3] + "\nSELECT no_such_function();"
    )
    with pytest.raises(StoreError):
        Store(path)
    assert _dump(path) == before
    assert _user_version(path) == 2

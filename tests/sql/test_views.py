"""The mf_* views: migration from format 1, SQLite 3.40 compatibility, typed values, indexed tag queries."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import apsw
import pytest

from mfstore.migrations import APPLICATION_ID, FORMAT_VERSION, schema_views
from mfstore.store import Store

from .test_cookbook import cookbook

V1 = Path(__file__).parent / "fixtures" / "schema_v1.sql"
VIEWS = [name for name, _ in schema_views()]


def _master(path: Path) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return sorted(
            con.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            )
        )
    finally:
        con.close()


def _make_v1(path: Path) -> None:
    con = apsw.Connection(str(path))
    con.execute(V1.read_text("utf-8"))
    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    con.execute("PRAGMA user_version = 1")
    con.close()


def test_migrated_v1_file_equals_fresh_file(tmp_path: Path) -> None:
    old, fresh = tmp_path / "old.mfdb", tmp_path / "fresh.mfdb"
    _make_v1(old)
    Store(old).close()
    Store(fresh, create=True).close()
    assert _master(old) == _master(fresh)
    con = sqlite3.connect(old)
    assert con.execute("PRAGMA user_version").fetchone()[0] == FORMAT_VERSION == 5
    con.close()


def test_migration_refuses_a_planted_view(tmp_path: Path) -> None:
    """A view schema.sql does not create is untrusted (issue 12): neither kept nor migrated."""
    from mfstore.exception import UntrustedSchemaError

    old = tmp_path / "old.mfdb"
    _make_v1(old)
    con = apsw.Connection(str(old))
    con.execute("CREATE VIEW my_view AS SELECT flow_id FROM flows")
    con.close()
    before = old.read_bytes()
    with pytest.raises(UntrustedSchemaError, match="view 'my_view'"):
        Store(old).close()
    assert old.read_bytes() == before


def test_views_are_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "sql.md").read_text("utf-8")
    for name in VIEWS:
        assert f"`{name}`" in doc


@pytest.mark.parametrize("view", VIEWS)
def test_view_readable_by_stdlib_sqlite3(view: str, fixture_db: Path) -> None:
    con = sqlite3.connect(fixture_db)
    try:
        con.execute(f"SELECT * FROM {view}").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("view", VIEWS)
def test_view_readable_by_stock_shell(view: str, fixture_db: Path) -> None:
    shell = shutil.which("sqlite3")
    assert shell is not None, (
        "the stock sqlite3 shell is a test requirement (apt-get install sqlite3)"
    )
    subprocess.run(
        [shell, str(fixture_db), f"SELECT count(*) FROM {view}"], check=True, capture_output=True
    )


def test_stdlib_sqlite_is_old_enough_to_matter() -> None:
    # The views must work on 3.38+ (json1 built in); CI's stdlib sqlite3 is 3.40.
    assert sqlite3.sqlite_version_info >= (3, 38)


def test_artifact_value_sorts_numbers_as_numbers(fixture_db: Path) -> None:
    con = sqlite3.connect(fixture_db)
    rows = con.execute(
        "SELECT run_id, value FROM mf_artifacts WHERE flow='TrainFlow' AND name='accuracy' ORDER BY value DESC"
    ).fetchall()
    con.close()
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)
    assert rows[0] == ("102", 0.93) and all(isinstance(v, float) for _, v in rows)


def test_non_plain_values_are_null(fixture_db: Path) -> None:
    con = sqlite3.connect(fixture_db)
    rows = con.execute(
        "SELECT type, value, value_json FROM mf_artifacts WHERE name = 'model'"
    ).fetchall()
    con.close()
    assert rows and all(r == ("builtins.set", None, None) for r in rows)


def test_foreach_index(fixture_db: Path) -> None:
    con = sqlite3.connect(fixture_db)
    rows = con.execute(
        "SELECT step, foreach_index FROM mf_tasks WHERE flow='ForeachFlow' AND run_id='201' ORDER BY task_pk"
    ).fetchall()
    con.close()
    assert rows == [
        ("start", None),
        ("work", 0),
        ("work", 1),
        ("work", 2),
        ("join", None),
        ("end", None),
    ]


def test_statuses(fixture_db: Path) -> None:
    con = sqlite3.connect(fixture_db)
    q = "SELECT status FROM %s WHERE flow='TrainFlow' AND run_id='103' AND step='train'"
    assert con.execute(q % "mf_steps").fetchone() == ("failed",)
    assert con.execute(q % "mf_tasks").fetchone() == ("failed",)
    assert con.execute((q % "mf_attempts") + " ORDER BY attempt").fetchall() == [
        ("failed",),
        ("failed",),
    ]
    assert con.execute(
        "SELECT status, finished_at, duration_s FROM mf_runs WHERE run_id='202'"
    ).fetchone() == ("running", None, None)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",
        con.execute("SELECT created_at FROM mf_runs LIMIT 1").fetchone()[0],
    )
    con.close()


@pytest.mark.parametrize("engine", ["stdlib", "apsw"])
def test_namespace_tag_query_uses_indexes(engine: str, fixture_db: Path) -> None:
    sql = "EXPLAIN QUERY PLAN " + cookbook()["runs_in_namespace_with_tags"]
    if engine == "stdlib":
        con = sqlite3.connect(fixture_db)
        plan = [r[-1] for r in con.execute(sql)]
        con.close()
    else:
        with Store(fixture_db, readonly=True) as store:
            plan = [r[-1] for r in store.query(sql)]
    text = "\n".join(plan)
    assert "runs_by_tagset (flow_id=? AND tagset_id=?)" in text, text
    assert not re.search(r"\bSCAN (r|runs)\b", text), text
    assert "runs_by_time" not in text, text

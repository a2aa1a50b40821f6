"""Issue 12, class 1: nothing planted in a file runs.

Each hostile file is a real mfstore file edited with a stock SQLite connection, the way
an attacker would: a trigger, an extra or changed view, an index on an expression, a
virtual table. Opening it (Client API, every browsing command) is refused with one line
naming the object and how to get a clean copy; the file is unchanged; ``mfstore export``
gives a clean copy without the object.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import apsw
import pytest

from .conftest import build_file, cli, digest, one_line_error

#: (what the error names, SQL the attacker runs)
PLANTS = {
    "trigger": (
        "trigger 'steal'",
        "CREATE TRIGGER steal AFTER INSERT ON tag_events BEGIN "
        "UPDATE runs SET user_name = 'mallory'; END",
    ),
    "extra view": ("view 'innocent'", "CREATE VIEW innocent AS SELECT 1 AS x"),
    "changed view": (
        "view 'mf_runs'",
        "DROP VIEW mf_runs; CREATE VIEW mf_runs AS SELECT 'YourFlow' AS flow, '1' AS run_id",
    ),
    "expression index": ("index 'by_len'", "CREATE INDEX by_len ON runs (length(flow_id) * 2)"),
    "changed index": (
        "index 'runs_by_time'",
        "DROP INDEX runs_by_time; CREATE INDEX runs_by_time ON runs (flow_id, abs(ts_epoch))",
    ),
    "virtual table": ("virtual table 'notes'", "CREATE VIRTUAL TABLE notes USING fts5(body)"),
    "extra table": ("table 'payload'", "CREATE TABLE payload (x)"),
}


def _plant(path: Path, sql: str) -> None:
    con = sqlite3.connect(path)
    con.executescript(sql)
    con.commit()
    con.close()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


@pytest.fixture(params=sorted(PLANTS))
def planted(request, tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "teammate.mfdb"
    build_file(path)
    named, sql = PLANTS[request.param]
    _plant(path, sql)
    return path, named


def test_store_refuses_with_one_line_naming_the_object(planted) -> None:
    from mfstore.exception import UntrustedSchemaError
    from mfstore.store import Store

    path, named = planted
    before = digest(path)
    for kwargs in ({"reader": True}, {}):
        with pytest.raises(UntrustedSchemaError) as info:
            Store(path, **kwargs)
        msg = str(info.value)
        assert named in msg and "\n" not in msg
        assert f"mfstore export {path}" in msg
    assert digest(path) == before


def test_client_and_every_browsing_command_refuse(planted, client_db) -> None:
    import mfstore
    from mfstore.exception import UntrustedSchemaError

    path, named = planted
    before = digest(path)
    client_db(path)
    with pytest.raises(UntrustedSchemaError, match=named):
        list(mfstore.Metaflow())
    with pytest.raises(UntrustedSchemaError, match=named):
        mfstore.Flow("SharedFlow")
    for args in (
        ["flows", "--mfdb", str(path)],
        ["runs", "SharedFlow", "--mfdb", str(path)],
        ["show", "SharedFlow", "--mfdb", str(path)],
        ["logs", "SharedFlow/1/start/1", "--mfdb", str(path)],
        ["sql", str(path), "SELECT * FROM mf_runs"],
        ["stats", str(path)],
        ["merge", str(path), "--into", str(path.with_name("mine.mfdb"))],
    ):
        line = one_line_error(cli(*args))
        assert named in line, (args, line)
    assert digest(path) == before
    assert not path.with_name("mine.mfdb").exists()


def test_export_gives_a_clean_copy_without_the_object(planted, tmp_path: Path) -> None:
    from mfstore.store import Store

    path, named = planted
    before = digest(path)
    clean = tmp_path / "clean.mfdb"
    result = cli("export", str(path), str(clean))
    assert result.exit_code == 0, result.output
    assert digest(path) == before
    store = Store(clean, reader=True)  # passes the schema check
    try:
        names = {n for (n,) in store.query("SELECT name FROM sqlite_master")}
        assert named.split("'")[1] not in names or named.split("'")[1].startswith(("mf_", "runs_"))
        assert store.scalar("SELECT count(*) FROM runs") == 1
    finally:
        store.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("clean")) == [
        "clean.mfdb"
    ]


def test_a_clean_file_passes_and_the_check_follows_schema_sql(tmp_path: Path) -> None:
    """The reference is schema.sql itself (no list of names in the code)."""
    from mfstore import schema
    from mfstore.migrations import FORMAT_VERSION, schema_objects
    from mfstore.store import Store

    store = Store(":memory:")
    rows = store.query("SELECT type, name, tbl_name, sql FROM sqlite_master")
    assert schema.problems(rows) == []
    expected = schema_objects()
    assert {n for _, n in expected} == {
        n for _, n, _, sql in rows if sql is not None and not n.startswith("sqlite_")
    }
    # The per-open check (SQLite builds the schema's text in one query) finds a new file
    # on disk as schema.sql creates it: the recorded digest holds, no full comparison.
    as_stored = {(k, n): sql for k, n, _, sql in rows if (k, n) in expected}
    assert as_stored == expected
    store.close()
    path = tmp_path / "new.mfdb"
    Store(path, create=True).close()
    con = apsw.Connection(str(path))
    ((n_objects, text),) = list(con.execute(schema.SCHEMA_TEXT_SQL))
    assert n_objects == len(rows)
    assert (FORMAT_VERSION, schema.digest(text)) == schema.AS_CREATED_DIGEST
    assert schema.problems(con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")) == []
    con.close()


def _schema_text(rows: list[tuple[str | None, str | None, str | None]]) -> bytes:
    """SCHEMA_TEXT_SQL's text of these ``(type, name, sql)`` rows."""
    from mfstore import schema

    con = apsw.Connection(":memory:")
    con.execute("CREATE TABLE rows (type, name, tbl_name, rootpage, sql)")
    for kind, name, sql in rows:
        con.execute("INSERT INTO rows VALUES (?, ?, '', 0, ?)", (kind, name, sql))
    sql = schema.SCHEMA_TEXT_SQL.replace("FROM sqlite_master", "FROM rows")
    ((_count, text),) = con.execute(sql)
    return bytes(text)


def test_the_schema_text_is_unambiguous_and_hides_no_row() -> None:
    """Every field is length-prefixed: a row whose text embeds another row's encoding does
    not pass for the two rows; a row of NULLs is encoded, not dropped."""
    two = _schema_text([("view", "v", "CREATE VIEW v AS SELECT 1"), ("trigger", "t", None)])
    one = _schema_text([("view", "v", "CREATE VIEW v AS SELECT 17:trigger1:t-")])
    assert two != one
    assert _schema_text([("view", "v", "x")]) != _schema_text([("view", "v", "x"), (None,) * 3])
    assert _schema_text([(None,) * 3]) == b"---"


def test_a_vacuumed_clean_file_is_known_by_its_sorted_text(tmp_path: Path, monkeypatch) -> None:
    """VACUUM reorders sqlite_master (as a migration does): the per-open text differs from
    schema.sql's order, the sorted text is a new file's, and the file opens without the
    full comparison; a planted object in such a file is still refused."""
    from mfstore import schema
    from mfstore.exception import UntrustedSchemaError
    from mfstore.store import Store

    path = tmp_path / "v.mfdb"
    Store(path, create=True).close()
    con = apsw.Connection(str(path))
    before = [r[1] for r in con.execute("SELECT type, name FROM sqlite_master")]
    con.execute("VACUUM")
    after = [r[1] for r in con.execute("SELECT type, name FROM sqlite_master")]
    con.close()
    assert sorted(before) == sorted(after) and before != after

    def full_comparison(*args: object, **kwargs: object) -> list[str]:
        raise AssertionError("the full comparison ran")

    with monkeypatch.context() as patch:
        patch.setattr(schema, "problems", full_comparison)
        store = Store(path, reader=True)
    try:
        text = store.query(schema.SCHEMA_TEXT_SQL)[0][1]
        assert schema.is_known_good(text)
        assert store.scalar("SELECT count(*) FROM runs") == 0
    finally:
        store.close()
    con = apsw.Connection(str(path))
    con.execute("CREATE TRIGGER steal AFTER INSERT ON runs BEGIN SELECT 1; END")
    con.close()
    with pytest.raises(UntrustedSchemaError, match="trigger 'steal'"):
        Store(path, reader=True)


def test_a_schema_changed_between_two_opens_in_one_process_is_refused(tmp_path: Path) -> None:
    """No per-process cache lets a file that passed once through after it changed."""
    from mfstore.exception import UntrustedSchemaError
    from mfstore.store import Store

    path = tmp_path / "teammate.mfdb"
    build_file(path)
    Store(path, reader=True).close()
    Store(path).close()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    for named, sql in (PLANTS["trigger"], PLANTS["changed view"]):
        copy = tmp_path / "copy.mfdb"
        copy.write_bytes(path.read_bytes())
        Store(copy, reader=True).close()
        _plant(copy, sql)
        for kwargs in ({"reader": True}, {}):
            with pytest.raises(UntrustedSchemaError, match=named):
                Store(copy, **kwargs)
    # Same file, same schema_version, other schema: bytes replaced in place (what `cp`
    # over a file does), so neither the path nor the inode changes.
    planted = tmp_path / "planted.mfdb"
    planted.write_bytes(path.read_bytes())
    _plant(planted, PLANTS["extra view"][1])
    con = sqlite3.connect(path)
    version = con.execute("PRAGMA schema_version").fetchone()[0]
    con.close()
    con = sqlite3.connect(planted)
    con.execute("PRAGMA writable_schema = ON")  # stock sqlite3 lets the attacker forge it
    con.execute(f"PRAGMA schema_version = {version}")
    con.close()
    for suffix in ("-wal", "-shm"):
        Path(str(planted) + suffix).unlink(missing_ok=True)
    Store(path, reader=True).close()
    inode = path.stat().st_ino
    with open(path, "r+b") as fh:
        fh.write(planted.read_bytes())
        fh.truncate()
    assert path.stat().st_ino == inode
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert con.execute("PRAGMA schema_version").fetchone()[0] == version
    con.close()
    with pytest.raises(UntrustedSchemaError, match="view 'innocent'"):
        Store(path, reader=True)


def test_connections_are_hardened(tmp_path: Path) -> None:
    import apsw

    from mfstore.store import Store

    path = tmp_path / "a.mfdb"
    build_file(path)
    for store in (Store(path, reader=True), Store(path)):
        conn = store.conn
        assert conn.config(apsw.SQLITE_DBCONFIG_DEFENSIVE, -1) == 1
        assert conn.config(apsw.SQLITE_DBCONFIG_TRUSTED_SCHEMA, -1) == 0
        assert conn.config(apsw.SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, -1) == 0
        assert conn.config(apsw.SQLITE_DBCONFIG_ENABLE_TRIGGER, -1) == 0
        with pytest.raises(apsw.Error):
            conn.load_extension("/nonexistent/libevil.so")
        store.close()


def test_endless_query_stops_on_time_limit_and_ctrl_c(tmp_path: Path) -> None:
    import os
    import signal
    import threading

    from mfstore.exception import QueryInterrupted
    from mfstore.store import Store

    path = tmp_path / "a.mfdb"
    build_file(path)
    endless = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    )
    store = Store(path, reader=True)
    try:
        with store.time_limit(0.3), pytest.raises(QueryInterrupted):
            store.query(endless)
        running = threading.Event()
        original = store._progress

        def progress() -> bool:
            running.set()  # the statement is stepping: Ctrl-C now lands inside it
            return original()

        store.conn.set_progress_handler(progress, 20_000)

        def press_ctrl_c() -> None:
            running.wait(30)
            os.kill(os.getpid(), signal.SIGINT)

        presser = threading.Thread(target=press_ctrl_c)
        presser.start()
        # The time limit is only a backstop: were Ctrl-C lost, the test fails, never hangs.
        with store.time_limit(120), pytest.raises(KeyboardInterrupt):
            store.query(endless)
        presser.join()
        assert store.scalar("SELECT count(*) FROM runs") == 1  # still usable
    finally:
        store.close()


def test_sql_timeout_and_default(tmp_path: Path) -> None:
    path = tmp_path / "a.mfdb"
    build_file(path)
    endless = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    )
    line = one_line_error(cli("sql", "--timeout", "0.5", str(path), endless))
    assert "stopped" in line and "time limit" in line
    assert "default: 30" in cli("sql", "--help").output.replace("\n", " ")


@pytest.mark.parametrize(
    "statement",
    [
        "VACUUM INTO '{dir}/stolen.mfdb'",
        "ATTACH '{dir}/other.db' AS o",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA user_version = 1",
        "INSERT INTO flows VALUES ('X', 1)",
        "CREATE TEMP TABLE t (x)",
        "BEGIN IMMEDIATE",
        "SELECT load_extension('/nonexistent/libevil.so')",
    ],
)
def test_sql_refuses_anything_that_writes(statement: str, tmp_path: Path) -> None:
    path = tmp_path / "a.mfdb"
    build_file(path)
    before = digest(path)
    names = {p.name for p in tmp_path.iterdir()}
    one_line_error(cli("sql", str(path), statement.format(dir=tmp_path)))
    assert digest(path) == before
    assert {p.name for p in tmp_path.iterdir()} == names


def test_sql_still_reads_and_introspects(tmp_path: Path) -> None:
    path = tmp_path / "a.mfdb"
    build_file(path)
    for statement in (
        "SELECT flow, user FROM mf_runs",
        "PRAGMA table_info(runs)",
        "SELECT name FROM pragma_table_info('runs')",
        "PRAGMA user_version",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 3) SELECT * FROM c",
    ):
        result = cli("sql", "--csv", str(path), statement)
        assert result.exit_code == 0, (statement, result.output)

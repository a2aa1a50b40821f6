"""Bad files at user level (issue 7): through the Client API and the CLI, each gives a
one-line error naming the file and the problem, and the file is left byte-for-byte
unchanged with no -wal/-shm beside it."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import mfstore_cli

from .conftest import file_sha


def _good(path: Path) -> Path:
    from mfstore.artifacts import prepare_artifacts
    from mfstore.store import Store
    from mfstore.writer import Writer

    with Store(path, create=True) as store:
        w = Writer(store)
        run = w.begin_run("BadFlow", user_name="tester", system_tags=["user:tester"])
        task = w.add_task(run, "end")
        w.begin_attempt(task, 0)
        w.end_attempt(
            task,
            0,
            artifacts=prepare_artifacts({"x": list(range(5000))}),
            task_ok=True,
            success=True,
        )
        w.end_run(run, successful=True)
        for _ in range(30):  # enough pages that truncation is visible
            w.begin_run("BadFlow", user_name="tester", user_tags=["t" * 400])
        store.checkpoint()
    for extra in ("-wal", "-shm"):
        if os.path.exists(str(path) + extra):
            os.remove(str(path) + extra)
    return path


def not_sqlite(p: Path) -> str:
    p.write_bytes(b"col1,col2\n1,2\n" * 100)
    return "not an SQLite database"


def sqlite_not_mfdb(p: Path) -> str:
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    return "not an mfstore file"


def truncated(p: Path) -> str:
    data = _good(p).read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return "truncated"


def newer_format(p: Path) -> str:
    _good(p)
    con = sqlite3.connect(p)
    con.execute("PRAGMA user_version = 99")
    con.close()
    return "newer mfstore"


BAD_FILES: dict[str, Callable[[Path], str]] = {
    "not_sqlite": not_sqlite,
    "sqlite_not_mfdb": sqlite_not_mfdb,
    "truncated": truncated,
    "newer_format": newer_format,
}


def _assert_untouched(path: Path, sha: str) -> None:
    assert file_sha(path) == sha
    assert not os.path.exists(str(path) + "-wal") and not os.path.exists(str(path) + "-shm")


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_file_through_client_api(kind: str, tmp_path: Path, client_db) -> None:
    import mfstore
    from mfstore.exception import StoreError

    path = tmp_path / "bad.mfdb"
    problem = BAD_FILES[kind](path)
    sha = file_sha(path)
    client_db(path)
    for call in (lambda: mfstore.Flow("BadFlow"), lambda: list(mfstore.Metaflow())):
        with pytest.raises(StoreError) as info:
            call()
        message = str(info.value)
        assert "\n" not in message and str(path) in message and problem in message, message
    _assert_untouched(path, sha)


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
@pytest.mark.parametrize("command", ["flows", "sql", "verify"])
def test_bad_file_through_cli(kind: str, command: str, tmp_path: Path) -> None:
    from mfstore.cli import cli

    if command not in cli.commands:
        pytest.fail(f"mfstore {command} is not registered")
    path = tmp_path / "bad.mfdb"
    problem = BAD_FILES[kind](path)
    sha = file_sha(path)
    args = {
        "flows": ["flows", "--mfdb", str(path)],
        "sql": ["sql", str(path), "SELECT 1"],
        "verify": ["verify", str(path)],
    }
    result = mfstore_cli(*args[command])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert any(str(path) in line and problem in line for line in lines), result.output
    if command != "verify":
        assert len(lines) == 1, result.output
    _assert_untouched(path, sha)


def test_damaged_blob_names_the_artifact(tmp_path: Path, client_db) -> None:
    import mfstore
    from mfstore.exception import MetaflowDataCorruption

    path = _good(tmp_path / "blob.mfdb")
    con = sqlite3.connect(path)
    (bid,) = con.execute("SELECT blob_id FROM artifacts WHERE name = 'x'").fetchone()
    data = con.execute("SELECT data FROM blobs WHERE blob_id = ?", (bid,)).fetchone()[0]
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF
    con.execute("UPDATE blobs SET data = ? WHERE blob_id = ?", (bytes(damaged), bid))
    con.commit()
    con.close()
    for extra in ("-wal", "-shm"):
        if os.path.exists(str(path) + extra):
            os.remove(str(path) + extra)
    before = file_sha(path)
    client_db(path)
    run = mfstore.Flow("BadFlow").latest_successful_run
    task = mfstore.Task(f"{run.pathspec}/end/1")
    assert task.successful  # listing works without reading the value
    for load in (lambda: task["x"].data, lambda: task["x"].load_safe()):
        with pytest.raises(MetaflowDataCorruption) as info:
            load()
        message = str(info.value)
        assert "\n" not in message and f"{run.pathspec}/end/1/x" in message and str(path) in message
    from mfstore import provider

    provider.reset()
    assert file_sha(path) == before


def test_header_ahead_of_length_is_truncation_only_when_nobody_writes(tmp_path: Path) -> None:
    """A checkpoint in another process writes page 1 before extending the file: while
    a -wal exists the header is re-read, without one the short file is refused."""
    from mfstore.exception import TruncatedFileError
    from mfstore.store.checks import check_header

    path = _good(tmp_path / "live.mfdb")
    data = path.read_bytes()
    path.write_bytes(data[:-4096])
    with pytest.raises(TruncatedFileError):
        check_header(path)
    Path(str(path) + "-wal").write_bytes(b"")
    check_header(path)  # in use: no error after settling, SQLite judges it

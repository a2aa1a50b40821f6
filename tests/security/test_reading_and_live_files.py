"""Issue 12, classes 6 and 7: reading never changes a file; commands on live files."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from .conftest import build_file, cli, digest, one_line_error

V1 = Path(__file__).resolve().parents[1] / "sql" / "fixtures" / "schema_v1.sql"


def _files_beside(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name))


def test_reading_leaves_no_trace(tmp_path: Path, client_db) -> None:
    """Client API and every reading command: same bytes, same journal mode, no -wal/-shm."""
    import mfstore

    path = tmp_path / "received.mfdb"
    build_file(path, runs=2)
    before = digest(path)
    assert _files_beside(path) == ["received.mfdb"]
    client_db(path)
    run = mfstore.Flow("SharedFlow").latest_run
    assert run.successful and [s.id for s in run] and run["end"].task.data.x == 1
    assert run["end"].task.index is None and run["end"].task.exception is None
    assert [s.id for s in run["end"].parent_steps] == ["start"]
    for args in (
        ["flows", "--mfdb", str(path)],
        ["runs", "SharedFlow", "--mfdb", str(path)],
        ["show", f"SharedFlow/{run.id}", "--mfdb", str(path)],
        ["logs", f"SharedFlow/{run.id}/end", "--mfdb", str(path)],
        ["sql", str(path), "SELECT count(*) FROM mf_runs"],
        ["verify", "--mfdb", str(path)],
        ["stats", "--mfdb", str(path)],
    ):
        result = cli(*args)
        assert result.exit_code == 0, (args, result.output)
    from mfstore import provider

    provider.reset()  # the Client's reading connection closes (as at exit)
    assert _files_beside(path) == ["received.mfdb"]
    assert digest(path) == before


def test_a_rollback_journal_file_is_not_switched_to_wal(tmp_path: Path) -> None:
    path = tmp_path / "plain.mfdb"
    build_file(path)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode = DELETE")
    con.close()
    before = digest(path)
    assert cli("runs", "SharedFlow", "--mfdb", str(path)).exit_code == 0
    assert digest(path) == before
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    con.close()


def test_a_zero_byte_file_is_refused_not_initialised(tmp_path: Path) -> None:
    from mfstore.exception import NotAnMfdbError
    from mfstore.store import Store

    path = tmp_path / "empty.mfdb"
    path.touch()
    for kwargs in ({}, {"create": True}, {"reader": True}):
        with pytest.raises(NotAnMfdbError, match="empty"):
            Store(path, **kwargs)
    assert path.stat().st_size == 0
    assert "empty" in one_line_error(cli("runs", "X", "--mfdb", str(path)))


def test_an_older_file_is_not_migrated_by_reading_only_by_upgrade(tmp_path: Path) -> None:
    import apsw

    from mfstore.exception import NeedsUpgradeError
    from mfstore.migrations import APPLICATION_ID, FORMAT_VERSION
    from mfstore.store import Store

    path = tmp_path / "old.mfdb"
    con = apsw.Connection(str(path))
    con.execute(V1.read_text("utf-8"))
    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    con.execute("PRAGMA user_version = 1")
    con.close()
    before = digest(path)
    with pytest.raises(NeedsUpgradeError, match="mfstore upgrade"):
        Store(path, reader=True)
    assert "mfstore upgrade" in one_line_error(cli("flows", "--mfdb", str(path)))
    verify = cli("verify", "--mfdb", str(path))  # (the file's one problem, then the count)
    assert verify.exit_code == 1 and "run `mfstore upgrade" in verify.output
    assert verify.output.splitlines()[-1] == f"Error: {path}: 1 problem found"
    assert digest(path) == before
    result = cli("upgrade", str(path))
    assert result.exit_code == 0 and f"1 -> {FORMAT_VERSION}" in result.output
    Store(path, reader=True).close()
    assert "already" in cli("upgrade", str(path)).output


def _running_file(path: Path, idle_seconds: int) -> str:
    from mfstore.store import Store
    from mfstore.writer import Writer

    with Store(path, create=True) as store:
        w = Writer(store)
        run = w.begin_run("LiveFlow", user_name="me", system_tags=["user:me"])
        task = w.add_task(run, "start")
        w.begin_attempt(task, 0)
    if idle_seconds:
        old = int(time.time() * 1000) - idle_seconds * 1000
        con = sqlite3.connect(path)
        con.execute(f"UPDATE runs SET ts_epoch = {old}")
        con.execute(f"UPDATE attempts SET started_at = {old}")
        con.commit()
        con.close()
    return run.pathspec


def test_delete_refuses_a_running_run_and_force_only_when_its_runtime_is_gone(
    tmp_path: Path,
) -> None:
    live = tmp_path / "live.mfdb"
    pathspec = _running_file(live, idle_seconds=0)
    shutil.copy(live, tmp_path / "copy.mfdb")
    before = digest(live)
    line = one_line_error(cli("delete", pathspec, "--mfdb", str(live), "--yes"))
    assert "still running" in line and "--force" in line and pathspec in line
    line = one_line_error(cli("delete", pathspec, "--mfdb", str(live), "--yes", "--force"))
    assert "may still be" in line
    assert digest(live) == before

    gone = tmp_path / "gone.mfdb"
    pathspec = _running_file(gone, idle_seconds=3600)
    assert "still running" in one_line_error(cli("delete", pathspec, "--mfdb", str(gone), "--yes"))
    result = cli("delete", pathspec, "--mfdb", str(gone), "--yes", "--force")
    assert result.exit_code == 0, result.output
    assert "deleted 1 runs" in result.output


def test_temp_files_of_a_killed_snapshot_or_export_are_removed_once_old(tmp_path: Path) -> None:
    """Snapshot and export make their file as every new file is made (store.publish): the
    next one removes a killed one's temporary file (and sidecars) once nothing was
    written to it for STALE_SECONDS, and keeps one written recently (another process's,
    maybe on another host, still at work)."""
    import os

    from mfstore.store import publish

    src = tmp_path / "src.mfdb"
    build_file(src)
    old = time.time() - publish.STALE_SECONDS - 60
    for kind, args in (("snapshot", ["snapshot", str(src)]), ("export", ["export", str(src)])):
        dst = tmp_path / f"{kind}.mfdb"
        killed, live = publish.temp_name(dst), publish.temp_name(dst)
        left = [Path(f"{killed}{s}") for s in ("", "-wal", "-shm")]
        for p in left:
            p.write_bytes(b"half written")
            os.utime(p, (old, old))
        live.write_bytes(b"being written")
        os.utime(live, (old, old))
        Path(f"{live}-wal").write_bytes(b"written just now")
        result = cli(*args, str(dst))
        assert result.exit_code == 0, result.output
        assert not any(p.exists() for p in left)
        assert sorted(p.name for p in tmp_path.iterdir() if dst.name in p.name) == sorted(
            [dst.name, live.name, f"{live.name}-wal"]
        )


def test_a_run_whose_end_cannot_be_folded_in_says_so(tmp_path: Path) -> None:
    """Another program holds a read snapshot, so the end-of-run checkpoint cannot finish:
    the run's last line says to copy with `mfstore snapshot`, never silently."""
    import os
    import subprocess
    import sys

    flow = tmp_path / "hello_flow.py"
    flow.write_text(
        "from mfstore import FlowSpec, step\n\n\n"
        "class HelloFlow(FlowSpec):\n"
        "    @step\n    def start(self):\n        self.x = 1\n        self.next(self.end)\n\n"
        "    @step\n    def end(self):\n        pass\n\n\n"
        "if __name__ == '__main__':\n    HelloFlow()\n"
    )
    db = tmp_path / "metaflow.mfdb"
    env = dict(os.environ, METAFLOW_USER="tester", MFSTORE_DB=str(db))
    first = subprocess.run(
        [sys.executable, str(flow), "run"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "c.execute('BEGIN'); c.execute('SELECT count(*) FROM runs').fetchall()\n"
            "print('holding', flush=True); time.sleep(120)\n",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        second = subprocess.run(
            [sys.executable, str(flow), "run"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode == 0, second.stderr
    # The note is the last line of the run's messages (stderr, after the task output).
    last = second.stderr.strip().splitlines()[-1]
    assert "mfstore snapshot" in last and "write-ahead log" in last, second.stderr

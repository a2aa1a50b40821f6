"""Issue 12, class 7: a full disk, command by command.

No root and no real full disk: each command runs in a child process whose largest file
size is limited (``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored), so every write that
would grow a file past the limit fails with ``EFBIG`` -- the main file, its -wal and
-shm, temporary and destination files alike, as on a full disk. Each command must stop
with one line from ``mfstore.exception`` saying the disk is full, naming the file it
could not write and what was kept; it leaves no temporary file; the file stays readable
with everything committed before; and the same command succeeds once there is room.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .conftest import build_file, digest

pytestmark = pytest.mark.skipif(
    not hasattr(resource, "RLIMIT_FSIZE"), reason="needs RLIMIT_FSIZE (POSIX)"
)

_CLI = "import sys; from mfstore.cli import main; sys.argv[0] = 'mfstore'; main()"


def _limit(max_bytes: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, resource.RLIM_INFINITY))

    return preexec


def run(
    argv: list[str], *, limit: int | None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "METAFLOW_USER": "tester", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("MFSTORE_DB", None)
    return subprocess.run(
        argv,
        preexec_fn=_limit(limit) if limit is not None else None,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def mfstore(*args: str, limit: int | None) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-c", _CLI, *args], limit=limit)


def full_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exactly one error line saying the disk is full."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("Error: ") and "the disk is full" in line, line
    assert "Traceback" not in result.stderr + result.stdout
    return line


def runs_in(path: Path) -> list[str]:
    """Pathspecs of the runs a reader sees (the file must open and pass integrity_check)."""
    from mfstore.store import Store

    store = Store(path, reader=True)
    try:
        assert store.scalar("PRAGMA integrity_check") == "ok"
        return sorted(f"{f}/{r}" for f, r in store.query("SELECT flow_id, run_number FROM runs"))
    finally:
        store.close()


def names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def big_run(path: Path, *, flow: str = "BigFlow", mb: float = 1.5) -> None:
    """Add one finished run with an incompressible artifact of ``mb`` MB."""
    from mfstore.artifacts import prepare_artifacts
    from mfstore.store import Store
    from mfstore.writer import Writer

    with Store(path, create=True) as store:
        w = Writer(store)
        run_ref = w.begin_run(flow, user_name="mallory", system_tags=["user:mallory"])
        task = w.add_task(run_ref, "end")
        w.begin_attempt(task, 0)
        arts = prepare_artifacts({"payload": os.urandom(int(mb * 1e6)), "_task_ok": True})
        w.end_attempt(task, 0, artifacts=arts, task_ok=True, success=True)
        w.end_run(run_ref, successful=True)
        store.checkpoint()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@pytest.fixture
def mine(tmp_path: Path) -> Path:
    path = tmp_path / "mine.mfdb"
    build_file(path, flow="MineFlow", runs=2)
    return path


def test_merge_that_finds_no_room_keeps_nothing(mine: Path, tmp_path: Path) -> None:
    theirs = tmp_path / "theirs.mfdb"
    build_file(theirs, runs=1)
    big_run(theirs)
    before = runs_in(mine)
    line = full_line(mfstore("merge", str(theirs), "--into", str(mine), limit=mine.stat().st_size))
    assert str(mine) in line and "nothing was merged" in line
    assert runs_in(mine) == before
    assert names(tmp_path) <= {"mine.mfdb", "mine.mfdb-wal", "mine.mfdb-shm", "theirs.mfdb"}
    assert mfstore("merge", str(theirs), "--into", str(mine), limit=None).returncode == 0
    assert len(runs_in(mine)) == len(before) + 2


def test_merge_committed_but_not_folded_says_it_is_kept(mine: Path, tmp_path: Path) -> None:
    """The merge fits in the -wal but the main file cannot grow to take it in."""
    theirs = tmp_path / "theirs.mfdb"
    limit = mine.stat().st_size
    big_run(theirs, mb=limit / 4e6)  # fits in a -wal of `limit` bytes, not in the file
    before = runs_in(mine)
    line = full_line(mfstore("merge", str(theirs), "--into", str(mine), limit=limit))
    assert str(mine) in line and "(1 runs added) is kept" in line and "mine.mfdb-wal" in line
    assert "nothing" not in line
    assert runs_in(mine) == sorted([*before, *runs_in(theirs)])


@pytest.mark.parametrize(
    ("command", "said"),
    [("snapshot", "no snapshot was written"), ("export", "nothing was exported")],
)
def test_copies_name_the_destination_and_leave_nothing(
    command: str, said: str, mine: Path, tmp_path: Path
) -> None:
    big_run(mine)
    before = digest(mine)
    dst = tmp_path / "for-bob.mfdb"
    line = full_line(mfstore(command, str(mine), str(dst), limit=mine.stat().st_size // 2))
    assert line.startswith(f"Error: {dst}:") and said in line and f"{mine} is unchanged" in line
    assert names(tmp_path) == {"mine.mfdb"}  # no .for-bob.mfdb.<command>-PID (nor -wal/-shm)
    assert digest(mine) == before
    assert mfstore(command, str(mine), str(dst), limit=None).returncode == 0
    assert runs_in(dst) == runs_in(mine)


def test_delete_that_finds_no_room_deleted_nothing(mine: Path) -> None:
    before = runs_in(mine)
    line = full_line(mfstore("delete", before[0], "--yes", "--mfdb", str(mine), limit=1))
    assert str(mine) in line and "nothing was deleted" in line
    assert runs_in(mine) == before


def test_delete_that_deleted_says_so_when_the_file_cannot_shrink(mine: Path) -> None:
    """The deletion commits (a few pages), shrinking the file (VACUUM: a copy of every
    kept page) finds no room: the message must not say nothing was kept."""
    big_run(mine)
    before = runs_in(mine)
    victim = next(r for r in before if r.startswith("MineFlow/"))
    line = full_line(
        mfstore("delete", victim, "--yes", "--mfdb", str(mine), limit=mine.stat().st_size)
    )
    assert "the 1 runs were deleted (that is kept)" in line and "could not shrink" in line
    assert "nothing" not in line
    assert runs_in(mine) == [r for r in before if r != victim]


def test_import_that_finds_no_room_imports_nothing(mine: Path, tmp_path: Path) -> None:
    import pickle

    from .test_import_confined import make_history

    make_history(tmp_path / "download", {"payload": pickle.dumps(os.urandom(1_500_000))})
    history = tmp_path / "download" / ".metaflow"
    before = runs_in(mine)
    line = full_line(
        mfstore("import-metaflow", str(history), "--into", str(mine), limit=mine.stat().st_size)
    )
    assert str(mine) in line and "nothing was imported" in line
    assert runs_in(mine) == before
    assert mfstore("import-metaflow", str(history), "--into", str(mine), limit=None).returncode == 0
    assert len(runs_in(mine)) == len(before) + 1


def test_upgrade_that_finds_no_room_leaves_the_old_format(tmp_path: Path) -> None:
    fixture = Path(__file__).parents[1] / "sql" / "fixtures" / "history_v2.mfdb"
    old = tmp_path / "old.mfdb"
    old.write_bytes(fixture.read_bytes())
    line = full_line(mfstore("upgrade", "--mfdb", str(old), limit=old.stat().st_size))
    assert str(old) in line and "not migrated" in line and "still file format 2" in line
    con = sqlite3.connect(old)  # what any SQLite sees: the old format, the same rows
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert list(con.iterdump()) == list(sqlite3.connect(fixture).iterdump())
    con.close()
    assert mfstore("upgrade", "--mfdb", str(old), limit=None).returncode == 0


_CLIENT = textwrap.dedent(
    """
    import sys
    from mfstore import Run, metadata, namespace
    from mfstore.exception import MetaflowException
    import resource, signal
    metadata(sys.argv[1]); namespace(None)
    run = Run(sys.argv[2])
    # The disk fills after the file was opened.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), resource.RLIM_INFINITY))
    try:
        {action}
    except MetaflowException as exc:
        print(type(exc).__name__ + ": " + str(exc))
        sys.exit(3)
    """
)


def _python(code: str, *args: str, limit: int | None) -> tuple[str, str]:
    result = run([sys.executable, "-c", code, *args], limit=limit)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    name, _, message = lines[0].partition(": ")
    return name, message


def test_tag_edit_through_the_client_finds_no_room(mine: Path) -> None:
    pathspec = runs_in(mine)[0]
    tags_before = _tags(mine, pathspec)
    name, message = _python(
        _CLIENT.format(action="run.add_tag('late')"), str(mine), pathspec, "1", limit=None
    )
    assert name == "StoreFullError" and "the disk is full" in message and str(mine) in message
    assert "rolled back" in message and "committed before it is kept" in message
    assert _tags(mine, pathspec) == tags_before


def _tags(path: Path, pathspec: str) -> set[str]:
    from mfstore.store import Store

    flow, number = pathspec.split("/")
    with Store(path, reader=True) as store:
        return {
            t
            for (t,) in store.query(
                "SELECT tt.tag FROM runs r JOIN tagset_tags tt ON tt.tagset_id = r.tagset_id "
                "WHERE r.flow_id = ? AND r.run_number = ?",
                (flow, number),
            )
        }


_WRITER = textwrap.dedent(
    """
    import os, sys
    from mfstore.artifacts import prepare_artifacts
    from mfstore.exception import MetaflowException
    from mfstore.store import Store
    from mfstore.writer import Writer
    store = Store(sys.argv[1])
    w = Writer(store)
    run = w.begin_run("WriterFlow", user_name="tester", system_tags=["user:tester"])
    task = w.add_task(run, "start")
    w.begin_attempt(task, 0)
    try:
        arts = prepare_artifacts({"payload": os.urandom(2_000_000), "_task_ok": True})
        w.end_attempt(task, 0, artifacts=arts, task_ok=True, success=True)
    except MetaflowException as exc:
        print(type(exc).__name__ + ": " + str(exc))
        sys.exit(3)
    """
)


def test_writer_api_finds_no_room(mine: Path) -> None:
    before = runs_in(mine)
    name, message = _python(_WRITER, str(mine), limit=mine.stat().st_size + 200_000)
    assert name == "StoreFullError" and str(mine) in message
    assert "rolled back" in message and "committed before it is kept" in message
    after = runs_in(mine)
    assert [r for r in after if not r.startswith("WriterFlow/")] == before
    assert len(after) == len(before) + 1  # begin_run had committed: kept (still running)


_FLOW = textwrap.dedent(
    """
    import os
    from mfstore import FlowSpec, step


    class FillFlow(FlowSpec):
        @step
        def start(self):
            self.items = list(range(6))
            self.next(self.work, foreach="items")

        @step
        def work(self):
            self.payload = os.urandom(400_000)
            self.next(self.join)

        @step
        def join(self, inputs):
            self.n = len(inputs)
            self.next(self.end)

        @step
        def end(self):
            pass


    if __name__ == "__main__":
        FillFlow()
    """
)


def test_run_that_fills_the_disk_is_marked_failed_and_resumes(tmp_path: Path) -> None:
    from mfstore.store import Store

    (tmp_path / "fill_flow.py").write_text(_FLOW)
    db = tmp_path / "fill.mfdb"
    flow = [sys.executable, "fill_flow.py", "--mfdb", str(db)]
    result = run([*flow, "run", "--max-workers", "2"], limit=1_200_000, cwd=tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    out = result.stdout + result.stderr
    assert "Traceback" not in out
    last = [ln for ln in result.stderr.splitlines() if ln.strip()][-1]
    assert last.startswith(f"{db}: the disk is full"), last
    assert "the tasks that finished before are kept and the run " in last
    assert "fill_flow.py resume --origin-run-id" in last
    with Store(db, reader=True) as store:
        assert store.scalar("PRAGMA integrity_check") == "ok"
        ((status, run_pk),) = store.query("SELECT status, run_pk FROM runs")
        # Marking the run failed needs a little room; the message says which happened.
        said = "failed" if "the run is marked failed" in last else "running"
        assert "the run is left marked running" in last or said == "failed"
        assert status == said
        ok_starts = store.scalar(
            "SELECT count(*) FROM tasks t JOIN attempts a ON a.task_pk = t.task_pk "
            "WHERE t.run_pk = ? AND t.step_name = 'start' AND a.success = 1",
            (run_pk,),
        )
        assert ok_starts == 1
    time.sleep(0.01)
    resumed = run([*flow, "resume"], limit=None, cwd=tmp_path)
    assert resumed.returncode == 0, (resumed.stdout, resumed.stderr)
    with Store(db, reader=True) as store:
        statuses = sorted(s for (s,) in store.query("SELECT status FROM runs"))
    assert statuses == sorted([said, "successful"])

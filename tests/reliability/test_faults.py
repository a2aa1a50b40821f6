"""Full disk and read-only places (issue 7): a clear one-line error, the file still valid
afterwards with everything committed before, and a read-only file left byte-for-byte alone."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import check_file, file_sha, sql


@contextlib.contextmanager
def _mounted(*args: str, target: Path) -> Iterator[Path]:
    # Root here and in CI: a real file system of its own, not a simulation.
    subprocess.run(["mount", *args, str(target)], check=True, capture_output=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


def _write_run(writer, i: int, size: int) -> str:
    from mfstore.artifacts import prepare_artifacts

    run = writer.begin_run("FullFlow", user_name="tester", system_tags=["user:tester"])
    task = writer.add_task(run, "start")
    writer.begin_attempt(task, 0)
    writer.end_attempt(
        task,
        0,
        artifacts=prepare_artifacts({"x": os.urandom(size), "i": i}),
        task_ok=True,
        success=True,
    )
    writer.end_run(run, successful=True)
    return run.run_number


def test_full_disk_gives_store_full_error_and_keeps_committed_runs(tmp_path: Path) -> None:
    from mfstore.exception import StoreFullError
    from mfstore.store import Store
    from mfstore.writer import Writer

    mnt = tmp_path / "small"
    mnt.mkdir()
    with _mounted("-t", "tmpfs", "-o", "size=2m", "tmpfs", target=mnt):
        db = mnt / "full.mfdb"
        store = Store(db, create=True)
        writer = Writer(store)
        committed: list[str] = []
        with pytest.raises(StoreFullError) as info:
            for i in range(100):
                committed.append(_write_run(writer, i, 150_000))
        message = str(info.value)
        assert "\n" not in message and str(db) in message and "disk is full" in message
        assert 3 <= len(committed) < 100
        store.close()
        check_file(db)
        rows = sql(db, "SELECT run_number FROM runs WHERE status = 'successful'")
        assert set(committed) <= {r for (r,) in rows}
        # the Client API reads every committed run's artifact back
        import mfstore
        from mfstore import provider

        provider.reset()
        mfstore.metadata(str(db))
        mfstore.namespace(None)
        try:
            for n, run_number in enumerate(committed):
                assert mfstore.Task(f"FullFlow/{run_number}/start/1").data.i == n
        finally:
            provider.reset()
            provider.default_metadata()


def test_read_only_mount_refuses_writes_and_leaves_file_unchanged(tmp_path: Path) -> None:
    from mfstore.exception import StoreReadOnlyError
    from mfstore.store import Store
    from mfstore.writer import Writer

    shared = tmp_path / "share"
    shared.mkdir()
    db = shared / "team.mfdb"
    with Store(db, create=True) as store:
        run_number = _write_run(Writer(store), 0, 1000)
        store.checkpoint()
    for extra in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(str(db) + extra)
    before = file_sha(db)
    with _mounted("--bind", str(shared), target=shared):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(shared)], check=True)
        store = Store(db)  # a teammate's file on a read-only share opens read-only
        assert store.readonly
        assert store.scalar("SELECT run_number FROM runs") == run_number
        with pytest.raises(StoreReadOnlyError) as info:
            Writer(store).begin_run("FullFlow", user_name="tester")
        assert "\n" not in str(info.value) and str(db) in str(info.value)
        store.close()
        assert file_sha(db) == before
        assert sorted(os.listdir(shared)) == ["team.mfdb"]


def test_store_readonly_true_refuses_every_write(tmp_path: Path) -> None:
    from mfstore.exception import StoreReadOnlyError
    from mfstore.store import Store
    from mfstore.writer import Writer

    db = tmp_path / "ro.mfdb"
    with Store(db, create=True) as store:
        run_number = _write_run(Writer(store), 0, 1000)
        store.checkpoint()
    before = file_sha(db)
    with Store(db, readonly=True) as store:
        writer = Writer(store)
        for attempt in (
            lambda: writer.begin_run("FullFlow", user_name="tester"),
            lambda: writer.replace_user_tags(1, [], ["x"], user_name="tester"),
            lambda: store.execute("DELETE FROM runs"),
        ):
            with pytest.raises(StoreReadOnlyError) as info:
                attempt()
            assert "\n" not in str(info.value) and str(db) in str(info.value)
        assert store.scalar("SELECT count(*) FROM runs") == 1
    assert file_sha(db) == before
    assert sql(db, "SELECT run_number FROM runs") == [(run_number,)]

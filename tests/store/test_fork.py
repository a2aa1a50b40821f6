"""Fork safety: a forked child that uses a store it inherited gets its own connection;
the parent's file stays whole and unlocked."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import mfstore
from mfstore.store import Store
from mfstore.writer import Writer

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork() is POSIX")


def _run(store: Store, flow: str = "F", user: str = "alice") -> None:
    w = Writer(store)
    run = w.begin_run(flow, user_name=user, system_tags=[f"user:{user}"])
    w.end_run(run, successful=True, checkpoint=False)


def _in_child(body: Callable[[], object]) -> tuple[int, str]:
    """Run ``body`` in a forked child: (exit status, what it printed or its error)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        signal.alarm(60)  # a child that deadlocks ends (killed by SIGALRM) instead of hanging
        os.close(read_end)
        code, text = 0, ""
        try:
            text = repr(body())
        except BaseException as exc:
            code, text = 1, f"{type(exc).__name__}: {exc}"
        os.write(write_end, text.encode())
        os.close(write_end)
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        text = fh.read().decode()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), text


def _runs(store: Store) -> int:
    return int(store.scalar("SELECT count(*) FROM runs"))


def test_child_reads_and_writes_through_an_inherited_store(store_path: Path) -> None:
    store = Store(store_path, create=True)
    _run(store)
    conn = store.conn

    def child() -> object:
        seen = _runs(store)  # the inherited store, first use in the child
        _run(store, "FromChild")
        return seen, _runs(store), store.conn is not conn

    assert _in_child(child) == (0, repr((1, 2, True)))
    assert _runs(store) == 2
    _run(store, "AfterFork")  # not locked by anything the child left
    assert store.scalar("PRAGMA integrity_check") == "ok"
    assert sorted(r[0] for r in store.query("SELECT flow_id FROM runs")) == [
        "AfterFork",
        "F",
        "FromChild",
    ]
    store.close()


def test_child_opening_the_file_again_sees_and_is_seen(store_path: Path) -> None:
    store = Store(store_path, create=True)
    _run(store)

    def child() -> object:
        own = Store(store_path)  # a new store while the inherited one is still around
        _run(own, "FromChild")
        seen = _runs(own)
        own.close()
        return seen

    assert _in_child(child) == (0, "2")
    assert _runs(store) == 2
    store.close()
    with Store(store_path) as again:
        assert again.scalar("PRAGMA integrity_check") == "ok" and _runs(again) == 2


def test_child_holding_a_read_transaction_does_not_block_the_parent(store_path: Path) -> None:
    store = Store(store_path, create=True)
    _run(store)
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            with store.read():
                before = _runs(store)
                os.write(go_w, b"x")
                os.read(done_r, 1)  # the parent writes meanwhile
                code = 0 if _runs(store) == before == 1 else 2
        finally:
            os._exit(code)
    os.read(go_r, 1)
    _run(store, "WhileChildReads")  # WAL: a reader never blocks the writer
    os.write(done_w, b"x")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _runs(store) == 2 and store.scalar("PRAGMA integrity_check") == "ok"
    store.close()


def test_client_in_a_forked_child(store_path: Path) -> None:
    """A notebook's pattern: the Client is in use, then a worker process is forked."""
    store = Store(store_path, create=True)
    _run(store, "HelloFlow")
    mfstore.metadata(str(store_path))
    mfstore.namespace(None)
    parent_run = mfstore.Flow("HelloFlow").latest_run
    assert parent_run is not None

    def child() -> object:
        latest = mfstore.Flow("HelloFlow").latest_run
        return None if latest is None else latest.pathspec

    assert _in_child(child) == (0, repr(parent_run.pathspec))
    assert mfstore.Flow("HelloFlow").latest_run.pathspec == parent_run.pathspec
    mfstore.default_namespace()
    store.close()


def test_child_uses_a_store_a_parent_thread_was_writing_with(store_path: Path) -> None:
    """A parent thread inside ``store.write()`` at fork(): the child's store neither waits
    for that thread's lock nor shares its transaction."""
    import threading

    store = Store(store_path, create=True)
    _run(store)
    inside, release = threading.Event(), threading.Event()

    def writer() -> None:
        with store.write():
            store.execute("INSERT INTO flows (flow_id, ts_epoch) VALUES ('Pending', 0)")
            inside.set()
            release.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    assert inside.wait(30)

    def child() -> object:
        with store.read():
            return _runs(store), store.scalar(
                "SELECT count(*) FROM flows WHERE flow_id = 'Pending'"
            )

    try:
        assert _in_child(child) == (0, repr((1, 0)))
    finally:
        release.set()
        thread.join()
    assert store.scalar("SELECT count(*) FROM flows WHERE flow_id = 'Pending'") == 1
    store.close()

"""Fork safety: a forked child that uses a store it inherited gets its own connection;
the parent's file stays whole and unlocked."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
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


@contextlib.contextmanager
def _writing_thread(store: Store, body: Callable[[], object]) -> Iterator[None]:
    """Inside the block, a thread of this process is inside ``store.write()`` (after
    ``body()`` ran in that transaction), and waits there until the block ends."""
    inside, release = threading.Event(), threading.Event()

    def writer() -> None:
        with store.write():
            body()
            inside.set()
            release.wait(60)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert inside.wait(60)
        yield
    finally:
        release.set()
        thread.join()


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
    store = Store(store_path, create=True)
    _run(store)

    def child() -> object:
        with store.read():
            return _runs(store), store.scalar(
                "SELECT count(*) FROM flows WHERE flow_id = 'Pending'"
            )

    with _writing_thread(
        store, lambda: store.execute("INSERT INTO flows (flow_id, ts_epoch) VALUES ('Pending', 0)")
    ):
        assert _in_child(child) == (0, repr((1, 0)))
    assert store.scalar("SELECT count(*) FROM flows WHERE flow_id = 'Pending'") == 1
    store.close()


def test_fork_leaves_the_parents_connections_as_they_are(store_path: Path) -> None:
    """Nothing runs at fork(): the parent keeps its connections (no close and reopen
    around each fork), also the Client's."""
    store = Store(store_path, create=True)
    _run(store, "HelloFlow")
    mfstore.metadata(str(store_path))
    mfstore.namespace(None)
    assert mfstore.Flow("HelloFlow").latest_run is not None
    client_store = mfstore.provider.current_store()
    before = (store.conn, client_store.conn)
    assert _in_child(lambda: None) == (0, "None")  # a child that uses no store
    assert _in_child(lambda: _runs(store)) == (0, "1")  # one that does
    assert (store.conn, client_store.conn) == before
    assert all(a is b for a, b in zip((store.conn, client_store.conn), before, strict=True))
    _run(store, "AfterFork")
    assert mfstore.Flow("AfterFork").latest_run is not None
    mfstore.default_namespace()
    store.close()


def test_child_of_a_parent_writing_large_values_leaves_the_parents_commit_whole(
    store_path: Path,
) -> None:
    """A parent thread inside a write transaction whose pages already went to the WAL at
    fork(); the child uses the store. Putting the inherited connection aside must not roll
    it back (that would clear those frames from the WAL index the two processes share and
    leave the parent's commit unreadable), and the child may read but not write."""
    from mfstore import blobs
    from mfstore.exception import StoreBusyError

    store = Store(store_path, create=True)
    store.execute("PRAGMA cache_size = 20")  # the transaction spills pages to the WAL early
    values = [os.urandom(50_000) for _ in range(100)]

    def write_values() -> None:
        for value in values:
            blobs.insert_blob(store, blobs.pack_blob(value))

    def child() -> object:
        seen = int(store.scalar("SELECT count(*) FROM blobs"))
        try:
            with store.write():
                pass
        except StoreBusyError as exc:
            return seen, "written by the parent process" in str(exc)
        return seen, "wrote"

    with _writing_thread(store, write_values):
        assert _in_child(child) == (0, repr((0, True)))
    other = Store(store_path, reader=True)
    assert other.scalar("SELECT count(*) FROM blobs") == len(values)
    assert store.checkpoint()
    assert blobs.verify_blobs(other) == []
    assert blobs.get_blob(other, blobs.sha1_hex(values[-1])) == values[-1]
    other.close()
    store.close()
    with Store(store_path) as again:
        assert again.scalar("PRAGMA integrity_check") == "ok"


#: In a fresh interpreter: which fork hooks mfstore registers, and how many checkpointers
#: a fork() pauses, after importing the store, while reading and writing small commits,
#: and after large commits (whose checkpoints run in a background thread).
_FORK_HOOKS = """
import json, os, sys
registered = []
register = os.register_at_fork

def spy(**hooks):
    modules = [getattr(f, "__module__", None) or "" for f in hooks.values()]
    if any(m.startswith("mfstore") for m in modules):
        registered.append(modules)
    register(**hooks)

os.register_at_fork = spy
import mfstore.store
from mfstore import blobs
from mfstore.store import Store, background

paused = []
pause = background.Checkpointer.pause
background.Checkpointer.pause = lambda self: (paused.append(1), pause(self))[1]
seen = {}

def fork(what):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    seen[what] = [len(registered), len(paused)]

def put(store, size):
    with store.write():
        blobs.insert_blob(store, blobs.pack_blob(os.urandom(size)))
    assert store.wait_checkpoints()

fork("import")
path = sys.argv[1]
writer = Store(path, create=True)
put(writer, 1000)
with Store(path, reader=True) as reader:
    reader.scalar("SELECT count(*) FROM runs")
    fork("reading, small commits")
    put(writer, 12 << 20)
    fork("a large commit")
    put(writer, 12 << 20)
    other = Store(path)
    put(other, 12 << 20)
    fork("more large commits, another writer")
print(json.dumps(seen))
"""


def test_importing_the_store_installs_nothing_at_fork(tmp_path: Path) -> None:
    """``import mfstore.store`` registers no fork hook, and a process that reads or
    writes small commits runs nothing of mfstore's at ``fork()`` (a notebook that opens
    the Client, then forks, pays nothing). The first background checkpoint installs the
    hook that pauses checkpoints around ``fork()``, once."""
    import json
    import subprocess

    cp = subprocess.run(
        [sys.executable, "-c", _FORK_HOOKS, str(tmp_path / "hooks.mfdb")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cp.returncode == 0, cp.stderr[-3000:]
    seen = json.loads(cp.stdout.strip().splitlines()[-1])
    # [registrations of mfstore fork hooks, checkpointers paused by fork()] after each stage
    assert seen == {
        "import": [0, 0],
        "reading, small commits": [0, 0],
        "a large commit": [1, 1],
        "more large commits, another writer": [1, 3],
    }

"""Checkpoints after large commits run in a background thread (store.background): the
committed data is readable at once, reaches the main file afterwards, and neither fork()
nor closing the store nor the end of the process loses or damages anything."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mfstore
from mfstore import blobs
from mfstore.store import Store


def _put(store: Store, raw: bytes) -> str:
    packed = blobs.pack_blob(raw)
    with store.write():
        blobs.insert_blob(store, packed)
    return packed.sha


def _main_file_alone(store_path: Path, tmp_path: Path) -> Path:
    """A copy of the main file without its -wal (what ``cp file`` carries)."""
    copy = tmp_path / "alone" / "copy.mfdb"
    copy.parent.mkdir()
    shutil.copyfile(store_path, copy)
    return copy


def test_a_large_commit_reaches_the_main_file_after_commit(
    store: Store, store_path: Path, tmp_path: Path
) -> None:
    raw = os.urandom(12 << 20)  # ~3,000 pages: past the auto-checkpoint size
    sha = _put(store, raw)
    with Store(store_path, reader=True) as other:  # committed: every connection sees it
        assert blobs.get_blob(other, sha) == raw
    assert store.wait_checkpoints()
    with Store(_main_file_alone(store_path, tmp_path), reader=True) as alone:
        assert blobs.get_blob(alone, sha) == raw
        assert blobs.verify_blobs(alone) == []


def test_small_commits_leave_the_checkpoint_to_the_end_of_the_run(store: Store) -> None:
    with store.write():
        store.execute("INSERT INTO types (name) VALUES ('x.Small')")
    assert store.wait_checkpoints(timeout=0)  # nothing was asked for
    assert store.checkpoint()


def test_closing_the_store_lets_a_pending_checkpoint_finish(
    store_path: Path, tmp_path: Path
) -> None:
    store = Store(store_path, create=True)
    sha = _put(store, os.urandom(12 << 20))
    store.close()
    with Store(_main_file_alone(store_path, tmp_path), reader=True) as alone:
        assert blobs.verify_blobs(alone) == []
        assert blobs.has_blob(alone, sha)


def test_an_idle_checkpointer_ends_its_thread_and_a_commit_starts_it_again(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from mfstore.store import background

    monkeypatch.setattr(background, "IDLE_SECONDS", 0.2)

    def threads() -> int:
        return sum(t.name == "mfstore-checkpoint" for t in threading.enumerate())

    store = Store(store_path, create=True)  # dropped below without close()
    _put(store, os.urandom(12 << 20))
    deadline = time.monotonic() + 30
    while threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threads() == 0
    sha = _put(store, os.urandom(12 << 20))
    assert store.wait_checkpoints()
    with Store(_main_file_alone(store_path, tmp_path), reader=True) as alone:
        assert blobs.has_blob(alone, sha)
    del store


def test_a_failed_checkpoint_does_not_stop_later_ones(
    store: Store, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mfstore.exception import StoreError
    from mfstore.store import background

    real_open = background.checkpoint_connection
    calls = []

    def failing_once(path: Path) -> object:
        calls.append(path)
        if len(calls) == 1:
            raise StoreError("cannot open (test)")
        return real_open(path)

    monkeypatch.setattr(background, "checkpoint_connection", failing_once)
    first = _put(store, os.urandom(12 << 20))
    assert store.wait_checkpoints()
    second = _put(store, os.urandom(12 << 20))
    assert store.wait_checkpoints()
    assert len(calls) == 2
    with Store(_main_file_alone(store_path, tmp_path), reader=True) as alone:
        assert blobs.has_blob(alone, first) and blobs.has_blob(alone, second)


@pytest.mark.skipif(sys.platform == "win32", reason="fork() is POSIX")
def test_fork_right_after_a_large_commit(store: Store, store_path: Path) -> None:
    """fork() while the checkpoint of a large commit is (likely) running: the child can
    open the file and read it, the parent goes on writing, the file stays whole."""
    raw = os.urandom(48 << 20)
    sha = _put(store, raw)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        signal.alarm(60)  # a deadlocked child ends instead of hanging the test
        code = 1
        try:
            with Store(store_path, reader=True) as mine:
                code = 0 if blobs.get_blob(mine, sha) == raw else 2
            _put(store, b"written by the child " * 100)  # the inherited store, reopened
        except BaseException:
            code = 3
        os.write(write_end, str(code).encode())
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        told = fh.read().decode()
    _, status = os.waitpid(pid, 0)
    assert (os.waitstatus_to_exitcode(status), told) == (0, "0")
    other = _put(store, os.urandom(12 << 20))
    assert store.wait_checkpoints()
    assert store.checkpoint()
    assert blobs.verify_blobs(store) == []
    assert blobs.has_blob(store, other)
    assert blobs.has_blob(store, blobs.sha1_hex(b"written by the child " * 100))
    assert store.scalar("PRAGMA integrity_check") == "ok"


KILLED_AFTER_COMMIT = textwrap.dedent(
    """
    import os, sys, time
    from mfstore import blobs
    from mfstore.store import Store

    store = Store(sys.argv[1], create=True)
    packed = blobs.pack_blob(os.urandom(48 << 20))
    with store.write():
        blobs.insert_blob(store, packed)
    print(packed.sha, flush=True)
    time.sleep(60)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("delay", [0.0, 0.01, 0.05])
def test_sigkill_while_the_background_checkpoint_runs(tmp_path: Path, delay: float) -> None:
    """kill -9 right after a large commit (inside its background checkpoint): the
    committed value is kept whole."""
    import time

    db = tmp_path / "kill.mfdb"
    script = tmp_path / "child.py"
    script.write_text(KILLED_AFTER_COMMIT)
    env = dict(os.environ, PYTHONPATH=str(Path(mfstore.__file__).resolve().parent.parent))
    child = subprocess.Popen(
        [sys.executable, str(script), str(db)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    sha = child.stdout.readline().strip()
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait()
    with Store(db) as store:
        assert store.scalar("PRAGMA integrity_check") == "ok"
        assert blobs.has_blob(store, sha)
        assert blobs.verify_blobs(store) == []


class _Spy:
    """The checkpointer's connection, recording the calls made on it (``interrupt`` is
    called from other threads by design and is not recorded)."""

    def __init__(self, conn: object, calls: list[str], started: object = None) -> None:
        self._conn = conn
        self._calls = calls
        self._started = started

    def wal_checkpoint(self, **kw: object) -> object:
        self._calls.append("wal_checkpoint")
        if self._started is not None:
            self._started.set()  # type: ignore[attr-defined]
        return self._conn.wal_checkpoint(**kw)  # type: ignore[attr-defined]

    def close(self, *args: object) -> None:
        self._calls.append("close")
        self._conn.close(*args)  # type: ignore[attr-defined]

    def interrupt(self) -> None:
        self._conn.interrupt()  # type: ignore[attr-defined]


def test_a_paused_checkpointer_leaves_its_connection_alone(
    store: Store, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pause() (the fork hook) holds the thread off its connection until resume(): an
    idle thread does not close it then (a child forked meanwhile would inherit SQLite
    mid-close)."""
    import time

    from mfstore.store import background

    calls: list[str] = []
    real_open = background.checkpoint_connection
    # Long enough that the thread cannot go idle between wait_idle() and pause() on a
    # loaded machine; shortened once it is paused.
    monkeypatch.setattr(background, "IDLE_SECONDS", 30.0)
    monkeypatch.setattr(
        background, "checkpoint_connection", lambda path: _Spy(real_open(path), calls)
    )
    cp = background.Checkpointer(store_path)
    try:
        cp.kick()
        assert cp.wait_idle()
        assert calls == ["wal_checkpoint"]
        cp.pause()
        monkeypatch.setattr(background, "IDLE_SECONDS", 0.05)
        cp.pause()
        cp.resume()  # wakes the thread (still paused): it now waits 0.05 s at a time
        time.sleep(1.0)  # twenty idle periods: the thread must still wait
        assert calls == ["wal_checkpoint"]
        cp.resume()
    finally:
        cp.close()


def test_the_end_of_a_run_folds_the_log_in_while_a_background_checkpoint_runs(
    store: Store, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Store.checkpoint() (the end of a run) is not refused by this store's own background
    checkpoint holding the log's checkpoint lock: the whole log reaches the main file."""
    import threading

    from mfstore.store import background, connection

    started = threading.Event()
    real_open = background.checkpoint_connection
    monkeypatch.setattr(
        background, "checkpoint_connection", lambda path: _Spy(real_open(path), [], started)
    )
    monkeypatch.setattr(connection, "CHECKPOINT_WAIT_SECONDS", 0.0)  # one attempt only
    sha = _put(store, os.urandom(64 << 20))
    assert started.wait(30)
    assert store.checkpoint()
    with Store(_main_file_alone(store_path, tmp_path), reader=True) as alone:
        assert blobs.has_blob(alone, sha)


def test_a_store_opened_by_a_relative_path_is_checkpointed_after_a_chdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpointer opens its own connection later, by path: a step that changes the
    working directory does not send it to another (or no) file."""
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    store = Store("rel.mfdb", create=True)
    try:
        monkeypatch.chdir(tmp_path / "elsewhere")
        sha = _put(store, os.urandom(12 << 20))
        assert store.wait_checkpoints()
        with Store(_main_file_alone(tmp_path / "rel.mfdb", tmp_path), reader=True) as alone:
            assert blobs.has_blob(alone, sha)
    finally:
        store.close()


def test_a_checkpointer_thread_that_cannot_start_fails_no_commit(
    store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No thread to be had (a process limit): the COMMIT that asked for the checkpoint
    stands and says so (the WAL hook runs after the commit), a later commit still gets
    its checkpoint, and closing works."""
    import threading

    real_start = threading.Thread.start

    def no_thread(self: threading.Thread) -> None:
        if self.name == "mfstore-checkpoint":
            raise RuntimeError("can't start new thread")
        real_start(self)

    store = Store(store_path, create=True)
    monkeypatch.setattr(threading.Thread, "start", no_thread)
    first = _put(store, os.urandom(12 << 20))  # does not raise
    assert blobs.has_blob(store, first)
    monkeypatch.setattr(threading.Thread, "start", real_start)
    second = _put(store, os.urandom(12 << 20))
    assert store.wait_checkpoints()
    store.close()
    with Store(_main_file_alone(store_path, tmp_path), reader=True) as alone:
        assert blobs.has_blob(alone, first) and blobs.has_blob(alone, second)


class _Stop(Exception):
    pass


def test_an_end_of_run_checkpoint_stopped_by_a_signal_leaves_checkpoints_going(
    store: Store, store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the end of a run waits for the background checkpoint to stop: later
    commits are still checkpointed (the checkpointer is not left paused, which would also
    make closing wait at exit)."""
    import threading

    from mfstore.store import background

    started, gate = threading.Event(), threading.Event()
    real_open = background.checkpoint_connection

    class Stuck(_Spy):
        def wal_checkpoint(self, **kw: object) -> object:
            if not gate.is_set():  # the first one runs until the test lets it go
                started.set()
                gate.wait(60)
            return self._conn.wal_checkpoint(**kw)  # type: ignore[attr-defined]

    monkeypatch.setattr(background, "checkpoint_connection", lambda p: Stuck(real_open(p), []))
    _put(store, os.urandom(12 << 20))
    assert started.wait(30)

    def stop(*_: object) -> None:
        raise _Stop

    old = signal.signal(signal.SIGALRM, stop)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(_Stop):
            store.checkpoint()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        gate.set()
    second = _put(store, os.urandom(12 << 20))
    assert store.wait_checkpoints()
    with Store(_main_file_alone(store_path, tmp_path), reader=True) as alone:
        assert blobs.has_blob(alone, second)

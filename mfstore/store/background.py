"""Checkpoints after a commit, in a background thread: a large write is committed when its
COMMIT returns, without also copying the write-ahead log into the main file first.

SQLite's auto-checkpoint runs inside the COMMIT that takes the log past 1,000 pages, so
the writer of a 100 MB value paid for writing it twice (log, then main file: about half of
its time). A writing ``Store`` replaces it with a WAL hook that wakes a ``Checkpointer``:
a thread with its own connection that runs the same PASSIVE checkpoint while the writer
goes on. Nothing changes for durability: a committed transaction is in the log, which
every connection reads and which survives ``kill -9`` (``synchronous = NORMAL``); a
checkpoint interrupted by anything is redone later.

Around ``fork()``: a process-wide ``before`` hook pauses every checkpointer (interrupts
a running checkpoint and waits until its connection is idle), so a forked child never
inherits SQLite mid-call; a child puts the inherited connection aside (``put_aside``)
with the store's own, and gets a thread of its own if it writes. ``close()`` and the end
of the process let a pending checkpoint finish (as the auto-checkpoint would have).

Those process hooks (``os.register_at_fork``, ``atexit``) are installed when the first
checkpoint thread of the process starts, once: importing the store installs nothing, and
a process that only reads (the Client API, a notebook), or writes only small commits,
runs nothing of mfstore's at ``fork()``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import weakref
from pathlib import Path

import apsw

from .connection import open_connection, policy_no_checkpoint_on_close, policy_untrusted_file
from .fork import put_aside

#: Log pages after which a commit wakes the checkpointer (SQLite's auto-checkpoint default).
CHECKPOINT_PAGES = 1000
#: How long closing a store (or ending the process) waits for a running checkpoint.
FINISH_SECONDS = 30.0
#: An idle checkpointer closes its connection and ends its thread after this long (a
#: store dropped without ``close()`` leaves nothing open for long); a commit starts anew.
IDLE_SECONDS = 5.0

_all: weakref.WeakSet[Checkpointer] = weakref.WeakSet()
#: Whether this process has installed the fork and exit hooks (``install_process_hooks``).
_hooks_installed = False


class Checkpointer:
    """PASSIVE checkpoints of one file, run by a daemon thread when ``kick()``-ed."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._cond = threading.Condition()
        self._conn: apsw.Connection | None = None
        self._thread: threading.Thread | None = None
        self._pending = False
        self._running = False
        self._paused = 0
        self._stopped = False
        self._pid = os.getpid()
        _all.add(self)

    def kick(self) -> None:
        """Ask for a checkpoint soon (returns at once)."""
        if self._pid != os.getpid():
            return  # inherited through fork(): its lock may have been held by the parent's thread
        with self._cond:
            if self._stopped:
                return
            self._pending = True
            if self._thread is None:
                install_process_hooks()
                thread = threading.Thread(target=self._run, name="mfstore-checkpoint", daemon=True)
                try:
                    thread.start()
                except RuntimeError:
                    # No thread to be had (a process limit): this commit stands unfolded;
                    # the next one asks again, and the end of a run folds the log in.
                    self._pending = False
                    return
                self._thread = thread
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                # Paused (a fork() is under way): nothing touches the connection, not even
                # closing it when idle, and not a last checkpoint asked for by close().
                while self._paused or not (self._stopped or self._pending):
                    idle = not self._cond.wait(IDLE_SECONDS)
                    if idle and not (self._pending or self._paused or self._stopped):
                        self._end_thread()
                        return
                if self._stopped and not self._pending:
                    return
                self._pending = False
                self._running = True
            try:
                if self._conn is None:
                    self._conn = checkpoint_connection(self._path)
                self._conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
            except apsw.InterruptError:
                with self._cond:  # paused for fork(): done again afterwards
                    self._pending = not self._stopped
            except Exception:
                # Busy, or the file went away: the next commit asks again, and the end of
                # a run checkpoints with the writer's own connection. A failed open is
                # tried again then too (the thread goes on).
                pass
            finally:
                with self._cond:
                    self._running = False
                    self._cond.notify_all()

    def _end_thread(self) -> None:
        # Idle (under the lock): a kick from now on starts a new thread.
        self._thread = None
        if self._conn is not None:
            with contextlib.suppress(apsw.Error):
                self._conn.close()
            self._conn = None

    def pause(self) -> None:
        """Stop any running checkpoint and hold new ones until ``resume()``."""
        if self._pid != os.getpid():
            return  # inherited through fork(): its thread is not in this process
        with self._cond:
            self._paused += 1
            try:
                if self._running and self._conn is not None:
                    self._conn.interrupt()
                while self._running:
                    self._cond.wait()
            except BaseException:  # Ctrl-C while waiting: not left paused (nor close())
                self._paused -= 1
                self._cond.notify_all()
                raise

    def resume(self) -> None:
        """Undo one ``pause()``."""
        with self._cond:
            self._paused = max(0, self._paused - 1)
            self._cond.notify_all()

    def wait_idle(self, timeout: float = FINISH_SECONDS) -> bool:
        """Wait until no checkpoint is pending or running; True if so within ``timeout``."""
        if self._pid != os.getpid():
            return True  # inherited through fork(): nothing of it runs in this process
        with self._cond:
            return bool(
                self._cond.wait_for(
                    lambda: not self._running and (not self._pending or self._paused), timeout
                )
            )

    def close(self) -> None:
        """Let a pending checkpoint finish (at most ``FINISH_SECONDS``), stop the thread,
        close its connection."""
        if self._pid != os.getpid():
            self.put_aside()
            return
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(FINISH_SECONDS)
            if thread.is_alive() and self._conn is not None:
                self._conn.interrupt()
                thread.join(FINISH_SECONDS)
        if self._conn is not None:
            with contextlib.suppress(apsw.Error):
                self._conn.close()
            self._conn = None

    def put_aside(self) -> None:
        """In a forked child: stop using what the parent's thread had (its connection is
        put aside as the store's own is: see ``store.fork``); a write here starts anew."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._thread = None
        self._pending = self._running = False
        self._paused = 0
        conn, self._conn = self._conn, None
        if conn is not None:
            put_aside(conn, self._path)


def checkpoint_connection(path: Path) -> apsw.Connection:
    """The checkpointer's own connection: the file's policies, nothing created."""
    conn = open_connection(path, reader=True, read_only=False, immutable=False)
    policy_untrusted_file(conn)
    policy_no_checkpoint_on_close(conn)
    conn.execute("SELECT count(*) FROM sqlite_schema").fetchall()  # opens the log
    return conn


def _mine() -> list[Checkpointer]:
    """This process's checkpointers (a store opened by another thread meanwhile is fine)."""
    while True:
        try:
            return [cp for cp in list(_all) if cp._pid == os.getpid()]
        except RuntimeError:  # the set changed while it was copied
            continue


def install_process_hooks() -> None:
    """Pause checkpoints around ``fork()`` and finish them at exit, from now on in this
    process (and its forked children, which inherit the hooks); the first checkpoint
    thread calls it, later calls do nothing."""
    global _hooks_installed
    if _hooks_installed:
        return
    # No lock (a child forked while another thread held it would inherit it held): two
    # threads starting their first checkpointers at once may install the hooks twice,
    # which is harmless (each pause has its resume; closing twice does nothing more).
    _hooks_installed = True
    os.register_at_fork(before=_pause_all, after_in_parent=_resume_all)
    atexit.register(_finish_all)


def _pause_all() -> None:
    for cp in _mine():
        cp.pause()


def _resume_all() -> None:
    for cp in _mine():
        cp.resume()


def _finish_all() -> None:
    for cp in _mine():
        cp.close()

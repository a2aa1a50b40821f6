"""The stores of this process, and their fork safety: lazily, nothing runs at ``fork()``.

SQLite connections must not be carried across ``fork()`` (https://sqlite.org/howtocorrupt.html,
section 2.6): a child inherits its parent's in-memory lock and WAL-index state but not its
POSIX locks, so a connection the child opens to the same file would believe it holds locks
it does not (a commit made just before the runtime was SIGKILLed could then vanish from
readers: issue 7, crash tests). So every store remembers the process that opened its
connection; on a forked child's first use of any store (a statement, ``read()``,
``write()``, or opening another store) the connections inherited from the parent are put
aside first, and each store then opens its own.

Putting an inherited connection aside never changes what the parent sees. One that was
idle or reading at ``fork()`` is closed without a checkpoint (closing then only releases
locks, and POSIX locks belong to the parent, not to the child). One that was inside a write
transaction (a parent thread writing at ``fork()``) is neither closed nor used again in the
child: closing rolls back, and the rollback clears the parent's uncommitted frames from the
WAL index both processes share, which makes the parent's commit unreadable. Such a child
may read the file; ``write()`` there refuses at once (``StoreBusyError``), since the write
lock the parent held is still its own in this process's view.

A process that forks pays nothing at ``fork()``, and a child that never uses a store pays
nothing either. ``forget_inherited()`` puts the inherited connections aside at once (the
runtime's task processes call it first thing).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
import weakref
from pathlib import Path

import apsw

#: Every open file-backed Store of this process.
_open_stores: weakref.WeakSet[ForkSafe] = weakref.WeakSet()

#: The process the stores in ``_open_stores`` were opened by.
_owner_pid = os.getpid()

#: Connections a forked child inherited inside a write transaction: kept referenced, never
#: closed (closing would roll back into the parent's WAL index; see the module docstring).
_abandoned: list[apsw.Connection] = []

#: Files whose write lock this process inherited (its parent was writing at ``fork()``).
_written_at_fork: set[Path] = set()


def track(store: ForkSafe) -> None:
    """Count ``store`` among this process's open stores (put aside in a forked child)."""
    _open_stores.add(store)


def untrack(store: ForkSafe) -> None:
    """``store`` was closed."""
    _open_stores.discard(store)


def forget_inherited() -> None:
    """In a forked child: put the connections inherited from the parent aside now (each
    store reopens on its next use). Stores do this by themselves on first use; a process
    that forks children which may never use a store (the runtime's task processes) calls
    it right after ``fork()`` so no inherited connection lingers in the child. Nothing
    happens in the process that opened the stores."""
    global _owner_pid
    pid = os.getpid()
    if pid == _owner_pid:
        return
    _owner_pid = pid
    for store in list(_open_stores):
        if store._pid != pid:
            store._put_aside()


def put_aside(conn: apsw.Connection, path: Path) -> None:
    """Stop using a connection inherited through ``fork()`` (see the module docstring)."""
    try:
        writing = conn.txn_state("main") == apsw.SQLITE_TXN_WRITE
    except apsw.Error:  # a parent thread was inside a call on it at fork(): leave it be
        writing = True
    if writing:
        _abandoned.append(conn)
        _written_at_fork.add(path.absolute())
        return
    with contextlib.suppress(apsw.Error):
        conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
    with contextlib.suppress(apsw.Error):
        conn.close(True)


def written_at_fork(path: Path) -> bool:
    """True in a forked child whose parent was writing ``path`` at ``fork()``."""
    return bool(_written_at_fork) and path.absolute() in _written_at_fork


class ForkSafe:
    """The part of ``Store`` that keeps a connection to its process (a mixin: the store
    sets ``_pid``, ``_conn``, ``_lock``, ``_depth``, ``memory``, ``path``, ``readonly``,
    ``reader`` and provides ``_open``/``_configure``/``close``)."""

    _pid: int
    _conn: apsw.Connection
    _lock: threading.RLock
    _depth: int
    _detached: bool
    _closed: bool
    memory: bool
    path: Path
    readonly: bool
    reader: bool

    def _open(self, p: Path) -> apsw.Connection:
        raise NotImplementedError

    def close(self) -> None:
        """Close the store (``Store.close``)."""
        raise NotImplementedError

    def _configure(self, *, wal: bool) -> None:
        raise NotImplementedError

    @property
    def conn(self) -> apsw.Connection:
        """The SQLite connection; in a forked child, its own (opened on first use)."""
        if self._pid != os.getpid():
            self._enter_child()
        return self._conn

    def _enter_child(self) -> None:
        """First use in a forked child: put the inherited connections aside, reopen this one."""
        forget_inherited()
        if self.memory:
            self._pid = os.getpid()  # a private copy: nothing on disk is shared
        elif self._detached and not self._closed:
            self._detached = False
            self._pid = os.getpid()
            self._conn = self._open(self.path)
            self._configure(wal=not self.readonly)

    def _put_aside(self) -> None:
        """Stop using the connection inherited through fork() (see ``forget_inherited``)."""
        self._lock = threading.RLock()  # a parent thread may have held it at fork()
        self._depth = 0  # a parent thread's transaction is not this process's
        self._detached = True
        put_aside(self._conn, self.path)


def _close_readers_at_exit() -> None:
    # Readers leave no -wal/-shm beside a file that had none: SQLite removes them when
    # the last connection closes, so close reading connections before the process ends.
    forget_inherited()  # a forked child never closes its parent's connections that way
    for store in list(_open_stores):
        if store.reader:
            store.close()


atexit.register(_close_readers_at_exit)

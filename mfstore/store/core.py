"""The one module that opens SQLite connections and starts transactions.

``Store(path)`` validates the file before SQLite touches it (header, application_id,
user_version, length), applies the connection policy, migrates older formats forward
in one transaction, and offers ``store.write()`` (``BEGIN IMMEDIATE`` with bounded
retry; nested blocks become savepoints) and ``store.read()`` (one consistent
snapshot). apsw errors are translated into ``mfstore.exception`` here and nowhere else.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import apsw

from ..env import MFSTORE_DB
from ..exception import (
    MetaflowNotFound,
    StoreBusyError,
    StoreError,
    StoreReadOnlyError,
)
from .background import CHECKPOINT_PAGES, Checkpointer
from .checks import check_existing, initialize_or_check
from .connection import (
    BlobReader,
    build_new_file,
    checkpoint_wal,
    is_writable,
    open_connection,
    policy_busy_timeout,
    policy_foreign_keys,
    policy_memory,
    policy_no_checkpoint_on_close,
    policy_untrusted_file,
    policy_wal,
    read_only_authorizer,
    statement_columns,
    translate_error,
)
from .fork import ForkSafe, forget_inherited, track, untrack, written_at_fork
from .publish import creation_error, publish_new

#: Total time a write keeps retrying (with backoff) before StoreBusyError.
WRITE_RETRY_SECONDS = 120.0
#: SQLite VM steps between two calls of the progress handler (Ctrl-C and time limits
#: stop a long query there).
PROGRESS_STEPS = 20_000

Tracer = Callable[[str, Sequence[Any] | dict[str, Any] | None], None]


def _exists(p: Path, create: bool) -> bool:
    """Whether ``p`` exists; a name the system refuses (too long) is a one-line error."""
    try:
        return p.exists()
    except OSError as exc:
        if create:
            raise creation_error(p, exc) from exc
        raise StoreError(f"cannot open {p}: {exc.strerror or exc}") from exc


class Store(ForkSafe):
    """An open .mfdb file.

    Parameters
    ----------
    path
        The file. ``":memory:"`` gives a private in-memory store.
    create
        Create (and initialize) the file if it does not exist. Readers pass False: a
        missing file raises ``MetaflowNotFound`` and nothing is created.
    readonly
        None (default): read-only exactly when the file or its directory is not
        writable. True forces read-only.
    reader
        Open only to read (the Client API, ``mfstore`` listing, ``sql``, ``verify``,
        ``stats``): the file is never changed - no journal-mode switch, no migration
        (an older format raises ``NeedsUpgradeError``), no ``-wal``/``-shm`` left
        beside a file that had none. An explicit ``write()`` (a tag edit through the
        Client API) still works on a writable file, in the file's own journal mode.
    salvage
        Open a file whose schema holds objects ``schema.sql`` does not create, to copy
        its runs out (``mfstore export``): read-only, and only the data tables are
        checked; ``write()`` is refused. Never use it to browse such a file.
    immutable
        With ``readonly``: open with SQLite's ``immutable=1``, which creates no file
        beside it (no ``-wal``/``-shm``) and sees no later change; for a file nobody is
        writing (no ``-wal`` beside it). ``mfstore ui`` reopens when that changes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = False,
        readonly: bool | None = None,
        reader: bool = False,
        salvage: bool = False,
        immutable: bool = False,
        tracer: Tracer | None = None,
    ) -> None:
        self._tracers: list[Tracer] = [tracer] if tracer is not None else []
        self.immutable = immutable
        self.reader = reader or salvage
        self.salvage = salvage
        self._had_wal = True
        self._deadline: float | None = None
        self._depth = 0
        self._savepoint_seq = 0
        self._bulk = False
        self._memo: dict[Any, Any] = {}
        self._memo_version: int | None = None
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._detached = False
        self._closed = False
        self._checkpointer: Checkpointer | None = None
        self.memory = str(path) == ":memory:"
        self.path = Path(path) if not self.memory else Path(":memory:")
        if self.memory:
            self.readonly = False
            self._conn = apsw.Connection(":memory:")
            self._configure(wal=False)
            initialize_or_check(self)
            return
        p = self.path
        in_place = False
        forget_inherited()  # in a forked child, before opening the file again
        if not _exists(p, create):
            if not create:
                raise MetaflowNotFound(f"{p} does not exist")
            if readonly:
                raise StoreReadOnlyError(f"{p} does not exist and cannot be created read-only")
            if not p.absolute().parent.is_dir():
                raise StoreError(
                    f"cannot create {p}: the directory {p.absolute().parent} does not exist"
                )
            if not os.access(p.parent if str(p.parent) else ".", os.W_OK):
                raise StoreReadOnlyError(
                    f"cannot create {p}: its directory is not writable; choose another place "
                    f"(set {MFSTORE_DB} or pass --mfdb)"
                )
            if self.reader:
                raise MetaflowNotFound(f"{p} does not exist")
            # Made complete under a temporary name and published atomically: a reader
            # never sees it half made, a kill -9 leaves no file (store.publish).
            in_place = publish_new(p, build_new_file) is None
        if not in_place:
            check_existing(p)
        self.readonly = (not is_writable(p)) if readonly is None else readonly
        self._ro_connection = self.readonly
        if salvage:
            self.readonly = True  # write() refuses; triggers are off on every connection
        self._conn = self._open(p)
        try:
            self._configure(wal=False)
            initialize_or_check(self)
            if not self.readonly and not self.reader:
                # Only after the file passed its checks: a refused file stays unchanged.
                policy_wal(self.conn)
                self._checkpoint_in_background()
        except BaseException as exc:
            error = translate_error(exc, p, self.conn) if isinstance(exc, apsw.Error) else None
            self._close_refused()
            if error is not None:
                raise error from exc
            raise
        track(self)

    def _close_refused(self) -> None:
        """Close after a failed open, leaving no -wal/-shm that were not there before."""
        with contextlib.suppress(apsw.Error):
            if not self._had_wal:
                self.conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0)
            self.conn.close()

    # -- opening ----------------------------------------------------------------

    def _open(self, p: Path) -> apsw.Connection:
        # Were -wal/-shm there already? A reader (and a refused open) leaves none behind
        # that was not: SQLite removes them when the last connection closes.
        self._had_wal = os.path.exists(str(p) + "-wal") or os.path.exists(str(p) + "-shm")
        return open_connection(
            p, reader=self.reader, read_only=self._ro_connection, immutable=self.immutable
        )

    def _configure(self, *, wal: bool) -> None:
        try:
            policy_untrusted_file(self.conn)
            policy_busy_timeout(self.conn)
            if not self.reader or self._had_wal:
                policy_no_checkpoint_on_close(self.conn)
            policy_foreign_keys(self.conn)
            policy_memory(self.conn)
            if wal and not self.reader:
                policy_wal(self.conn)
                self._checkpoint_in_background()
        except apsw.Error as exc:
            raise translate_error(exc, self.path, self.conn) from exc
        self.conn.set_progress_handler(self._progress, PROGRESS_STEPS)
        self.conn.exec_trace = self._trace if self._tracers else None

    def _checkpoint_in_background(self) -> None:
        # A writer's commits leave checkpoints to a thread (store.background): SQLite's
        # auto-checkpoint would copy a large write into the main file inside its COMMIT.
        if self._checkpointer is None:
            # (by its absolute path: the thread opens it later, maybe after a chdir)
            self._checkpointer = Checkpointer(self.path.absolute())
        self.conn.set_wal_hook(self._wal_committed)

    def _wal_committed(self, _conn: apsw.Connection, _db: str, pages: int) -> int:
        # Runs after the transaction is committed: an error here would make the COMMIT
        # that succeeded raise, so nothing may escape.
        if pages >= CHECKPOINT_PAGES and self._checkpointer is not None:
            with contextlib.suppress(Exception):
                self._checkpointer.kick()
        return apsw.SQLITE_OK

    def _put_aside(self) -> None:
        super()._put_aside()
        if self._checkpointer is not None:
            self._checkpointer.put_aside()

    def _progress(self) -> bool:
        # Called every PROGRESS_STEPS VM steps. Being Python code, it also lets a pending
        # Ctrl-C raise KeyboardInterrupt here, which stops the statement.
        return self._deadline is not None and time.monotonic() > self._deadline

    @contextlib.contextmanager
    def time_limit(self, seconds: float | None) -> Iterator[None]:
        """Statements started inside stop with ``QueryInterrupted`` after ``seconds``."""
        old = self._deadline
        self._deadline = None if seconds is None else time.monotonic() + seconds
        try:
            yield
        finally:
            self._deadline = old

    @contextlib.contextmanager
    def only_reading(self) -> Iterator[None]:
        """Statements run inside may only read (``mfstore sql``): an authorizer refuses,
        before they run, statements that would write to this file or any other
        (``VACUUM INTO``, ``ATTACH``, PRAGMA setters), and ``query_only`` backs it up."""
        self.conn.execute("PRAGMA query_only = ON")
        self.conn.authorizer = read_only_authorizer
        try:
            yield
        finally:
            self.conn.authorizer = None
            self.conn.execute("PRAGMA query_only = OFF")

    def translate(self, exc: BaseException) -> BaseException:
        """The one-line mfstore error for a driver error raised while stepping a cursor
        this store returned (other exceptions are returned as they are)."""
        return translate_error(exc, self.path, self.conn) if isinstance(exc, apsw.Error) else exc

    def interrupt(self) -> None:
        """Stop the statement running on this store's connection (from another thread)."""
        self.conn.interrupt()

    def _trace(self, cursor: Any, sql: str, bindings: Any) -> bool:
        for fn in list(self._tracers):
            fn(sql, bindings)
        return True

    @contextlib.contextmanager
    def tracer(self, fn: Tracer) -> Iterator[Store]:
        """Call ``fn(sql, params)`` for every statement this store runs inside the block::

        seen = []
        with store.tracer(lambda sql, params: seen.append(sql)):
            Flow("HelloFlow").latest_run
        print(len(seen), "statements")
        """
        self._tracers.append(fn)
        self.conn.exec_trace = self._trace
        try:
            yield self
        finally:
            self._tracers.remove(fn)
            if not self._tracers:
                self.conn.exec_trace = None

    # -- statements -------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> apsw.Cursor:
        """Run one statement and return its cursor (errors translated)."""
        try:
            return self.conn.execute(sql, params)
        except apsw.Error as exc:
            raise translate_error(exc, self.path, self.conn) from exc

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of one statement."""
        try:
            return list(self.conn.execute(sql, params))
        except apsw.Error as exc:
            raise translate_error(exc, self.path, self.conn) from exc

    def table(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and all rows of one statement (no columns: a statement without
        a result set); errors raised while stepping are translated too."""
        try:
            cursor = self.conn.execute(sql, params)
            try:
                columns = [d[0] for d in cursor.description]
            except apsw.ExecutionCompleteError:
                return [], []
            return columns, [tuple(r) for r in cursor]
        except apsw.Error as exc:
            raise translate_error(exc, self.path, self.conn) from exc

    def columns(self, sql: str, cursor: apsw.Cursor | None = None) -> list[str]:
        """Column names of the result of ``sql``, also when it gives no row (none: a
        statement without a result set): from ``cursor`` (``execute(sql)``'s) while it
        has rows to give, else from ``sql`` prepared again and never run."""
        if cursor is not None:
            with contextlib.suppress(apsw.Error):  # done, or no result set
                return [d[0] for d in cursor.description]
        try:
            return statement_columns(self.conn, sql)
        except apsw.Error as exc:
            raise translate_error(exc, self.path, self.conn) from exc

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> tuple[Any, ...] | None:
        """First row of one statement, or None."""
        try:
            for row in self.conn.execute(sql, params):
                return tuple(row)
        except apsw.Error as exc:
            raise translate_error(exc, self.path, self.conn) from exc
        return None

    def scalar(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        """First column of the first row, or None."""
        row = self.one(sql, params)
        return None if row is None else row[0]

    def read_blob(self, table: str, column: str, rowid: int) -> bytes:
        """The whole value of one BLOB cell, read incrementally (no statement copy)."""
        try:
            with self.conn.blob_open("main", table, column, rowid, False) as blob:
                data: bytes = blob.read()
        except apsw.Error as exc:
            raise translate_error(exc, self.path, self.conn) from exc
        return data

    def blob_reader(self, table: str, column: str, rowid: int) -> BlobReader:
        """A file-like reader of one BLOB cell (``read(n)``), for streaming large values;
        use it inside ``read()`` and close it."""
        try:
            return BlobReader(self.conn.blob_open("main", table, column, rowid, False), self.path)
        except apsw.Error as exc:
            raise translate_error(exc, self.path, self.conn) from exc

    def write_blob(self, table: str, column: str, rowid: int, data: Any) -> None:
        """Write ``data`` (any buffer) over one BLOB cell of exactly its length (made with
        ``zeroblob(n)``), straight into the file's pages: a large value is not copied into
        a bound parameter and a record first. Inside ``write()``."""
        try:
            with self.conn.blob_open("main", table, column, rowid, True) as blob:
                blob.write(data)
        except apsw.Error as exc:
            raise translate_error(exc, self.path, self.conn) from exc

    def insert(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one INSERT and return the new row's rowid."""
        self.execute(sql, params)
        return int(self.conn.last_insert_rowid())

    def change(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one UPDATE or DELETE and return the number of rows it changed."""
        self.execute(sql, params)
        return int(self.conn.changes())

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per row."""
        try:
            self.conn.executemany(sql, rows)
        except apsw.Error as exc:
            raise translate_error(exc, self.path, self.conn) from exc

    # -- transactions -----------------------------------------------------------

    @contextlib.contextmanager
    def write(self) -> Iterator[Store]:
        """A write transaction: ``BEGIN IMMEDIATE``; nested blocks are savepoints.

        Waiting for other writers is bounded: SQLite's busy timeout, then retries with
        jittered backoff up to ``WRITE_RETRY_SECONDS``, then ``StoreBusyError``. The
        block is committed when it exits normally and rolled back on any exception.
        """
        if self.readonly:
            raise StoreReadOnlyError(
                f"{self.path} is open read-only (the file or its directory is not writable): "
                "copy it somewhere writable to change it"
            )
        if self._pid != os.getpid():
            self._enter_child()  # before the lock: a parent thread may have held it at fork()
        if written_at_fork(self.path):
            raise StoreBusyError(
                f"{self.path} was being written by the parent process when this one was "
                "forked, so this process can only read it: write from a process started "
                "afresh (e.g. multiprocessing's 'spawn' start method)"
            )
        with self._lock:
            if self._depth > 0 and self._bulk:
                yield self
                return
            if self._depth > 0:
                self._savepoint_seq += 1
                name = f"mf_sp_{self._savepoint_seq}"
                self.execute("SAVEPOINT " + name)
                self._depth += 1
                try:
                    yield self
                except BaseException:
                    self.execute("ROLLBACK TO " + name)
                    self.execute("RELEASE " + name)
                    raise
                else:
                    self.execute("RELEASE " + name)
                finally:
                    self._depth -= 1
                return
            self._begin_immediate()
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                with contextlib.suppress(apsw.Error):
                    self.conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self._commit()
            self._memo.clear()

    @contextlib.contextmanager
    def bulk(self) -> Iterator[Store]:
        """One write transaction for many writes (importers, builders, merges).

        ``write()`` blocks inside it join the transaction without savepoints: an error
        inside the block must leave it, which rolls everything in it back.
        """
        with self.write():
            outer = self._bulk
            self._bulk = True
            try:
                yield self
            finally:
                self._bulk = outer

    def _begin_immediate(self) -> None:
        deadline = time.monotonic() + WRITE_RETRY_SECONDS
        delay = 0.01
        while True:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                return
            except (apsw.BusyError, apsw.LockedError) as exc:
                if time.monotonic() > deadline:
                    raise StoreBusyError(
                        f"{self.path} stayed locked by other writers for "
                        f"{WRITE_RETRY_SECONDS:.0f} s: another process is "
                        "holding a long write; try again when it has finished"
                    ) from exc
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.5)
            except apsw.Error as exc:
                raise translate_error(exc, self.path, self.conn) from exc

    def _commit(self) -> None:
        deadline = time.monotonic() + WRITE_RETRY_SECONDS
        while True:
            try:
                self.conn.execute("COMMIT")
                return
            except apsw.BusyError as exc:
                if time.monotonic() > deadline:
                    with contextlib.suppress(apsw.Error):
                        self.conn.execute("ROLLBACK")
                    raise StoreBusyError(
                        f"{self.path}: could not commit, the file stayed busy"
                    ) from exc
                time.sleep(0.05)
            except apsw.Error as exc:
                with contextlib.suppress(apsw.Error):
                    self.conn.execute("ROLLBACK")
                raise translate_error(exc, self.path, self.conn) from exc

    @contextlib.contextmanager
    def read(self) -> Iterator[Store]:
        """A consistent read snapshot across several statements (no-op when nested)."""
        if self._pid != os.getpid():
            self._enter_child()  # before the lock: a parent thread may have held it at fork()
        with self._lock:
            if self._depth > 0 or not self.conn.get_autocommit():
                yield self
                return
            self.execute("BEGIN")
            self._depth = 1
            try:
                yield self
            finally:
                self._depth = 0
                with contextlib.suppress(apsw.Error):
                    self.conn.execute("COMMIT")

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()``, remembered until the file changes (a commit by any connection:
        SQLite's data_version, plus this store's own writes). For small derived facts
        read on hot paths (tag-set counts, namespace checks), never for user data."""
        # PRAGMA data_version (not the pager's cached counter) sees other connections' commits.
        version = self.scalar("PRAGMA data_version")
        if version != self._memo_version:
            self._memo.clear()
            self._memo_version = version
        try:
            return self._memo[key]
        except KeyError:
            value = self._memo[key] = compute()
            return value

    @property
    def in_transaction(self) -> bool:
        """True inside ``read()`` or ``write()``."""
        return self._depth > 0

    # -- maintenance ------------------------------------------------------------

    def checkpoint(self, *, wait: bool = True) -> bool:
        """Fold the write-ahead log into the main file (so ``cp`` carries everything).

        ``wait=True`` (end of a run) retries a TRUNCATE checkpoint while readers hold old
        snapshots, for at most ``CHECKPOINT_WAIT_SECONDS``; ``wait=False`` (small edits
        such as tags) does one PASSIVE checkpoint that never waits. Returns True when the
        whole log was folded in.
        """
        if self.readonly or self.memory:
            return True
        conn = self.conn  # in a forked child, first its own connection (and checkpointer)
        cp = self._checkpointer
        if not wait or cp is None:
            return checkpoint_wal(conn, self.path, wait=wait)
        # This store's background checkpoint would hold the log's checkpoint lock and make
        # this one busy for as long as it copies: stop it, and fold everything in here.
        cp.pause()
        try:
            return checkpoint_wal(conn, self.path, wait=True)
        finally:
            cp.resume()

    def wait_checkpoints(self, timeout: float = 30.0) -> bool:
        """Wait until the checkpoint the last commits asked for (run in the background, see
        ``store.background``) has finished; True if none is pending or running."""
        cp = self._checkpointer
        return cp is None or cp.wait_idle(timeout)

    def close(self) -> None:
        """Close the connection. The main file holds every committed transaction that was
        checkpointed (every ended run); -wal/-shm may stay beside it (see the policy above)."""
        if self._pid != os.getpid():
            forget_inherited()  # an inherited connection is put aside, never reopened
        if not self.memory:
            self._closed = True
            untrack(self)
        if self._checkpointer is not None:
            self._checkpointer.close()
        if self._detached:
            return
        with contextlib.suppress(apsw.Error):
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "Store({!r}{})".format(str(self.path), ", readonly" if self.readonly else "")

"""The one module that opens SQLite connections and starts transactions.

``Store(path)`` validates the file before SQLite touches it (header, application_id,
user_version, length), applies the connection policy, migrates older formats forward
in one transaction, and offers ``store.write()`` (``BEGIN IMMEDIATE`` with bounded
retry; nested blocks become savepoints) and ``store.read()`` (one consistent
snapshot). apsw errors are translated into ``mfstore.exception`` here and nowhere else.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import struct
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import apsw

from . import schema as _schema
from .exception import (
    MetaflowNotFound,
    NeedsUpgradeError,
    NotAnMfdbError,
    QueryInterrupted,
    SchemaTooNewError,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreReadOnlyError,
    TruncatedFileError,
    disk_full,
    is_no_room,
)
from .migrations import APPLICATION_ID, FORMAT_VERSION, OLDEST_FORMAT, apply_migrations, initialize

__all__ = ["APPLICATION_ID", "FORMAT_VERSION", "OLDEST_FORMAT", "Store", "Tracer"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
#: How long one BEGIN IMMEDIATE waits inside SQLite for the write lock (ms).
BUSY_TIMEOUT_MS = 5_000
#: Total time a write keeps retrying (with backoff) before StoreBusyError.
WRITE_RETRY_SECONDS = 120.0
#: How long the end of a run keeps trying to fold the WAL in while readers are busy.
CHECKPOINT_WAIT_SECONDS = 10.0
_MASTER_SQL = "SELECT type, name, tbl_name, sql FROM sqlite_master"
#: SQLite VM steps between two calls of the progress handler (Ctrl-C and time limits
#: stop a long query there).
PROGRESS_STEPS = 20_000

Tracer = Callable[[str, Sequence[Any] | dict[str, Any] | None], None]


# -- connection policy (named steps, as in apsw's bestpractice) ---------------------


def _policy_foreign_keys(conn: apsw.Connection) -> None:
    conn.execute("PRAGMA foreign_keys = ON")


def _policy_no_checkpoint_on_close(conn: apsw.Connection) -> None:
    # Issue 7 crash tests: with SQLite's default checkpoint-and-delete-WAL when the last
    # connection closes, runs committed just before the runtime was SIGKILLed (while
    # its forked task processes and readers were closing connections) vanished from the
    # file in ~1 of 20 trials. Checkpoints happen only when asked (Store.checkpoint, at
    # the end of every run) and by SQLite's auto-checkpoint inside commits; the -wal and
    # -shm files may therefore stay next to the file after it is closed.
    conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)


def _policy_untrusted_file(conn: apsw.Connection) -> None:
    # Every file may come from someone else (issue 12): SQLite's defensive mode (no
    # writable_schema, no direct shadow-table or page edits), functions in the schema
    # limited to innocuous ones (trusted_schema off), no extension loading, and no
    # triggers at all (schema.sql creates none; Store.__init__ refuses files that have one).
    conn.config(apsw.SQLITE_DBCONFIG_DEFENSIVE, 1)
    conn.config(apsw.SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0)
    conn.config(apsw.SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0)
    conn.enable_load_extension(False)
    conn.config(apsw.SQLITE_DBCONFIG_ENABLE_TRIGGER, 0)


#: PRAGMAs ad-hoc SQL may run: reading ones only (with an argument: introspection only).
_READ_PRAGMAS = frozenset(
    {
        "application_id", "collation_list", "compile_options", "data_version",
        "database_list", "encoding", "foreign_key_check", "foreign_key_list",
        "foreign_keys", "freelist_count", "function_list", "index_info", "index_list",
        "index_xinfo", "integrity_check", "journal_mode", "module_list", "page_count",
        "page_size", "pragma_list", "quick_check", "schema_version", "table_info",
        "table_list", "table_xinfo", "user_version",
    }
)  # fmt: skip
_INTROSPECTION_PRAGMAS = frozenset(
    {
        "foreign_key_check", "foreign_key_list", "index_info", "index_list",
        "index_xinfo", "integrity_check", "quick_check", "table_info", "table_list",
        "table_xinfo",
    }
)  # fmt: skip
_READ_ACTIONS = frozenset(
    {apsw.SQLITE_SELECT, apsw.SQLITE_READ, apsw.SQLITE_RECURSIVE, apsw.SQLITE_FUNCTION}
)


def _read_only_authorizer(
    action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None
) -> int:
    """SQLite authorizer of ad-hoc SQL: reading is allowed, anything that could write
    anywhere (INSERT ... DROP, ATTACH and so VACUUM INTO, PRAGMA setters, transactions)
    is denied before the statement runs."""
    if action in _READ_ACTIONS:
        return apsw.SQLITE_OK
    if action == apsw.SQLITE_PRAGMA and arg1 is not None:
        name = arg1.lower()
        if name in _READ_PRAGMAS and (arg2 is None or name in _INTROSPECTION_PRAGMAS):
            return apsw.SQLITE_OK
    return apsw.SQLITE_DENY


def _policy_busy_timeout(conn: apsw.Connection) -> None:
    conn.set_busy_timeout(BUSY_TIMEOUT_MS)


def _policy_wal(conn: apsw.Connection) -> None:
    # WAL: readers never block the writer; NORMAL sync is durable against process
    # crashes (kill -9), which is the failure the file must survive.
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")


def _policy_memory(conn: apsw.Connection) -> None:
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -32000")


# -- header checks (before SQLite sees the file) ----------------------------------


#: How long an apparently truncated file is re-read before the header is believed: a
#: checkpoint in another process writes page 1 (with the new page count) before the
#: pages that extend the file (issue 7). Longer while the file is in use (has a -wal).
_SETTLE_SECONDS = 0.2
_SETTLE_SECONDS_IN_USE = 2.0


def _check_header(path: Path) -> None:
    """Raise a one-line error if ``path`` is not a (complete) .mfdb; read-only."""
    start = time.monotonic()
    while True:
        try:
            _check_header_once(path)
            return
        except TruncatedFileError:
            waited = time.monotonic() - start
            if not os.path.exists(str(path) + "-wal"):
                if waited > _SETTLE_SECONDS:
                    raise  # nobody is writing it: a short file is an incomplete copy
            elif waited > _SETTLE_SECONDS_IN_USE:
                # A live file whose header stays ahead of its length: let SQLite judge
                # it (it reads the WAL too) rather than refuse a file in use.
                return
            time.sleep(0.01)


def _check_header_once(path: Path) -> None:
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb") as fh:
        header = fh.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise NotAnMfdbError(
            f"{path} is not an mfstore file (not an SQLite database): check the path, "
            "or choose another file name for a new .mfdb"
        )
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    change_counter, n_pages = struct.unpack(">II", header[24:32])
    version_valid_for = struct.unpack(">I", header[92:96])[0]
    user_version = struct.unpack(">i", header[60:64])[0]
    app_id = struct.unpack(">i", header[68:72])[0]
    if app_id != APPLICATION_ID:
        raise NotAnMfdbError(
            f"{path} is an SQLite database but not an mfstore file (application_id {app_id & 0xFFFFFFFF:#x}): "
            "check the path, or choose another file name for a new .mfdb"
        )
    if change_counter == version_valid_for and n_pages and size < n_pages * page_size:
        raise TruncatedFileError(
            f"{path} is truncated ({size} of {n_pages * page_size} bytes): it is an incomplete copy; copy it again "
            "from its source (use `mfstore snapshot` to copy a file that is being written)"
        )
    if user_version > FORMAT_VERSION:
        raise SchemaTooNewError(
            f"{path} was written by a newer mfstore (file format {user_version}, this mfstore reads up to {FORMAT_VERSION}): "
            "upgrade mfstore (pip install -U mfstore)"
        )


#: Every open file-backed Store of this process (see ``_close_before_fork``).
_open_stores: weakref.WeakSet[Store] = weakref.WeakSet()


def _close_before_fork() -> None:
    # SQLite must not be carried across fork() (https://sqlite.org/howtocorrupt.html,
    # section 2.6): the child inherits the parent's in-memory lock and WAL-index state
    # but not its POSIX locks, so a connection the child opens to the same file believes
    # it holds locks it does not. With the runtime forking task processes that read the
    # file, a commit made just before the runtime was SIGKILLed could then vanish from
    # readers (issue 7, crash tests). Closing idle connections around fork() keeps
    # SQLite's per-process state out of the child; they reopen right after.
    for store in list(_open_stores):
        store._detach()


def _reopen_after_fork() -> None:
    for store in list(_open_stores):
        store._reattach()


def _close_readers_at_exit() -> None:
    # Readers leave no -wal/-shm beside a file that had none: SQLite removes them when
    # the last connection closes, so close reading connections before the process ends.
    for store in list(_open_stores):
        if store.reader:
            store.close()


atexit.register(_close_readers_at_exit)

os.register_at_fork(
    before=_close_before_fork, after_in_parent=_reopen_after_fork, after_in_child=_reopen_after_fork
)


def _is_writable(path: Path) -> bool:
    directory = path.parent if str(path.parent) else Path(".")
    if path.exists() and not os.access(path, os.W_OK):
        return False
    return os.access(directory, os.W_OK)


class Store:
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
        self.memory = str(path) == ":memory:"
        self.path = Path(path) if not self.memory else Path(":memory:")
        if self.memory:
            self.readonly = False
            self.conn = apsw.Connection(":memory:")
            self._configure(wal=False)
            self._initialize()
            return
        p = self.path
        if not p.exists():
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
                    "(set MFSTORE_DB or pass --mfdb)"
                )
        elif p.is_dir():
            raise NotAnMfdbError(f"{p} is a directory, not an mfstore file")
        else:
            if p.stat().st_size == 0:
                raise NotAnMfdbError(
                    f"{p} is empty (0 bytes), not an mfstore file: remove it or choose "
                    "another file name for a new .mfdb"
                )
            _check_header(p)
        if self.reader and not p.exists():
            raise MetaflowNotFound(f"{p} does not exist")
        self.readonly = (not _is_writable(p)) if readonly is None else readonly
        self._ro_connection = self.readonly
        if salvage:
            self.readonly = True  # write() refuses; triggers are off on every connection
        self.conn = self._open(p)
        try:
            self._configure(wal=False)
            self._initialize()
            if not self.readonly and not self.reader:
                # Only after the file passed its checks: a refused file stays unchanged.
                _policy_wal(self.conn)
        except BaseException as exc:
            error = _translate(exc, p, self.conn) if isinstance(exc, apsw.Error) else None
            self._close_refused()
            if error is not None:
                raise error from exc
            raise
        self._detached = False
        self._closed = False
        _open_stores.add(self)

    def _close_refused(self) -> None:
        """Close after a failed open, leaving no -wal/-shm that were not there before."""
        with contextlib.suppress(apsw.Error):
            if not self._had_wal:
                self.conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0)
            self.conn.close()

    # -- fork safety ------------------------------------------------------------

    def _detach(self) -> None:
        """Close the connection for a fork() if it is idle (see ``_close_before_fork``)."""
        if (
            self._closed
            or self._detached
            or self._depth > 0
            or not self._lock.acquire(blocking=False)
        ):
            return
        try:
            if not self.conn.get_autocommit():
                return
            self.conn.close()
            self._detached = True
        except apsw.Error:
            pass  # a statement is still active: keep the connection as it is
        finally:
            self._lock.release()

    def _reattach(self) -> None:
        if not self._detached:
            return
        self._detached = False
        self.conn = self._open(self.path)
        self._configure(wal=not self.readonly)

    # -- opening ----------------------------------------------------------------

    def _open(self, p: Path) -> apsw.Connection:
        flags = apsw.SQLITE_OPEN_URI
        # Were -wal/-shm there already? A reader (and a refused open) leaves none behind
        # that was not: SQLite removes them when the last connection closes.
        self._had_wal = os.path.exists(str(p) + "-wal") or os.path.exists(str(p) + "-shm")
        if self.reader and not self._ro_connection:
            # A reader opens read-write without creating anything: on a WAL file SQLite
            # then removes the -wal/-shm it needed when the last connection closes (and
            # the reader leaves them where they were already: see _configure).
            try:
                return apsw.Connection(
                    f"file:{_uri_path(p)}", flags=flags | apsw.SQLITE_OPEN_READWRITE
                )
            except apsw.Error as exc:
                raise _translate(exc, p) from exc
        if self._ro_connection:
            uri = f"file:{_uri_path(p)}?mode=ro"
            if not p.absolute().parent.is_dir():
                raise StoreError(
                    f"cannot create {p}: the directory {p.absolute().parent} does not exist"
                )
            if self.immutable or (
                not os.access(p.parent if str(p.parent) else ".", os.W_OK)
                and not os.path.exists(str(p) + "-wal")
            ):
                # We cannot write the directory, and no -wal is beside the file: nobody is
                # writing it in WAL mode (a writer always has its -wal there), so it is read
                # as immutable. With a -wal present (someone else is writing), SQLite reads
                # it read-only through the WAL and sees their current data.
                uri += "&immutable=1"
            flags |= apsw.SQLITE_OPEN_READONLY
        else:
            uri = f"file:{_uri_path(p)}"
            flags |= apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
        try:
            return apsw.Connection(uri, flags=flags)
        except apsw.Error as exc:
            raise _translate(exc, p) from exc

    def _configure(self, *, wal: bool) -> None:
        try:
            _policy_untrusted_file(self.conn)
            _policy_busy_timeout(self.conn)
            if not self.reader or self._had_wal:
                _policy_no_checkpoint_on_close(self.conn)
            _policy_foreign_keys(self.conn)
            _policy_memory(self.conn)
            if wal and not self.reader:
                _policy_wal(self.conn)
        except apsw.Error as exc:
            raise _translate(exc, self.path, self.conn) from exc
        self.conn.set_progress_handler(self._progress, PROGRESS_STEPS)
        self.conn.exec_trace = self._trace if self._tracers else None

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
        self.conn.authorizer = _read_only_authorizer
        try:
            yield
        finally:
            self.conn.authorizer = None
            self.conn.execute("PRAGMA query_only = OFF")

    def translate(self, exc: BaseException) -> BaseException:
        """The one-line mfstore error for a driver error raised while stepping a cursor
        this store returned (other exceptions are returned as they are)."""
        return _translate(exc, self.path, self.conn) if isinstance(exc, apsw.Error) else exc

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

    def _initialize(self) -> None:
        """Create the schema in a new file, or check and migrate an existing one."""
        version = self.scalar("PRAGMA user_version")
        app_id = self.scalar("PRAGMA application_id")
        # One read of the schema serves the emptiness test and the schema check.
        master: list[tuple[Any, ...]] | None = self.query(_MASTER_SQL)
        n_objects = len(master or ())
        if n_objects == 0 and version == 0:
            if self.readonly:
                return  # an empty file opened read-only reads as an empty store
            with self.write():
                if self.scalar("SELECT count(*) FROM sqlite_master") == 0:
                    initialize(self)
            # Fold the new header into the main file at once: other processes check
            # application_id in the file header before opening, and in WAL mode it
            # would otherwise stay in the -wal file until the first checkpoint.
            self.checkpoint()
            return
        if app_id != APPLICATION_ID:
            raise NotAnMfdbError(
                f"{self.path} is an SQLite database but not an mfstore file: check the path"
            )
        if version > FORMAT_VERSION:
            raise SchemaTooNewError(
                f"{self.path} was written by a newer mfstore (file format {version}, this mfstore reads up to {FORMAT_VERSION}): "
                "upgrade mfstore (pip install -U mfstore)"
            )
        if version < FORMAT_VERSION:
            if self.reader and not self.salvage:
                raise NeedsUpgradeError(
                    f"{self.path} uses file format {version}; this mfstore reads format "
                    f"{FORMAT_VERSION} and reading never changes a file: run `mfstore upgrade "
                    f"{self.path}` to migrate it (or copy it first)"
                )
            self._check_schema(older=True, rows=master)
            if self.readonly:
                raise StoreReadOnlyError(
                    f"{self.path} uses file format {version} and must be migrated to {FORMAT_VERSION}, but it is read-only: "
                    "copy it somewhere writable first"
                )
            apply_migrations(self, version)
            master = None  # migrated: read the new schema
        self._check_schema(rows=master)

    def _check_schema(
        self, *, older: bool = False, rows: list[tuple[Any, ...]] | None = None
    ) -> None:
        """Refuse a file holding SQL objects schema.sql does not create (see schema.py)."""
        if rows is None:
            rows = self.query(_MASTER_SQL)
        found = _schema.problems(rows, tables_only=self.salvage, older=older)
        if found:
            raise _schema.refuse(self.path, found)

    # -- statements -------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> apsw.Cursor:
        """Run one statement and return its cursor (errors translated)."""
        try:
            return self.conn.execute(sql, params)
        except apsw.Error as exc:
            raise _translate(exc, self.path, self.conn) from exc

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of one statement."""
        try:
            return list(self.conn.execute(sql, params))
        except apsw.Error as exc:
            raise _translate(exc, self.path, self.conn) from exc

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
            raise _translate(exc, self.path, self.conn) from exc

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> tuple[Any, ...] | None:
        """First row of one statement, or None."""
        try:
            for row in self.conn.execute(sql, params):
                return tuple(row)
        except apsw.Error as exc:
            raise _translate(exc, self.path, self.conn) from exc
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
            raise _translate(exc, self.path, self.conn) from exc
        return data

    def blob_reader(self, table: str, column: str, rowid: int) -> BlobReader:
        """A file-like reader of one BLOB cell (``read(n)``), for streaming large values;
        use it inside ``read()`` and close it."""
        try:
            return BlobReader(self.conn.blob_open("main", table, column, rowid, False), self.path)
        except apsw.Error as exc:
            raise _translate(exc, self.path, self.conn) from exc

    def insert(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one INSERT and return the new row's rowid."""
        try:
            self.conn.execute(sql, params)
            return int(self.conn.last_insert_rowid())
        except apsw.Error as exc:
            raise _translate(exc, self.path, self.conn) from exc

    def change(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one UPDATE or DELETE and return the number of rows it changed."""
        try:
            self.conn.execute(sql, params)
            return int(self.conn.changes())
        except apsw.Error as exc:
            raise _translate(exc, self.path, self.conn) from exc

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per row."""
        try:
            self.conn.executemany(sql, rows)
        except apsw.Error as exc:
            raise _translate(exc, self.path, self.conn) from exc

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
                        f"{self.path} stayed locked by other writers for {WRITE_RETRY_SECONDS:.0f} s: another process is "
                        "holding a long write; try again when it has finished"
                    ) from exc
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.5)
            except apsw.Error as exc:
                raise _translate(exc, self.path, self.conn) from exc

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
                raise _translate(exc, self.path, self.conn) from exc

    @contextlib.contextmanager
    def read(self) -> Iterator[Store]:
        """A consistent read snapshot across several statements (no-op when nested)."""
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
        if not wait:
            try:
                log_frames, done_frames = self.conn.wal_checkpoint(
                    mode=apsw.SQLITE_CHECKPOINT_PASSIVE
                )
            except apsw.BusyError:
                return False
            except apsw.Error as exc:
                raise _translate(exc, self.path, self.conn) from exc
            return bool(log_frames == done_frames)
        deadline = time.monotonic() + CHECKPOINT_WAIT_SECONDS
        while True:
            try:
                log_frames, done_frames = self.conn.wal_checkpoint(
                    mode=apsw.SQLITE_CHECKPOINT_TRUNCATE
                )
            except apsw.BusyError:
                pass
            except apsw.Error as exc:
                raise _translate(exc, self.path, self.conn) from exc
            else:
                if log_frames == done_frames:
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def close(self) -> None:
        """Close the connection. The main file holds every committed transaction that was
        checkpointed (every ended run); -wal/-shm may stay beside it (see the policy above)."""
        if not self.memory:
            self._closed = True
            _open_stores.discard(self)
        with contextlib.suppress(apsw.Error):
            self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return "Store({!r}{})".format(str(self.path), ", readonly" if self.readonly else "")


class BlobReader:
    """``read(n)`` / ``readinto`` / ``seek`` over an open SQLite blob (errors translated)."""

    def __init__(self, blob: apsw.Blob, path: Path) -> None:
        self._blob = blob
        self._path = path

    def read(self, n: int = -1) -> bytes:
        try:
            data: bytes = self._blob.read(n)
            return data
        except apsw.Error as exc:
            raise _translate(exc, self._path) from exc

    def seek(self, offset: int) -> None:
        self._blob.seek(offset)

    def length(self) -> int:
        return int(self._blob.length())

    def close(self) -> None:
        with contextlib.suppress(apsw.Error):
            self._blob.close()


def _system_errno(conn: apsw.Connection) -> int | None:
    with contextlib.suppress(apsw.Error, AttributeError):
        return int(conn.system_errno)
    return None


def _uri_path(p: Path) -> str:
    from urllib.parse import quote

    return quote(str(p.absolute()))


def _translate(exc: apsw.Error, path: Path, conn: apsw.Connection | None = None) -> StoreError:
    """One-line mfstore error for an apsw error (``conn``: the connection it came from,
    whose last system errno tells a full disk from other I/O errors)."""
    if isinstance(exc, apsw.InterruptError):
        return QueryInterrupted(
            f"{path}: the query was stopped (Ctrl-C or its time limit); narrow it, or give "
            "it more time"
        )
    if isinstance(exc, apsw.AuthError):
        return StoreReadOnlyError(
            f"{path}: only reading is allowed here; the statement would change a file and was "
            "refused before it ran (nothing was changed)"
        )
    if isinstance(exc, apsw.FullError) or (
        isinstance(exc, apsw.IOError) and conn is not None and is_no_room(_system_errno(conn))
    ):
        # SQLite reports ENOSPC as SQLITE_FULL, a write stopped by a size limit (EFBIG,
        # EDQUOT) as an I/O error: both are a full disk to the user.
        return disk_full(
            path,
            "the write in progress was rolled back and everything committed before it is kept",
        )
    if isinstance(exc, apsw.ReadOnlyError):
        return StoreReadOnlyError(
            f"{path} cannot be written (read-only file or place): copy it somewhere writable"
        )
    if isinstance(exc, apsw.NotADBError):
        return NotAnMfdbError(
            f"{path} is not an mfstore file (not an SQLite database): check the path"
        )
    if isinstance(exc, apsw.CorruptError):
        return StoreCorruptError(
            f"{path} is damaged ({exc}): run `mfstore verify {path}`, and use a good copy"
        )
    if isinstance(exc, (apsw.BusyError, apsw.LockedError)):
        return StoreBusyError(f"{path} is locked by another process: try again")
    if isinstance(exc, apsw.CantOpenError):
        return StoreError(f"cannot open {path}: {exc}")
    if isinstance(exc, apsw.IOError):
        return StoreError(f"{path}: I/O error ({exc}); is the disk full or removed?")
    if isinstance(exc, apsw.ConstraintError):
        return StoreError(f"{path}: {exc}")
    return StoreError(f"{path}: {exc}")

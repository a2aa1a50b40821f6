"""A SQLite connection's policy and driver edges: the named connection settings, the
read-only authorizer of ad-hoc SQL, blob reads, a statement's columns, and apsw errors -> ``mfstore.exception``."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import apsw

from ..exception import (
    NotAnMfdbError,
    QueryInterrupted,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreReadOnlyError,
    disk_full,
    is_no_room,
)

#: How long one BEGIN IMMEDIATE waits inside SQLite for the write lock (ms).
BUSY_TIMEOUT_MS = 5_000


# -- connection policy (named steps, as in apsw's bestpractice) ---------------------


def policy_foreign_keys(conn: apsw.Connection) -> None:
    conn.execute("PRAGMA foreign_keys = ON")


def policy_no_checkpoint_on_close(conn: apsw.Connection) -> None:
    # Issue 7 crash tests: with SQLite's default checkpoint-and-delete-WAL when the last
    # connection closes, runs committed just before the runtime was SIGKILLed (while
    # its forked task processes and readers were closing connections) vanished from the
    # file in ~1 of 20 trials. Checkpoints happen only when asked (Store.checkpoint, at
    # the end of every run) and by SQLite's auto-checkpoint inside commits; the -wal and
    # -shm files may therefore stay next to the file after it is closed.
    conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)


def policy_untrusted_file(conn: apsw.Connection) -> None:
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


def read_only_authorizer(
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


def policy_busy_timeout(conn: apsw.Connection) -> None:
    conn.set_busy_timeout(BUSY_TIMEOUT_MS)


def policy_wal(conn: apsw.Connection) -> None:
    # WAL: readers never block the writer; NORMAL sync is durable against process
    # crashes (kill -9), which is the failure the file must survive.
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")


def policy_memory(conn: apsw.Connection) -> None:
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -32000")


def is_writable(path: Path) -> bool:
    directory = path.parent if str(path.parent) else Path(".")
    if path.exists() and not os.access(path, os.W_OK):
        return False
    return os.access(directory, os.W_OK)


def open_connection(p: Path, *, reader: bool, read_only: bool, immutable: bool) -> apsw.Connection:
    """Open ``p``: read-write without creating anything for a ``reader`` on a writable
    file, read-only (immutable when nobody can be writing it) for ``read_only``, else
    read-write, creating the file."""
    flags = apsw.SQLITE_OPEN_URI
    if reader and not read_only:
        # A reader opens read-write without creating anything: on a WAL file SQLite
        # then removes the -wal/-shm it needed when the last connection closes (and
        # the reader leaves them where they were already: see _configure).
        try:
            return apsw.Connection(f"file:{uri_path(p)}", flags=flags | apsw.SQLITE_OPEN_READWRITE)
        except apsw.Error as exc:
            raise translate_error(exc, p) from exc
    if read_only:
        uri = f"file:{uri_path(p)}?mode=ro"
        if not p.absolute().parent.is_dir():
            raise StoreError(f"cannot open {p}: the directory {p.absolute().parent} does not exist")
        if immutable or (
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
        uri = f"file:{uri_path(p)}"
        flags |= apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    try:
        return apsw.Connection(uri, flags=flags)
    except apsw.Error as exc:
        raise translate_error(exc, p) from exc


def build_new_file(tmp: Path) -> None:
    """Write a new file's schema into the empty file ``tmp`` (``store.publish`` then
    gives it its name): one committed transaction, then WAL mode, then closed, leaving
    nothing beside it. The file is already an .mfdb in WAL mode when it appears."""
    from ..migrations import initialize

    conn = apsw.Connection(
        f"file:{uri_path(tmp)}", flags=apsw.SQLITE_OPEN_URI | apsw.SQLITE_OPEN_READWRITE
    )
    try:
        policy_untrusted_file(conn)
        policy_foreign_keys(conn)
        # No journal, no syncs: nobody else knows this file until it is published, a
        # crash leaves only the temporary name, and it is fsynced before publishing.
        conn.execute("PRAGMA journal_mode = MEMORY")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN IMMEDIATE")
        initialize(_NewFile(tmp, conn))
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")
    except apsw.Error as exc:
        raise translate_error(exc, tmp, conn) from exc
    finally:
        conn.close()


class _NewFile:
    """What ``migrations.initialize`` needs of the file (inside a transaction)."""

    def __init__(self, path: Path, conn: apsw.Connection) -> None:
        self.path = path
        self.conn = conn

    def write(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def scalar(self, sql: str, params: Any = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self.conn.execute(sql, params)


#: How long the end of a run keeps trying to fold the WAL in while readers are busy.
CHECKPOINT_WAIT_SECONDS = 10.0


def checkpoint_wal(conn: apsw.Connection, path: Path, *, wait: bool) -> bool:
    """Fold the write-ahead log into the main file (see ``Store.checkpoint``); True when
    the whole log was folded in."""
    if not wait:
        try:
            log_frames, done_frames = conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
        except apsw.BusyError:
            return False
        except apsw.Error as exc:
            raise translate_error(exc, path, conn) from exc
        return bool(log_frames == done_frames)
    deadline = time.monotonic() + CHECKPOINT_WAIT_SECONDS
    while True:
        try:
            log_frames, done_frames = conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_TRUNCATE)
        except apsw.BusyError:
            pass
        except apsw.Error as exc:
            raise translate_error(exc, path, conn) from exc
        else:
            if log_frames == done_frames:
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


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
            raise translate_error(exc, self._path) from exc

    def seek(self, offset: int) -> None:
        self._blob.seek(offset)

    def length(self) -> int:
        return int(self._blob.length())

    def close(self) -> None:
        with contextlib.suppress(apsw.Error):
            self._blob.close()


def statement_columns(conn: apsw.Connection, sql: str) -> list[str]:
    """Column names of the first statement in ``sql``, read from it prepared, never run
    (an exec tracer refuses it before its first step)."""
    names: list[str] = []

    def capture(cursor: apsw.Cursor, _sql: str, _bindings: object) -> bool:
        with contextlib.suppress(apsw.Error):  # no result set (e.g. a PRAGMA setter)
            names.extend(d[0] for d in cursor.description)
        return False

    probe = conn.cursor()
    probe.exec_trace = capture
    with contextlib.suppress(apsw.ExecTraceAbort):
        probe.execute(sql)
    return names


def uri_path(p: Path) -> str:
    from urllib.parse import quote

    return quote(str(p.absolute()))


def _system_errno(conn: apsw.Connection) -> int | None:
    with contextlib.suppress(apsw.Error, AttributeError):
        return int(conn.system_errno)
    return None


def translate_error(exc: apsw.Error, path: Path, conn: apsw.Connection | None = None) -> StoreError:
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
    return StoreError(f"{path}: {exc}")

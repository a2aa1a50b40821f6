"""What a file must pass before and while it is opened: the header (before SQLite sees
the file), then a new file's schema, or an existing one's format and schema (migrated
forward in one transaction)."""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path
from typing import Any, Protocol

from .. import schema as _schema
from ..exception import (
    MetaflowNotFound,
    NeedsUpgradeError,
    NotAnMfdbError,
    SchemaTooNewError,
    StoreError,
    StoreReadOnlyError,
    TruncatedFileError,
)
from ..migrations import (
    APPLICATION_ID,
    FORMAT_VERSION,
    MigrationTarget,
    apply_migrations,
    initialize,
)

SQLITE_MAGIC = b"SQLite format 3\x00"
MASTER_SQL = "SELECT type, name, tbl_name, sql FROM sqlite_master"


class CheckedFile(MigrationTarget, Protocol):
    """What the open-time checks need of an open file (``Store`` provides it)."""

    readonly: bool
    reader: bool
    salvage: bool

    def query(self, sql: str, params: Any = ()) -> list[Any]: ...

    def checkpoint(self) -> bool: ...


# -- header checks (before SQLite sees the file) ----------------------------------


#: How long an apparently truncated file is re-read before the header is believed: a
#: checkpoint in another process writes page 1 (with the new page count) before the
#: pages that extend the file (issue 7). Longer while the file is in use (has a -wal).
SETTLE_SECONDS = 0.2
SETTLE_SECONDS_IN_USE = 2.0


def check_existing(path: Path) -> None:
    """Raise a one-line error if the existing ``path`` is not an .mfdb (before SQLite
    opens it). mfstore publishes new files complete (``store.publish``), so an empty
    file was made by another program, or by an mfstore that created files in place
    (older versions, or a file system without hard links): it is given a moment to fill
    in case one is creating it, then refused - never initialised."""
    if path.is_dir():
        raise NotAnMfdbError(f"{path} is a directory, not an mfstore file")
    start = time.monotonic()
    while _size(path) == 0:
        if time.monotonic() - start > SETTLE_SECONDS:
            raise NotAnMfdbError(
                f"{path} is empty (0 bytes), not an mfstore file (mfstore never leaves a new "
                "file empty unless killed while creating it in place): if no process is "
                "writing it, remove it; or choose another file name for a new .mfdb"
            )
        time.sleep(0.01)
    check_header(path)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        if path.is_symlink():
            raise StoreError(
                f"{path} is a symbolic link to a missing file: remove the link, or choose "
                "another file name for a new .mfdb"
            ) from None
        raise MetaflowNotFound(f"{path} does not exist") from None


def check_header(path: Path) -> None:
    """Raise a one-line error if ``path`` is not a (complete) .mfdb; read-only."""
    start = time.monotonic()
    while True:
        try:
            check_header_once(path)
            return
        except TruncatedFileError:
            waited = time.monotonic() - start
            if not os.path.exists(str(path) + "-wal"):
                if waited > SETTLE_SECONDS:
                    raise  # nobody is writing it: a short file is an incomplete copy
            elif waited > SETTLE_SECONDS_IN_USE:
                # A live file whose header stays ahead of its length: let SQLite judge
                # it (it reads the WAL too) rather than refuse a file in use.
                return
            time.sleep(0.01)


def check_header_once(path: Path) -> None:
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb") as fh:
        header = fh.read(100)
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
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
            f"{path} was written by a newer mfstore (file format {user_version}, this mfstore "
            f"reads up to {FORMAT_VERSION}): "
            "upgrade mfstore (pip install -U mfstore)"
        )


def initialize_or_check(store: CheckedFile) -> None:
    """Create the schema in a new file, or check and migrate an existing one."""
    version = store.scalar("PRAGMA user_version")
    app_id = store.scalar("PRAGMA application_id")
    # One read of the schema serves the emptiness test and the schema check.
    n_objects, text = _schema_text(store)
    if n_objects == 0 and version == 0:
        if store.readonly:
            return  # an empty file opened read-only reads as an empty store
        with store.write():
            if store.scalar("SELECT count(*) FROM sqlite_master") == 0:
                initialize(store)
        # Fold the new header into the main file at once: other processes check
        # application_id in the file header before opening, and in WAL mode it
        # would otherwise stay in the -wal file until the first checkpoint.
        store.checkpoint()
        return
    if app_id != APPLICATION_ID:
        raise NotAnMfdbError(
            f"{store.path} is an SQLite database but not an mfstore file: check the path"
        )
    if version > FORMAT_VERSION:
        raise SchemaTooNewError(
            f"{store.path} was written by a newer mfstore (file format {version}, this "
            f"mfstore reads up to {FORMAT_VERSION}): "
            "upgrade mfstore (pip install -U mfstore)"
        )
    if version < FORMAT_VERSION:
        if store.reader and not store.salvage:
            raise NeedsUpgradeError(
                f"{store.path} uses file format {version}; this mfstore reads format "
                f"{FORMAT_VERSION} and reading never changes a file: run `mfstore upgrade "
                f"{store.path}` to migrate it (or copy it first)"
            )
        check_schema(store, older=True)
        if store.readonly:
            raise StoreReadOnlyError(
                f"{store.path} uses file format {version} and must be migrated to "
                f"{FORMAT_VERSION}, but it is read-only: "
                "copy it somewhere writable first"
            )
        apply_migrations(store, version)
        text = _schema_text(store)[1]  # migrated: read the new schema
    check_schema(store, text=text)


def _schema_text(
    store: CheckedFile, sql: str = _schema.SCHEMA_TEXT_SQL
) -> tuple[int, bytes | None]:
    """``(objects in the schema, its text)`` by ``schema.SCHEMA_TEXT_SQL`` (or its sorted
    form); the text is None when SQLite cannot build it (e.g. a planted object too large),
    which the full check names."""
    try:
        ((n_objects, text),) = store.query(sql)
    except StoreError:
        return store.scalar("SELECT count(*) FROM sqlite_master"), None
    return n_objects, text


def check_schema(store: CheckedFile, *, older: bool = False, text: bytes | None = None) -> None:
    """Refuse a file holding SQL objects schema.sql does not create (see schema.py).

    ``text`` is the file's ``schema.SCHEMA_TEXT_SQL`` text when already read. A schema
    equal to one known good costs nothing more; any other gets the full comparison."""
    thorough = older or store.salvage
    if not thorough:
        if text is None:
            text = _schema_text(store)[1]
        if _schema.is_known_good(text):
            return
        if _schema.is_known_good_sorted(_schema_text(store, _schema.SORTED_SCHEMA_TEXT_SQL)[1]):
            _schema.remember_good(text)  # this order too, for later opens in the process
            return
    found = _schema.problems(store.query(MASTER_SQL), tables_only=store.salvage, older=older)
    if found:
        raise _schema.refuse(store.path, found)
    if not thorough:
        _schema.remember_good(text)

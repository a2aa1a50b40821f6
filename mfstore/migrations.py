"""The file format: its identity, its schema text and ordered migrations ``N-1 -> N``.

A ``.mfdb`` is an SQLite database with ``PRAGMA application_id = APPLICATION_ID`` and
``PRAGMA user_version`` = its format version. ``schema.sql`` creates a fresh file of
``FORMAT_VERSION``; ``MIGRATIONS[n]`` turns a format ``n-1`` file into format ``n``.
Each step is a short SQL script with a comment saying why. All pending steps run in one
``BEGIN IMMEDIATE`` transaction: an interrupted migration leaves the file exactly as it was.

Views are derived, not data: they are dropped once before the steps run (so a step may
change any table they read) and created once afterwards from ``schema.sql``, so their
text lives in one place and a migrated file equals a fresh one.

This module opens nothing: ``mfstore.store`` imports it and passes itself in.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from .exception import SchemaTooOldError, StoreCorruptError

#: PRAGMA application_id of every .mfdb file: the ASCII bytes 'mfdb'.
APPLICATION_ID = 0x6D666462
#: Format version written by this mfstore (PRAGMA user_version).
FORMAT_VERSION = 5
#: Oldest format this mfstore can migrate forward.
OLDEST_FORMAT = 1

#: MIGRATIONS[n] turns a format n-1 file into format n.
MIGRATIONS: dict[int, str] = {
    # Format 2 adds the documented mf_* views for ad-hoc SQL (issue 5, docs/sql.md).
    # No table changes: the views themselves are rebuilt after the steps.
    2: "SELECT 1",
    # Format 3, the lean layout (issue 15): a blob's sha is its 20-byte digest and it gets
    # an integer id; what depends only on the bytes (type, JSON form) moves from every
    # artifact row to its blob; the first chunk lives in the blob row; type names and
    # metadata entries are stored once (types, metadata_values). The old tables are
    # renamed away, the new ones created from schema.sql, the rows copied, the old dropped.
    # (A table a later format changes is spelled out here as this format created it.)
    3: """
    DROP INDEX IF EXISTS metadata_by_task;
    ALTER TABLE blobs RENAME TO v2_blobs;
    ALTER TABLE blob_chunks RENAME TO v2_blob_chunks;
    ALTER TABLE artifacts RENAME TO v2_artifacts;
    ALTER TABLE metadata RENAME TO v2_metadata;
    ALTER TABLE code_packages RENAME TO v2_code_packages;
    @types
    @blobs
    @blob_chunks
    CREATE TABLE artifacts (
        task_pk     INTEGER NOT NULL,
        attempt     INTEGER NOT NULL,
        name        TEXT NOT NULL,
        blob_id     INTEGER NOT NULL,
        ts_epoch    INTEGER NOT NULL,
        PRIMARY KEY (task_pk, attempt, name),
        FOREIGN KEY (task_pk, attempt) REFERENCES attempts (task_pk, attempt) ON DELETE CASCADE
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE metadata_values (
        value_id    INTEGER PRIMARY KEY,
        field_name  TEXT NOT NULL,
        type        TEXT NOT NULL,
        is_json     INTEGER NOT NULL CHECK (is_json IN (0, 1)),
        value       TEXT NOT NULL,
        UNIQUE (field_name, type, is_json, value)
    ) STRICT;
    CREATE TABLE metadata (
        metadata_pk INTEGER PRIMARY KEY,
        task_pk     INTEGER NOT NULL REFERENCES tasks (task_pk) ON DELETE CASCADE,
        attempt     INTEGER,
        value_id    INTEGER NOT NULL REFERENCES metadata_values (value_id),
        ts_epoch    INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX metadata_by_task ON metadata (task_pk, attempt);
    @code_packages
    INSERT INTO types (name) SELECT DISTINCT type FROM v2_artifacts ORDER BY type;
    INSERT INTO blobs (sha, size, stored_size, chunks, type_id, value_json, codec, data)
        SELECT unhex(b.sha), b.size, b.stored_size, b.chunks,
            (SELECT ty.type_id FROM v2_artifacts a JOIN types ty ON ty.name = a.type
              WHERE a.sha = b.sha LIMIT 1),
            (SELECT a.value_json FROM v2_artifacts a WHERE a.sha = b.sha AND a.value_json IS NOT NULL
              LIMIT 1),
            c.codec, c.data
        FROM v2_blobs b JOIN v2_blob_chunks c ON c.sha = b.sha AND c.seq = 0
        ORDER BY b.sha;
    INSERT INTO blob_chunks (blob_id, seq, codec, data)
        SELECT n.blob_id, c.seq, c.codec, c.data
        FROM v2_blob_chunks c JOIN blobs n ON n.sha = unhex(c.sha) WHERE c.seq > 0;
    INSERT INTO artifacts (task_pk, attempt, name, blob_id, ts_epoch)
        SELECT a.task_pk, a.attempt, a.name, n.blob_id, a.ts_epoch
        FROM v2_artifacts a JOIN blobs n ON n.sha = unhex(a.sha);
    INSERT INTO metadata_values (field_name, type, is_json, value)
        SELECT DISTINCT field_name, type, is_json, value FROM v2_metadata;
    INSERT INTO metadata (metadata_pk, task_pk, attempt, value_id, ts_epoch)
        SELECT m.metadata_pk, m.task_pk, m.attempt, v.value_id, m.ts_epoch
        FROM v2_metadata m JOIN metadata_values v ON v.field_name = m.field_name
            AND v.type = m.type AND v.is_json = m.is_json AND v.value = m.value
        ORDER BY m.metadata_pk;
    INSERT INTO code_packages (sha, script_name, info)
        SELECT sha, script_name, info FROM v2_code_packages;
    DROP TABLE v2_artifacts;
    DROP TABLE v2_metadata;
    DROP TABLE v2_code_packages;
    DROP TABLE v2_blob_chunks;
    DROP TABLE v2_blobs;
    """,
    # Format 4 (issue 15, bytes per task): artifact names and metadata fields (name, type)
    # are stored once (artifact_names, metadata_fields); an artifact's time is NULL when
    # it is its attempt's end (nearly always); metadata is clustered by task (WITHOUT
    # ROWID, keyed by (task_pk, metadata_pk)), so the metadata_by_task index goes.
    # metadata_pk and value_id keep their values. The views `artifacts` and
    # `metadata_values` give format 3's tables back, for reading.
    4: """
    ALTER TABLE artifacts RENAME TO v3_artifacts;
    ALTER TABLE metadata RENAME TO v3_metadata;
    ALTER TABLE metadata_values RENAME TO v3_metadata_values;
    DROP INDEX IF EXISTS metadata_by_task;
    @artifact_names
    @task_artifacts
    @metadata_fields
    @metadata_entries
    @metadata
    INSERT INTO artifact_names (name) SELECT DISTINCT name FROM v3_artifacts ORDER BY name;
    INSERT INTO task_artifacts (task_pk, attempt, name_id, blob_id, ts_epoch)
        SELECT a.task_pk, a.attempt, n.name_id, a.blob_id, nullif(a.ts_epoch, e.ended_at)
        FROM v3_artifacts a JOIN artifact_names n ON n.name = a.name
        LEFT JOIN attempts e ON e.task_pk = a.task_pk AND e.attempt = a.attempt
        ORDER BY a.task_pk, a.attempt, n.name_id;
    INSERT INTO metadata_fields (field_name, type)
        SELECT DISTINCT field_name, type FROM v3_metadata_values ORDER BY field_name, type;
    INSERT INTO metadata_entries (value_id, field_id, is_json, value)
        SELECT v.value_id, f.field_id, v.is_json, v.value FROM v3_metadata_values v
        JOIN metadata_fields f ON f.field_name = v.field_name AND f.type = v.type
        ORDER BY v.value_id;
    INSERT INTO metadata (task_pk, metadata_pk, attempt, value_id, ts_epoch)
        SELECT task_pk, metadata_pk, attempt, value_id, ts_epoch FROM v3_metadata
        ORDER BY task_pk, metadata_pk;
    DROP TABLE v3_artifacts;
    DROP TABLE v3_metadata;
    DROP TABLE v3_metadata_values;
    """,
    # Format 5 (docs/production.md): a deployment keeps what `production create` fixed, the
    # values of the Parameter default functions and of the configs (deployments.values_json),
    # so its runs use them as Metaflow's deployed runs do. Deployments made before keep
    # NULL: their runs evaluate the defaults when they start, as before. Rebuilt as the
    # formats before did (renamed away, created from schema.sql, rows copied, old dropped).
    5: """
    ALTER TABLE deployments RENAME TO v4_deployments;
    DROP INDEX IF EXISTS deployments_by_flow;
    @deployments
    @deployments_by_flow
    INSERT INTO deployments (deployment_pk, flow_id, token, deployed_by, ts_epoch, code_sha, triggers)
        SELECT deployment_pk, flow_id, token, deployed_by, ts_epoch, code_sha, triggers
        FROM v4_deployments ORDER BY deployment_pk;
    DROP TABLE v4_deployments;
    """,
}

_SCHEMA_REF = re.compile(r"^\s*@([a-z_]+)\s*$", re.M)


class MigrationTarget(Protocol):
    """What migrations need of an open file (``mfstore.store.Store`` provides it)."""

    path: Path

    def write(self) -> AbstractContextManager[Any]: ...

    def scalar(self, sql: str, params: Any = ()) -> Any: ...

    def execute(self, sql: str, params: Any = ()) -> Any: ...


@functools.lru_cache(maxsize=1)
def load_schema_sql() -> str:
    """Text of ``schema.sql`` (package data when installed, repo root in a checkout).

    Read directly (no importlib.resources): the schema check at open needs it, and a
    cold open must stay cheap (benchmarks/bench_open.py)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (os.path.join(here, "schema.sql"), os.path.join(here, "..", "schema.sql")):
        if os.path.isfile(candidate):
            with open(candidate, "rb") as fh:
                return fh.read().decode("utf-8")
    raise FileNotFoundError(f"schema.sql is missing beside {here} (a broken mfstore install)")


_CREATE = re.compile(
    r"^\s*CREATE\s+(?:UNIQUE\s+)?(?:VIRTUAL\s+)?(TABLE|INDEX|VIEW|TRIGGER)\s+"
    r"(?:IF\s+NOT\s+EXISTS\s+)?[\"`\[]?([A-Za-z_][A-Za-z0-9_]*)",
    re.I,
)
_STATEMENT_END = re.compile(r";[ \t]*(?:--[^\n]*)?(?:\n|$)")
_LEADING_COMMENTS = re.compile(r"^(?:\s*--[^\n]*\n|\s+)*")


def _statements(script: str) -> list[str]:
    """Split an SQL script into statements (without their ``;``), leading comments removed."""
    import apsw

    out: list[str] = []
    pending = ""
    for chunk in _STATEMENT_END.split(script):
        pending += chunk
        # A ';' at a line end inside a string literal does not end the statement.
        if not apsw.complete(pending + ";"):
            pending += ";\n"
            continue
        text = _LEADING_COMMENTS.sub("", pending, count=1).rstrip()
        pending = ""
        if text:
            out.append(text)
    return out


@functools.lru_cache(maxsize=1)
def schema_objects() -> Mapping[tuple[str, str], str]:
    """``{(type, name): CREATE statement}`` of every object ``schema.sql`` creates, in its
    order; each statement's text is as SQLite keeps it in ``sqlite_master`` (no ``;``).

    ``schema.sql`` is parsed here, once per process, for all its readers: the migrations'
    ``@name`` lines, the views they rebuild, and the schema check at open (``mfstore.schema``).
    """
    out: dict[tuple[str, str], str] = {}
    for statement in _statements(load_schema_sql()):
        match = _CREATE.match(statement)
        if match:
            out[(match.group(1).lower(), match.group(2))] = statement
    return MappingProxyType(out)


def schema_views() -> tuple[tuple[str, str], ...]:
    """``(name, CREATE VIEW statement)`` of each view ``schema.sql`` creates, in its order."""
    return tuple((name, sql) for (kind, name), sql in schema_objects().items() if kind == "view")


def schema_statement(name: str) -> str:
    """The ``CREATE TABLE`` / ``CREATE INDEX`` statement of ``name`` in ``schema.sql``."""
    objects = schema_objects()
    statement = objects.get(("table", name)) or objects.get(("index", name))
    if statement is None:
        raise KeyError(name)
    return statement


def _expand(script: str) -> str:
    """``@name`` lines -> the current CREATE statement of ``name`` from schema.sql."""
    return _SCHEMA_REF.sub(lambda m: schema_statement(m.group(1)) + ";", script)


def _drop_views(store: MigrationTarget) -> None:
    # Only the views schema.sql names (a view a user added stays), dependents first:
    # mf_steps reads mf_tasks. A name that is a table in an older format (artifacts,
    # metadata_values before format 4) is left to its migration.
    views = {row[0] for row in store.execute("SELECT name FROM sqlite_master WHERE type = 'view'")}
    for name, _ in reversed(schema_views()):
        if name in views:
            store.execute(f'DROP VIEW "{name}"')


def _create_views(store: MigrationTarget) -> None:
    for _, statement in schema_views():
        store.execute(statement)


def initialize(store: MigrationTarget) -> None:
    """Create the schema of ``FORMAT_VERSION`` in an empty file (inside ``store.write()``)."""
    store.execute(load_schema_sql())
    store.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    store.execute(f"PRAGMA user_version = {FORMAT_VERSION}")


def apply_migrations(store: MigrationTarget, from_version: int) -> int:
    """Migrate ``store`` from ``from_version`` to ``FORMAT_VERSION`` in one transaction;
    return the new version. A file older than ``OLDEST_FORMAT`` raises ``SchemaTooOldError``."""
    if from_version < OLDEST_FORMAT:
        raise SchemaTooOldError(
            f"{store.path} uses file format {from_version}, older than any this mfstore can "
            f"migrate ({OLDEST_FORMAT} is the oldest): "
            "open it with an older mfstore and export it"
        )
    # Tables are rebuilt the way SQLite documents (lang_altertable.html, "other kinds of
    # table schema changes"): foreign keys off and legacy renames while the old tables are
    # moved aside, so no other table's text is rewritten; foreign_key_check before commit.
    store.execute("PRAGMA foreign_keys = OFF")
    store.execute("PRAGMA legacy_alter_table = ON")
    try:
        with store.write():
            current = store.scalar("PRAGMA user_version")
            if current >= FORMAT_VERSION:
                return FORMAT_VERSION
            _drop_views(store)
            for version in range(current + 1, FORMAT_VERSION + 1):
                store.execute(_expand(MIGRATIONS[version]))
                store.execute(f"PRAGMA user_version = {version}")
            _create_views(store)
            bad = list(store.execute("PRAGMA foreign_key_check"))
            if bad:
                raise StoreCorruptError(
                    f"{store.path} could not be migrated: rows break foreign keys ({bad[:3]}); "
                    "run `mfstore verify`"
                )
    finally:
        store.execute("PRAGMA legacy_alter_table = OFF")
        store.execute("PRAGMA foreign_keys = ON")
    return FORMAT_VERSION

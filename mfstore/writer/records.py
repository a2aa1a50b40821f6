"""What the writer's callers hand it and get back (run/task references, metadata
entries), and the metadata rows every write path shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import query
from ..artifacts import PreparedArtifact
from ..blobs import insert_blob
from ..exception import MetaflowInternalError, MetaflowNotFound
from ..identity import now_ms
from ..store import Store

#: Metadata type of the rows that keep Metaflow's task-level files (cards, markers) that
#: have no table of their own; Metaflow's client never sees them as metadata.
TASK_FILE_TYPE = "mfstore-file"


@dataclass(frozen=True)
class RunRef:
    """A run being written (or already in the file)."""

    run_pk: int
    """Row id in ``runs``."""
    flow_id: str
    """Flow name."""
    run_number: str
    """Run id."""

    @property
    def pathspec(self) -> str:
        return f"{self.flow_id}/{self.run_number}"


@dataclass(frozen=True)
class TaskRef:
    """A task being written."""

    task_pk: int
    """Row id in ``tasks``."""
    run: RunRef
    """The task's run."""
    step_name: str
    """Step name."""
    task_id: str
    """Task id."""

    @property
    def pathspec(self) -> str:
        return f"{self.run.pathspec}/{self.step_name}/{self.task_id}"


@dataclass
class MetadataEntry:
    """One task metadata event (Metaflow's ``sysmeta``)."""

    field_name: str
    value: Any
    """A string; anything else (e.g. the foreach-stack list) is stored as JSON."""
    type: str | None = None
    """Metadata type; defaults to ``field_name``."""
    attempt: int | None = None
    """Attempt it belongs to; None for task-level metadata."""
    ts_epoch: int = field(default_factory=now_ms)


#: One metadata row ``(task_pk, attempt, value_id, ts_epoch)``. ``metadata`` is clustered
#: by task; ``metadata_pk`` numbers a task's entries in write order (one primary-key seek).
INSERT_METADATA = (
    "INSERT INTO metadata (task_pk, metadata_pk, attempt, value_id, ts_epoch) VALUES (?1, "
    "(SELECT coalesce(max(metadata_pk), 0) + 1 FROM metadata WHERE task_pk = ?1), ?2, ?3, ?4)"
)


class BulkCache:
    """Ids seen inside one ``Writer.bulk()`` transaction."""

    __slots__ = ("blobs", "steps", "values")

    def __init__(self) -> None:
        self.blobs: dict[str, int] = {}
        self.values: dict[tuple[Any, ...], int] = {}
        self.steps: set[tuple[int, str]] = set()


#: Intern a metadata field ``(field_name, type)``, then an entry ``(field_name, type,
#: is_json, value)`` of it (each stored once: metadata_fields, metadata_entries).
_INSERT_FIELD = (
    "INSERT INTO metadata_fields (field_name, type) VALUES (?1, ?2) "
    "ON CONFLICT (field_name, type) DO NOTHING"
)
_INSERT_ENTRY = (
    "INSERT INTO metadata_entries (field_id, is_json, value) VALUES ((SELECT field_id FROM "
    "metadata_fields WHERE field_name = ?1 AND type = ?2), ?3, ?4) "
    "ON CONFLICT (field_id, is_json, value) DO NOTHING"
)


def metadata_value_id(store: Store, field_name: str, type_: str, is_json: int, value: str) -> int:
    """Id of one metadata entry (``metadata_values.value_id``; added if new); inside
    ``store.write()``."""
    key = (field_name, type_, is_json, value)
    store.execute(_INSERT_FIELD, key[:2])
    store.execute(_INSERT_ENTRY, key)
    return int(store.scalar(*query.compile_metadata_value_id(field_name, type_, is_json, value)))


def insert_metadata_rows(store: Store, rows: Sequence[Sequence[Any]]) -> None:
    """Insert metadata rows ``(field_name, type, is_json, value, task_pk, attempt, ts_epoch)``;
    each distinct entry is stored once. Inside ``store.write()``."""
    store.executemany(_INSERT_FIELD, {tuple(r[:2]) for r in rows})
    store.executemany(_INSERT_ENTRY, [r[:4] for r in rows])
    store.executemany(
        "INSERT INTO metadata (task_pk, metadata_pk, attempt, value_id, ts_epoch) VALUES (?5, "
        "(SELECT coalesce(max(metadata_pk), 0) + 1 FROM metadata WHERE task_pk = ?5), ?6, "
        "(SELECT value_id FROM metadata_values WHERE field_name = ?1 AND type = ?2 "
        "AND is_json = ?3 AND value = ?4), ?7)",
        rows,
    )


def insert_artifact_rows(store: Store, rows: Sequence[Sequence[Any]]) -> None:
    """Insert artifact rows ``(task_pk, attempt, name, blob_id, ts_epoch)`` (names stored
    once in artifact_names) after their attempt's ``ended_at`` is written: a time equal to
    it is stored as NULL (the ``artifacts`` view gives it back). Inside ``store.write()``."""
    store.executemany(
        "INSERT INTO artifact_names (name) VALUES (?) ON CONFLICT (name) DO NOTHING",
        {(r[2],) for r in rows},
    )
    store.executemany(
        "INSERT INTO task_artifacts (task_pk, attempt, name_id, blob_id, ts_epoch) VALUES (?1, ?2, "
        "(SELECT name_id FROM artifact_names WHERE name = ?3), ?4, "
        "nullif(?5, (SELECT ended_at FROM attempts WHERE task_pk = ?1 AND attempt = ?2)))",
        rows,
    )


def artifact_blob_id(store: Store, name: str, art: PreparedArtifact) -> int:
    """``blob_id`` of artifact ``name``'s blob, storing its bytes if the file has none
    yet; inside ``store.write()``. An artifact given by sha alone must name a blob in
    the file."""
    try:
        return insert_blob(
            store,
            art.sha if art.blob is None else art.blob,
            type_name=art.type,
            value_json=art.value_json,
        )
    except MetaflowNotFound:
        raise MetaflowInternalError(
            f"artifact {name} refers to blob {art.sha}, which is not in the file"
        ) from None

"""What the writer's callers hand it and get back (run/task references, metadata
entries), and the metadata rows every write path shares."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


class BulkCache:
    """Ids seen inside one ``Writer.bulk()`` transaction."""

    __slots__ = ("blobs", "steps", "values")

    def __init__(self) -> None:
        self.blobs: dict[str, int] = {}
        self.values: dict[tuple[Any, ...], int] = {}
        self.steps: set[tuple[int, str]] = set()


def metadata_value_id(store: Store, field_name: str, type_: str, is_json: int, value: str) -> int:
    """Id of one metadata entry in ``metadata_values`` (added if new); inside ``store.write()``."""
    store.execute(
        "INSERT INTO metadata_values (field_name, type, is_json, value) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (field_name, type, is_json, value) DO NOTHING",
        (field_name, type_, is_json, value),
    )
    return int(store.scalar(*query.compile_metadata_value_id(field_name, type_, is_json, value)))


def insert_metadata_rows(store: Store, rows: Sequence[Sequence[Any]]) -> None:
    """Insert metadata rows ``(field_name, type, is_json, value, task_pk, attempt, ts_epoch)``;
    each distinct entry is stored once in ``metadata_values``. Inside ``store.write()``."""
    store.executemany(
        "INSERT INTO metadata_values (field_name, type, is_json, value) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (field_name, type, is_json, value) DO NOTHING",
        [r[:4] for r in rows],
    )
    store.executemany(
        "INSERT INTO metadata (task_pk, attempt, value_id, ts_epoch) VALUES (?5, ?6, "
        "(SELECT value_id FROM metadata_values WHERE field_name = ?1 AND type = ?2 "
        "AND is_json = ?3 AND value = ?4), ?7)",
        rows,
    )


def log_rows(
    task_pk: int, attempt: int, stream: str, lines: Iterable[tuple[int, str]], source: str
) -> list[tuple[Any, ...]]:
    """``log_lines`` rows of lines ``(utc_microseconds, text)`` of one stream."""
    if stream not in ("stdout", "stderr"):
        raise MetaflowInternalError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
    return [(task_pk, attempt, stream, source, ts, line) for ts, line in lines]


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

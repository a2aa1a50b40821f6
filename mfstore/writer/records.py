"""What the writer's callers hand it and get back (run/task references, metadata
entries), and the metadata rows every write path shares."""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

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


class _DoneTaskNeeds(TypedDict):
    """The fields a ``DoneTask`` must have."""

    artifacts: Mapping[str, PreparedArtifact]
    """The attempt's artifacts by name, dated at its end."""
    task_ok: bool
    """The attempt's ``_task_ok``: it ran without an exception."""
    success: bool
    """The attempt's ``_success`` (Metaflow's ``Task.successful``)."""
    started_at: int
    """When the attempt (and the task, and its step if new) began (epoch ms)."""
    ended_at: int
    """When the attempt ended (epoch ms): the time of its artifacts and status metadata."""


class DoneTask(_DoneTaskNeeds, total=False):
    """A task with one finished attempt, as ``Writer.add_done_task`` and ``TaskBatch.add``
    take it (keywords after the run, step name and task id). The optional fields are
    a ``total=False`` class of their own, so ``__optional_keys__`` names them at run time
    too (``NotRequired`` under postponed annotations is not seen there)."""

    attempt: int
    """The attempt's number (default 0)."""
    metadata: Iterable[MetadataEntry]
    """Metadata entries, before the ``attempt_ok``/``attempt-done`` ones (default none)."""
    logs: Iterable[tuple[str, int, str]]
    """Log lines ``(stream, utc_microseconds, line)`` of source ``task`` (default none)."""
    origin_task_pk: int | None
    """Row id of the task this one was cloned from (resume), or None (the default)."""


_DONE_REQUIRED = DoneTask.__required_keys__
_DONE_KEYS = _DONE_REQUIRED | DoneTask.__optional_keys__


def done_fields(
    done: DoneTask,
) -> tuple[Mapping[str, PreparedArtifact], bool, bool, int, int, int]:
    """``(artifacts, task_ok, success, started_at, ended_at, attempt)`` of a finished task,
    checked first: a keyword a ``DoneTask`` has not, or a missing one it needs, is a
    ``TypeError`` (as a call with a wrong keyword would be)."""
    if not _DONE_KEYS.issuperset(done):
        unknown = ", ".join(sorted(done.keys() - _DONE_KEYS))
        raise TypeError(f"unexpected keyword arguments for a finished task: {unknown}")
    if not _DONE_REQUIRED.issubset(done):
        missing = ", ".join(sorted(_DONE_REQUIRED - done.keys()))
        raise TypeError(f"missing keyword arguments for a finished task: {missing}")
    return (
        done["artifacts"],
        done["task_ok"],
        done["success"],
        done["started_at"],
        done["ended_at"],
        done.get("attempt", 0),
    )


#: The metadata fields of ``status_entries`` (the importer leaves them to the writer).
STATUS_FIELDS = ("attempt_ok", "attempt-done")


def status_entries(attempt: int, task_ok: bool | int, ts_epoch: int) -> list[MetadataEntry]:
    """The metadata Metaflow records when an attempt ends: ``attempt_ok`` (``"True"`` or
    ``"False"``) and ``attempt-done`` (the attempt's number), dated ``ts_epoch``."""
    return [
        MetadataEntry(
            "attempt_ok",
            "True" if task_ok else "False",
            "internal_attempt_status",
            attempt,
            ts_epoch,
        ),
        MetadataEntry("attempt-done", str(attempt), "attempt-done", attempt, ts_epoch),
    ]


class RunBuffer(Protocol):
    """Where ``Writer.begin_run``/``end_run`` buffer a run instead of writing it
    (``TaskBatch`` is the one implementation)."""

    def has_run(self, flow_id: str, run_number: str) -> bool:
        """True if the buffer holds a run ``flow_id/run_number`` not written yet."""
        ...

    def add_run(self, row: tuple[Any, ...]) -> RunRef:
        """Buffer a new run's row; its id is assigned ahead."""
        ...

    def end_buffered_run(self, run: RunRef, status: str, ts_epoch: int) -> bool:
        """End a buffered run not written yet (False: it is not one)."""
        ...


class BulkCache:
    """Ids seen inside one ``Writer.bulk()`` transaction."""

    __slots__ = (
        "blobs",
        "flows",
        "last_metadata",
        "names",
        "run_tagsets",
        "steps",
        "tagsets",
        "values",
    )

    def __init__(self) -> None:
        self.blobs: dict[str, int] = {}
        self.values: dict[tuple[Any, ...], int] = {}
        self.steps: set[tuple[int, str]] = set()
        self.names: dict[str, int] = {}  # artifact name -> name_id
        self.last_metadata: dict[int, int] = {}  # task_pk -> its highest metadata_pk
        self.flows: set[str] = set()  # flows in the file
        self.tagsets: dict[tuple[str, str], int] = {}  # (flow_id, digest) -> tagset_id
        # (flow_id, user tags, system tags) as a run was begun with -> tagset_id
        self.run_tagsets: dict[tuple[str, tuple[str, ...], tuple[str, ...]], int] = {}


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


def numbered(
    store: Store, rows: Sequence[Sequence[Any]], last: dict[int, int] | None = None
) -> list[tuple[Any, ...]]:
    """Metadata rows ``(task_pk, attempt, value_id, ts_epoch)`` -> ``(task_pk, metadata_pk,
    attempt, value_id, ts_epoch)``: each task's new entries numbered after its last
    (``metadata`` is clustered by task; metadata_pk orders a task's entries). ``last``:
    task_pk -> highest metadata_pk known so far, kept up to date."""
    last = {} if last is None else last
    out = []
    for task_pk, attempt, value_id, ts in rows:
        n = last.get(task_pk)
        if n is None:
            n = store.scalar(*query.compile_last_metadata_pk(task_pk)) or 0
        last[task_pk] = n = n + 1
        out.append((task_pk, n, attempt, value_id, ts))
    return out


#: Point run ``:run`` at tag set ``:tagset`` (a tag edit, a copied run).
SET_RUN_TAGSET = "UPDATE runs SET tagset_id = :tagset WHERE run_pk = :run"


class Insert:
    """The INSERT statements of a task's rows (and a batch's runs), shared by the one-call (``add_done_task``),
    piece-by-piece and batched (``TaskBatch``) writes."""

    #: A step of a run (none if the run has it): ``(run_pk, step_name, ts_epoch)``.
    STEP = (
        "INSERT INTO steps (run_pk, step_name, ts_epoch) VALUES (?, ?, ?) "
        "ON CONFLICT (run_pk, step_name) DO NOTHING"
    )
    #: An ended attempt: ``(task_pk, attempt, started_at, ended_at, task_ok, success)``.
    ENDED_ATTEMPT = (
        "INSERT INTO attempts (task_pk, attempt, started_at, ended_at, task_ok, success) "
        "VALUES (?, ?, ?, ?, ?, ?)"
    )
    #: ``log_rows``.
    LOG_LINE = (
        "INSERT INTO log_lines (task_pk, attempt, stream, source, ts_us, line) "
        "VALUES (?, ?, ?, ?, ?, ?)"
    )
    #: ``numbered`` metadata rows.
    METADATA = (
        "INSERT INTO metadata (task_pk, metadata_pk, attempt, value_id, ts_epoch) "
        "VALUES (?, ?, ?, ?, ?)"
    )
    #: A new task (SQLite picks its ``task_pk``: ``Store.insert`` returns it):
    #: ``(run_pk, step_name, task_id, ts_epoch, origin_task_pk)``.
    NEW_TASK = (
        "INSERT INTO tasks (run_pk, step_name, task_id, ts_epoch, origin_task_pk) "
        "VALUES (?, ?, ?, ?, ?)"
    )
    #: A task with its id (``TaskBatch``): ``(task_pk, run_pk, step_name, task_id,
    #: ts_epoch, origin_task_pk)``.
    TASK = (
        "INSERT INTO tasks (task_pk, run_pk, step_name, task_id, ts_epoch, origin_task_pk) "
        "VALUES (?, ?, ?, ?, ?, ?)"
    )
    #: An artifact: ``(task_pk, attempt, name_id, blob_id, ts_epoch)``.
    ARTIFACT = (
        "INSERT INTO task_artifacts (task_pk, attempt, name_id, blob_id, ts_epoch) "
        "VALUES (?, ?, ?, ?, ?)"
    )
    #: A run with its id and status (``TaskBatch``'s buffered runs): ``(run_pk, flow_id,
    #: run_number, user_name, tagset_id, ts_epoch, end_step, origin_run_number, code_sha,
    #: status, finished_at)``.
    RUN = (
        "INSERT INTO runs (run_pk, flow_id, run_number, user_name, tagset_id, ts_epoch, "
        "end_step, origin_run_number, code_sha, status, finished_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )


#: Rows per INSERT statement of ``insert_rows`` (SQLite does its per-statement work once
#: for that many rows: about a quarter less time per row than one statement per row).
ROWS_PER_STATEMENT = 50
_MANY_ROWS: dict[str, str] = {}


def insert_rows(store: Store, insert: str, rows: Sequence[Sequence[Any]]) -> None:
    """``store.executemany(insert, rows)`` with ``ROWS_PER_STATEMENT`` rows per statement:
    ``insert`` is one of ``Insert``'s (one ``VALUES (?, ...)`` group, then perhaps an ON
    CONFLICT clause), each row applied as that statement would apply it, in order."""
    if rows:
        insert_flat(store, insert, list(itertools.chain.from_iterable(rows)), len(rows[0]))


def insert_flat(store: Store, insert: str, flat: list[Any], width: int) -> None:
    """``insert_rows`` of rows given one after the other in ``flat`` (``width`` values
    each): a writer that buffers many rows keeps no tuple per row."""
    n = ROWS_PER_STATEMENT
    step = n * width  # parameters per statement
    whole = len(flat) // step * step
    if whole:
        sql = _MANY_ROWS.get(insert)
        if sql is None:
            head, values, rest = insert.partition("VALUES ")
            end = rest.index(")") + 1
            sql = _MANY_ROWS[insert] = head + values + ", ".join([rest[:end]] * n) + rest[end:]
        store.executemany(sql, [flat[i : i + step] for i in range(0, whole, step)])
    if whole < len(flat):
        store.executemany(insert, [flat[i : i + width] for i in range(whole, len(flat), width)])


def insert_metadata_rows(store: Store, rows: Sequence[Sequence[Any]]) -> None:
    """Insert metadata rows ``(field_name, type, is_json, value, task_pk, attempt, ts_epoch)``;
    each distinct entry is stored once. Inside ``store.write()``."""
    store.executemany(_INSERT_FIELD, {tuple(r[:2]) for r in rows})
    store.executemany(_INSERT_ENTRY, [r[:4] for r in rows])
    ids = {
        key: int(store.scalar(*query.compile_metadata_value_id(*key)))
        for key in {tuple(r[:4]) for r in rows}
    }
    store.executemany(
        Insert.METADATA, numbered(store, [(r[4], r[5], ids[tuple(r[:4])], r[6]) for r in rows])
    )


def artifact_name_ids(store: Store, names: Iterable[str], known: dict[str, int]) -> dict[str, int]:
    """Make sure each of ``names`` is in artifact_names; ``known`` (name -> name_id, kept up
    to date) is returned. Inside ``store.write()``."""
    missing = set(names) - known.keys()
    if missing:
        store.executemany(
            "INSERT INTO artifact_names (name) VALUES (?) ON CONFLICT (name) DO NOTHING",
            [(n,) for n in sorted(missing)],
        )
        known.update(
            (str(n), int(i))
            for n, i in store.query(*query.compile_artifact_name_ids(sorted(missing)))
        )
    return known


def insert_artifact_rows(
    store: Store, rows: Sequence[Sequence[Any]], names: dict[str, int] | None = None
) -> None:
    """Insert artifact rows ``(task_pk, attempt, name, blob_id, ts_epoch)``; ``ts_epoch`` is
    None when it is the attempt's ``ended_at`` (the ``artifacts`` view gives it back).
    Names are stored once in artifact_names (``names``: name -> name_id known so far, kept
    up to date). Inside ``store.write()``."""
    known = artifact_name_ids(store, {r[2] for r in rows}, {} if names is None else names)
    store.executemany(Insert.ARTIFACT, [(r[0], r[1], known[r[2]], r[3], r[4]) for r in rows])


def check_stream(stream: str) -> None:
    """Refuse a log stream other than ``stdout`` and ``stderr`` (``MetaflowInternalError``)."""
    if stream != "stdout" and stream != "stderr":
        raise MetaflowInternalError(f"stream must be 'stdout' or 'stderr', not {stream!r}")


def log_rows(
    task_pk: int, attempt: int, stream: str, lines: Iterable[tuple[int, str]], source: str
) -> list[tuple[Any, ...]]:
    """``log_lines`` rows of lines ``(utc_microseconds, text)`` of one stream."""
    check_stream(stream)
    return [(task_pk, attempt, stream, source, ts, line) for ts, line in lines]


class LogLineWrites(ABC):
    """An attempt's log lines of one stream, checked and made rows once for ``Writer``
    (which writes them at once) and ``TaskBatch`` (which buffers them)."""

    def add_log_lines(
        self,
        task: TaskRef,
        attempt: int,
        stream: str,
        lines: Iterable[tuple[int, str]],
        *,
        source: str = "task",
    ) -> None:
        """Record log lines ``(utc_microseconds, text_without_newline)`` of ``stream``
        (``stdout`` or ``stderr``) of an attempt, from ``source`` (``task`` or
        ``runtime``)."""
        self._log_rows(log_rows(task.task_pk, attempt, stream, lines, source))

    @abstractmethod
    def _log_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Write or buffer ``log_rows`` rows."""


def add_task_logs(
    flat: list[Any], task_pk: int, attempt: int, logs: Iterable[tuple[str, int, str]]
) -> None:
    """Append to ``flat`` the ``log_lines`` rows, one after the other (``insert_flat``), of
    an attempt's lines ``(stream, utc_microseconds, line)`` of source ``task``."""
    for stream, ts, line in logs:
        check_stream(stream)
        flat += (task_pk, attempt, stream, "task", ts, line)


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

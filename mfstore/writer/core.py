"""``Writer``: every write of a run's rows, and ``TaskBatch`` (finished tasks many at a time)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .. import query
from ..artifacts import PreparedArtifact
from ..blobs import (
    blob_id,
    blob_rows,
    insert_blob_rows,
    next_blob_id,
    type_id,
)
from ..exception import MetaflowInternalError
from ..store import Store
from .pieces import PieceWrites
from .records import (
    BulkCache,
    MetadataEntry,
    RunRef,
    TaskRef,
    artifact_blob_id,
    insert_artifact_rows,
    metadata_value_id,
)
from .runs import RunWrites


class Writer(RunWrites, PieceWrites):
    """Writes runs, steps, tasks, attempts, artifacts, metadata and logs to a store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # Inside bulk(): ids of blobs, metadata entries and steps this transaction has
        # seen (valid until it ends: nothing else can write meanwhile).
        self._cache: BulkCache | None = None

    @contextlib.contextmanager
    def bulk(self) -> Iterator[Store]:
        """One transaction for many calls (``Store.bulk``), remembering the ids of blobs,
        metadata entries and steps it wrote: much faster for importers and builders. An
        error inside the block rolls the whole block back."""
        if self._cache is not None:
            yield self.store
            return
        with self.store.bulk():
            self._cache = BulkCache()
            try:
                yield self.store
            finally:
                self._cache = None

    def add_done_task(
        self,
        run: RunRef,
        step_name: str,
        task_id: str,
        *,
        artifacts: Mapping[str, PreparedArtifact],
        task_ok: bool,
        success: bool,
        started_at: int,
        ended_at: int,
        attempt: int = 0,
        metadata: Iterable[MetadataEntry] = (),
        logs: Iterable[tuple[str, int, str]] = (),
        origin_task_pk: int | None = None,
    ) -> TaskRef:
        """A task with one finished attempt, in one call (importers, builders): the same
        rows as ``add_task`` + ``begin_attempt`` + ``add_log_lines`` + ``end_attempt``, in a
        few statements. ``logs``: ``(stream, utc_microseconds, line)``."""
        with self.store.write():
            cache = self._cache
            if cache is None or (run.run_pk, step_name) not in cache.steps:
                self.store.execute(
                    "INSERT INTO steps (run_pk, step_name, ts_epoch) VALUES (?, ?, ?) "
                    "ON CONFLICT (run_pk, step_name) DO NOTHING",
                    (run.run_pk, step_name, started_at),
                )
                if cache is not None:
                    cache.steps.add((run.run_pk, step_name))
            self.store.execute(
                "INSERT INTO tasks (run_pk, step_name, task_id, ts_epoch, origin_task_pk) VALUES (?, ?, ?, ?, ?)",
                (run.run_pk, step_name, task_id, started_at, origin_task_pk),
            )
            task = TaskRef(int(self.store.conn.last_insert_rowid()), run, step_name, task_id)
            if cache is not None:
                cache.last_metadata[task.task_pk] = 0  # a new task has no metadata yet
            self.store.execute(
                "INSERT INTO attempts (task_pk, attempt, started_at, ended_at, task_ok, success) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (task.task_pk, attempt, started_at, ended_at, int(task_ok), int(success)),
            )
            rows = []
            for stream, ts, line in logs:
                if stream not in ("stdout", "stderr"):
                    raise ValueError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
                rows.append((task.task_pk, attempt, stream, "task", ts, line))
            if rows:
                self.store.executemany(
                    "INSERT INTO log_lines (task_pk, attempt, stream, source, ts_us, line) VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
            self._insert_artifacts(task, attempt, artifacts, ended_at, {})
            self._insert_metadata(
                task,
                [
                    *metadata,
                    MetadataEntry(
                        "attempt_ok",
                        str(bool(task_ok)),
                        "internal_attempt_status",
                        attempt,
                        ended_at,
                    ),
                    MetadataEntry("attempt-done", str(attempt), "attempt-done", attempt, ended_at),
                ],
            )
        return task

    @contextlib.contextmanager
    def task_batch(self, size: int = 2000) -> Iterator[TaskBatch]:
        """Finished tasks written many at a time inside ``bulk()`` (see ``TaskBatch``):
        ``batch.add(...)`` takes what ``add_done_task`` takes; the rows reach the file
        every ``size`` tasks and when the block ends normally."""
        batch = TaskBatch(self, size)
        yield batch
        batch.flush()


class TaskBatch:
    """Finished tasks written many at a time (``Writer.task_batch()``, inside
    ``Writer.bulk()``): ``add`` takes what ``Writer.add_done_task`` takes, assigns the
    task's row id at once and buffers its rows; ``flush`` (every ``size`` tasks, and when
    the ``with`` block ends) inserts the rows of all buffered tasks with one statement per
    table. Until then the tasks are not in the file: read them after the block. An error
    raised by ``flush`` (e.g. a duplicate task id) belongs to the whole bulk transaction,
    which rolls back."""

    #: Buffered blob bytes that make ``add`` flush early (memory stays bounded).
    MAX_BLOB_BYTES = 64 * 1024 * 1024

    def __init__(self, writer: Writer, size: int = 2000) -> None:
        if writer._cache is None:
            raise MetaflowInternalError("Writer.task_batch() needs Writer.bulk()")
        self.writer = writer
        self.size = size
        self._next_pk: int | None = None
        self._tasks: list[tuple[Any, ...]] = []
        self._attempts: list[tuple[Any, ...]] = []
        self._logs: list[tuple[Any, ...]] = []
        self._artifacts: list[tuple[Any, ...]] = []
        self._metadata: list[tuple[Any, ...]] = []
        self._blobs: list[tuple[Any, ...]] = []
        self._chunks: list[tuple[Any, ...]] = []
        self._blob_bytes = 0
        self._next_blob: int | None = None
        self._types: dict[str, int | None] = {}

    def add(
        self,
        run: RunRef,
        step_name: str,
        task_id: str,
        *,
        artifacts: Mapping[str, PreparedArtifact],
        task_ok: bool,
        success: bool,
        started_at: int,
        ended_at: int,
        attempt: int = 0,
        metadata: Iterable[MetadataEntry] = (),
        logs: Iterable[tuple[str, int, str]] = (),
        origin_task_pk: int | None = None,
    ) -> TaskRef:
        """Buffer one finished task (see ``Writer.add_done_task``); return its reference."""
        w = self.writer
        store = w.store
        cache = w._cache
        if cache is None:
            raise MetaflowInternalError("a TaskBatch is used after its Writer.bulk() ended")
        if (run.run_pk, step_name) not in cache.steps:
            store.execute(
                "INSERT INTO steps (run_pk, step_name, ts_epoch) VALUES (?, ?, ?) "
                "ON CONFLICT (run_pk, step_name) DO NOTHING",
                (run.run_pk, step_name, started_at),
            )
            cache.steps.add((run.run_pk, step_name))
        if self._next_pk is None:
            self._next_pk = int(store.scalar(*query.compile_next_task_pk()))
        pk = self._next_pk
        self._next_pk += 1
        self._tasks.append((pk, run.run_pk, step_name, task_id, started_at, origin_task_pk))
        self._attempts.append((pk, attempt, started_at, ended_at, int(task_ok), int(success)))
        for stream, ts, line in logs:
            if stream not in ("stdout", "stderr"):
                raise ValueError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
            self._logs.append((pk, attempt, stream, "task", ts, line))
        blobs = cache.blobs
        for name, art in artifacts.items():
            bid = blobs.get(art.sha)
            if bid is None:
                bid = blobs[art.sha] = self._blob_id(name, art)
            self._artifacts.append((pk, attempt, name, bid, None))  # dated at the attempt's end
        values = cache.values
        for seq, e in enumerate(
            (
                *metadata,
                MetadataEntry(
                    "attempt_ok", str(bool(task_ok)), "internal_attempt_status", attempt, ended_at
                ),
                MetadataEntry("attempt-done", str(attempt), "attempt-done", attempt, ended_at),
            ),
            start=1,
        ):
            is_json = not isinstance(e.value, str)
            key = (
                e.field_name,
                e.type or e.field_name,
                int(is_json),
                json.dumps(e.value, ensure_ascii=False) if is_json else e.value,
            )
            vid = values.get(key)
            if vid is None:
                vid = values[key] = metadata_value_id(store, *key)
            # A new task: its entries are numbered here (metadata_pk, write order).
            self._metadata.append((pk, seq, e.attempt, vid, e.ts_epoch))
        if len(self._tasks) >= self.size or self._blob_bytes > self.MAX_BLOB_BYTES:
            self.flush()
        return TaskRef(pk, run, step_name, task_id)

    def _blob_id(self, name: str, art: PreparedArtifact) -> int:
        """Id of the artifact's blob: one in the file already, or a new one (its rows are
        buffered with an id assigned ahead: nothing else writes during a bulk)."""
        store = self.writer.store
        if art.blob is None or blob_id(store, art.sha) is not None:
            return artifact_blob_id(store, name, art)
        if self._next_blob is None:
            self._next_blob = next_blob_id(store)
        new_id = self._next_blob
        self._next_blob += 1
        tid = self._types.get(art.type)
        if tid is None:
            tid = self._types[art.type] = type_id(store, art.type)
        row, chunk_rows = blob_rows(art.blob, new_id, tid, art.value_json)
        self._blobs.append(row)
        self._chunks.extend(chunk_rows)
        self._blob_bytes += art.blob.stored_size
        return new_id

    def flush(self) -> None:
        """Insert the buffered tasks' rows (one statement per table)."""
        if not self._tasks and not self._blobs:
            return
        store = self.writer.store
        with store.write():
            insert_blob_rows(store, self._blobs, self._chunks)
            store.executemany(
                "INSERT INTO tasks (task_pk, run_pk, step_name, task_id, ts_epoch, origin_task_pk) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                self._tasks,
            )
            store.executemany(
                "INSERT INTO attempts (task_pk, attempt, started_at, ended_at, task_ok, success) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                self._attempts,
            )
            cache = self.writer._cache
            insert_artifact_rows(store, self._artifacts, None if cache is None else cache.names)
            store.executemany(
                "INSERT INTO metadata (task_pk, metadata_pk, attempt, value_id, ts_epoch) "
                "VALUES (?, ?, ?, ?, ?)",
                self._metadata,
            )
            store.executemany(
                "INSERT INTO log_lines (task_pk, attempt, stream, source, ts_us, line) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                self._logs,
            )
        for rows in (self._tasks, self._attempts, self._artifacts, self._metadata, self._logs):
            rows.clear()
        self._blobs.clear()
        self._chunks.clear()
        self._blob_bytes = 0

"""``Writer``: every write of a run's rows, and ``TaskBatch`` (finished tasks many at a time)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Unpack

from .. import query
from ..artifacts import PreparedArtifact, PreparedValues
from ..blobs import (
    blob_ids,
    blob_rows,
    insert_blob_rows,
    next_blob_id,
    type_id,
)
from ..exception import MetaflowInternalError, StoreError
from ..store import Store
from .pieces import PieceWrites
from .records import (
    BulkCache,
    DoneTask,
    Insert,
    LogLineWrites,
    MetadataEntry,
    RunRef,
    TaskRef,
    add_task_logs,
    artifact_blob_id,
    artifact_name_ids,
    done_fields,
    insert_flat,
    insert_rows,
    metadata_value_id,
    status_entries,
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
        self, run: RunRef, step_name: str, task_id: str, **done: Unpack[DoneTask]
    ) -> TaskRef:
        """A task with one finished attempt (``DoneTask``'s keywords), in one call
        (importers, builders): the same rows as ``add_task`` + ``begin_attempt`` +
        ``add_log_lines`` + ``end_attempt``, in a few statements."""
        artifacts, task_ok, success, started_at, ended_at, attempt = done_fields(done)
        with self.store.write():
            cache = self._cache
            if cache is None or (run.run_pk, step_name) not in cache.steps:
                self.store.execute(Insert.STEP, (run.run_pk, step_name, started_at))
                if cache is not None:
                    cache.steps.add((run.run_pk, step_name))
            task_pk = self.store.insert(
                Insert.NEW_TASK,
                (run.run_pk, step_name, task_id, started_at, done.get("origin_task_pk")),
            )
            task = TaskRef(task_pk, run, step_name, task_id)
            self.store.execute(
                Insert.ENDED_ATTEMPT,
                (task.task_pk, attempt, started_at, ended_at, int(task_ok), int(success)),
            )
            logs: list[Any] = []
            add_task_logs(logs, task.task_pk, attempt, done.get("logs", ()))
            if logs:
                insert_flat(self.store, Insert.LOG_LINE, logs, 6)
            self._insert_artifacts(task, attempt, artifacts, ended_at, {})
            self._insert_metadata(
                task, [*done.get("metadata", ()), *status_entries(attempt, task_ok, ended_at)]
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


class TaskBatch(LogLineWrites):
    """Finished tasks written many at a time (``Writer.task_batch()``, inside
    ``Writer.bulk()``): ``add`` takes what ``Writer.add_done_task`` takes, assigns the
    task's row id at once and buffers its rows; ``flush`` (every ``size`` tasks, and when
    the ``with`` block ends) inserts the rows of all buffered tasks with one statement per
    table. Until then the tasks are not in the file: read them after the block. An error
    raised by ``flush`` (e.g. a duplicate task id) belongs to the whole bulk transaction,
    which rolls back.

    Rows are buffered in their final form (artifact names and metadata entries interned,
    metadata numbered per task, an artifact dated at its attempt's end without its time),
    so ``flush`` only hands them to SQLite."""

    #: Buffered blob bytes that make ``add`` flush early (memory stays bounded).
    MAX_BLOB_BYTES = 64 * 1024 * 1024

    def __init__(self, writer: Writer, size: int = 2000) -> None:
        if writer._cache is None:
            raise MetaflowInternalError("Writer.task_batch() needs Writer.bulk()")
        self.writer = writer
        self.size = size
        self._next_blob: int | None = None
        self._types: dict[str, int | None] = {}
        # (task_ok, attempt) -> value ids of the attempt_ok and attempt-done entries.
        self._end_values: dict[tuple[bool, int], tuple[int, int]] = {}
        self._prepared = PreparedValues()
        self._reset()

    def _reset(self) -> None:
        # Ids are read again after a flush: rows the writer's own calls added meanwhile
        # (inside the same bulk) keep theirs.
        self._next_pk: int | None = None
        self._next_run: int | None = None
        # Buffered runs (Insert.RUN's rows, status and finished_at last), by run_pk.
        self._runs: dict[int, list[Any]] = {}
        self._run_keys: set[tuple[str, str]] = set()
        self._steps: list[tuple[Any, ...]] = []
        self._tasks: list[tuple[Any, ...]] = []
        # Attempts, log lines and metadata: rows one after the other (no tuple per row).
        self._attempts: list[Any] = []
        self._logs: list[Any] = []
        self._artifacts: list[tuple[Any, ...]] = []
        self._metadata: list[Any] = []
        self._blobs: list[tuple[Any, ...]] = []
        self._chunks: list[tuple[Any, ...]] = []
        self._blob_bytes = 0
        self._new_blobs: dict[str, int] = {}
        # (task_pk, attempt) -> ended_at of the buffered attempts.
        self._ends: dict[tuple[int, int], int | None] = {}
        # Artifact rows buffered before their attempt: their time is settled at flush.
        self._undated: list[int] = []
        # task_pk -> its last metadata_pk, for the tasks metadata was buffered for.
        self._last_md: dict[int, int] = {}

    def prepare(self, value: Any) -> PreparedArtifact:
        """``prepare_artifact(value)`` for this batch's tasks: a value prepared before
        (the same pickled bytes) is not hashed, compressed or converted to JSON again,
        and its blob is stored once (see ``artifacts.PreparedValues``)."""
        return self._prepared.prepare(value)

    def has_run(self, flow_id: str, run_number: str) -> bool:
        """True if the batch holds a run ``flow_id/run_number`` not written yet."""
        return (flow_id, run_number) in self._run_keys

    def add_run(self, row: tuple[Any, ...]) -> RunRef:
        """Buffer a new run's row ``(flow_id, run_number, user_name, tagset_id, ts_epoch,
        end_step, origin_run_number, code_sha)``, checked by ``Writer.begin_run(...,
        batch=...)``; its id is assigned ahead. ``end_buffered_run`` ends it before it is
        written."""
        self._live_cache()
        if len(self._tasks) >= self.size or self._blob_bytes > self.MAX_BLOB_BYTES:
            self.flush()
        pk = self._next_run
        if pk is None:
            pk = int(self.writer.store.scalar(query.NEXT_RUN_PK))
        self._next_run = pk + 1
        self._run_keys.add((row[0], row[1]))
        self._runs[pk] = [pk, *row, "running", None]
        return RunRef(pk, row[0], row[1])

    def end_buffered_run(self, run: RunRef, status: str, ts_epoch: int) -> bool:
        """End a run of this batch not written yet (False: it is not one)."""
        row = self._runs.get(run.run_pk)
        if row is None:
            return False
        row[9] = status
        row[10] = ts_epoch
        return True

    def add(self, run: RunRef, step_name: str, task_id: str, **done: Unpack[DoneTask]) -> TaskRef:
        """Buffer one finished task (``DoneTask``'s keywords, see ``Writer.add_done_task``);
        return its reference."""
        artifacts, task_ok, success, started_at, ended_at, attempt = done_fields(done)
        task = self.task(
            run, step_name, task_id, ts_epoch=started_at, origin_task_pk=done.get("origin_task_pk")
        )
        pk = task.task_pk
        self._attempts += (pk, attempt, started_at, ended_at, int(task_ok), int(success))
        self._ends[(pk, attempt)] = ended_at
        add_task_logs(self._logs, pk, attempt, done.get("logs", ()))
        self.artifacts(task, attempt, artifacts, ended_at)
        self.metadata(task, done.get("metadata", ()))
        self.end_metadata(task, attempt, task_ok, ended_at)
        return task

    def step(self, run: RunRef, step_name: str, ts_epoch: int) -> None:
        """Buffer a step (no-op if the file or this transaction has it)."""
        cache = self._live_cache()
        key = (run.run_pk, step_name)
        if key not in cache.steps:
            self._steps.append((run.run_pk, step_name, ts_epoch))
            cache.steps.add(key)

    def task(
        self,
        run: RunRef,
        step_name: str,
        task_id: str,
        *,
        ts_epoch: int,
        origin_task_pk: int | None = None,
    ) -> TaskRef:
        """Buffer a task (and its step, if new); its attempts, artifacts, metadata and
        logs follow through the other methods. Buffered tasks are written first when
        the batch is full."""
        cache = self._live_cache()
        if len(self._tasks) >= self.size or self._blob_bytes > self.MAX_BLOB_BYTES:
            self.flush()
        run_pk = run.run_pk
        if (run_pk, step_name) not in cache.steps:
            self.step(run, step_name, ts_epoch)
        pk = self._next_pk
        if pk is None:
            pk = int(self.writer.store.scalar(query.NEXT_TASK_PK))
        self._next_pk = pk + 1
        self._tasks.append((pk, run_pk, step_name, task_id, ts_epoch, origin_task_pk))
        self._last_md[pk] = 0  # a new task: its metadata is numbered from 1
        return TaskRef(pk, run, step_name, task_id)

    def attempt(
        self,
        task: TaskRef,
        attempt: int,
        *,
        started_at: int,
        ended_at: int | None = None,
        task_ok: bool | None = None,
        success: bool | None = None,
    ) -> None:
        """Buffer an attempt of a buffered task: ended (``ended_at``, ``task_ok``,
        ``success``), or begun only (all three None: a killed attempt)."""
        self._attempts += (
            task.task_pk,
            attempt,
            started_at,
            ended_at,
            None if task_ok is None else int(task_ok),
            None if success is None else int(success),
        )
        self._ends[(task.task_pk, attempt)] = ended_at

    def _log_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Buffer log lines' rows (``add_log_lines``)."""
        logs = self._logs
        for row in rows:
            logs += row

    def artifacts(
        self,
        task: TaskRef,
        attempt: int,
        artifacts: Mapping[str, PreparedArtifact],
        ts_epoch: int,
        artifact_ts: Mapping[str, int] | None = None,
    ) -> None:
        """Buffer an attempt's artifacts (dated ``ts_epoch`` unless ``artifact_ts`` has
        their own time); new blobs are buffered with them."""
        cache = self._live_cache()
        blobs = cache.blobs
        names = cache.names
        if not names.keys() >= artifacts.keys():
            artifact_name_ids(self.writer.store, artifacts, names)
        pk = task.task_pk
        key = (pk, attempt)
        rows = self._artifacts
        if key not in self._ends:  # its attempt is not buffered (yet): dated at flush
            self._undated.extend(range(len(rows), len(rows) + len(artifacts)))
            end = None
        else:
            end = self._ends[key]
        for name, art in artifacts.items():
            bid = blobs.get(art.sha)
            if bid is None:
                bid = blobs[art.sha] = self._blob_id(name, art)
            when = ts_epoch if artifact_ts is None else artifact_ts.get(name, ts_epoch)
            rows.append((pk, attempt, names[name], bid, None if when == end else when))

    def metadata(self, task: TaskRef, entries: Iterable[MetadataEntry]) -> None:
        """Buffer metadata entries of a task, in order (numbered after its last)."""
        store = self.writer.store
        values = self._live_cache().values
        pk = task.task_pk
        rows = self._metadata
        n = self._last_metadata_pk(pk)
        for e in entries:
            value = e.value
            if isinstance(value, str):
                key = (e.field_name, e.type or e.field_name, 0, value)
            else:
                key = (
                    e.field_name,
                    e.type or e.field_name,
                    1,
                    json.dumps(value, ensure_ascii=False),
                )
            vid = values.get(key)
            if vid is None:
                vid = values[key] = metadata_value_id(store, *key)
            n += 1
            rows += (pk, n, e.attempt, vid, e.ts_epoch)
        self._last_md[pk] = n

    def end_metadata(self, task: TaskRef, attempt: int, task_ok: bool, ts_epoch: int) -> None:
        """The ``attempt_ok`` and ``attempt-done`` entries of an ended attempt (as
        ``Writer.end_attempt`` records them)."""
        ids = self._end_values.get((task_ok, attempt))
        if ids is None:
            values = self._live_cache().values
            pair = []
            for e in status_entries(attempt, task_ok, ts_epoch):
                key = (e.field_name, e.type or e.field_name, 0, e.value)
                vid = values.get(key)
                if vid is None:
                    vid = values[key] = metadata_value_id(self.writer.store, *key)
                pair.append(vid)
            ids = self._end_values[(task_ok, attempt)] = (pair[0], pair[1])
        pk = task.task_pk
        n = self._last_metadata_pk(pk)
        self._metadata += (
            pk,
            n + 1,
            attempt,
            ids[0],
            ts_epoch,
            pk,
            n + 2,
            attempt,
            ids[1],
            ts_epoch,
        )
        self._last_md[pk] = n + 2

    def _last_metadata_pk(self, task_pk: int) -> int:
        """The task's last metadata_pk: of this buffer, else of the file (a task of an
        earlier flush, or written before the bulk)."""
        n = self._last_md.get(task_pk)
        if n is None:
            n = self.writer.store.scalar(*query.compile_last_metadata_pk(task_pk)) or 0
        return int(n)

    def _live_cache(self) -> BulkCache:
        cache = self.writer._cache
        if cache is None:
            raise MetaflowInternalError("a TaskBatch is used after its Writer.bulk() ended")
        return cache

    def _blob_id(self, name: str, art: PreparedArtifact) -> int:
        """Id of the artifact's blob: one in the file already, or a new one (its rows are
        buffered with an id assigned ahead: nothing else writes during a bulk). Whether
        the file had the blob before is asked at ``flush``, for all new blobs at once."""
        store = self.writer.store
        if art.blob is None:
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
        if chunk_rows:
            self._chunks.extend(chunk_rows)
        self._blob_bytes += row[3]
        self._new_blobs[art.sha] = new_id
        return new_id

    def _insert_runs(self) -> None:
        """Insert the buffered runs; a number the file has is refused as ``Writer.begin_run``
        refuses it (the file's unique key finds it: no lookup per run)."""
        store = self.writer.store
        try:
            insert_rows(store, Insert.RUN, list(self._runs.values()))
        except StoreError:
            taken = store.query(*query.compile_runs_existing(sorted(self._run_keys)))
            for flow_id, number, pk in taken:
                if pk in self._runs:
                    continue  # one of this batch's, inserted by a statement before
                raise MetaflowInternalError(
                    f"Run {flow_id}/{number} already exists in {store.path}"
                ) from None
            raise

    def _reuse_blobs(self) -> None:
        """New blobs the file held before this batch: their artifacts point to the blob
        in the file and their rows are dropped; the other new blobs are numbered again
        without gaps (the ids ``add_done_task`` would have given them)."""
        new, self._new_blobs = self._new_blobs, {}
        found = blob_ids(self.writer.store, new)
        if not found:
            return
        cache = self._live_cache()
        dropped: set[int] = set()
        remap: dict[int, int] = {}
        next_id = min(new.values())
        for sha, provisional in sorted(new.items(), key=lambda kv: kv[1]):
            bid = found.get(sha)
            if bid is not None:
                dropped.add(provisional)
            else:
                bid = next_id
                next_id += 1
            remap[provisional] = cache.blobs[sha] = bid
        self._next_blob = next_id
        self._blobs = [(remap[r[0]], *r[1:]) for r in self._blobs if r[0] not in dropped]
        self._chunks = [(remap[r[0]], *r[1:]) for r in self._chunks if r[0] not in dropped]
        self._artifacts = [(*r[:3], remap.get(r[3], r[3]), r[4]) for r in self._artifacts]

    def flush(self) -> None:
        """Insert the buffered tasks' rows (one statement per table)."""
        if not any(
            (
                self._runs,
                self._steps,
                self._blobs,
                self._tasks,
                self._attempts,
                self._artifacts,
                self._metadata,
                self._logs,
            )
        ):
            return
        store = self.writer.store
        if self._new_blobs:
            self._reuse_blobs()
        if self._undated:  # artifacts buffered before their attempt
            ends, rows = self._ends, self._artifacts
            for i in self._undated:
                pk, att, nid, bid, ts = rows[i]
                if ts is not None and ts == ends.get((pk, att)):
                    rows[i] = (pk, att, nid, bid, None)
        with store.write():
            if self._runs:
                self._insert_runs()
            insert_rows(store, Insert.STEP, self._steps)
            insert_blob_rows(store, self._blobs, self._chunks)
            insert_rows(store, Insert.TASK, self._tasks)
            insert_flat(store, Insert.ENDED_ATTEMPT, self._attempts, 6)
            insert_rows(store, Insert.ARTIFACT, self._artifacts)
            insert_flat(store, Insert.METADATA, self._metadata, 5)
            insert_flat(store, Insert.LOG_LINE, self._logs, 6)
        self._reset()

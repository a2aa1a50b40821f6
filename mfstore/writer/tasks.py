"""Writes of steps, tasks, attempts, metadata, logs and artifacts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .. import query
from ..artifacts import PreparedArtifact
from ..exception import MetaflowInternalError
from ..identity import now_ms
from ..store import Store
from .records import (
    BulkCache,
    Insert,
    LogLineWrites,
    MetadataEntry,
    RunRef,
    TaskRef,
    artifact_blob_id,
    insert_artifact_rows,
    insert_metadata_rows,
    metadata_value_id,
    numbered,
    status_entries,
)


class TaskWrites(LogLineWrites):
    """``Writer``'s step, task, attempt and log writes (mixed into ``Writer``)."""

    store: Store
    _cache: BulkCache | None

    def add_step(self, run: RunRef, step_name: str, *, ts_epoch: int | None = None) -> None:
        """Record a step of a run (no-op if it exists)."""
        with self.store.write():
            self.store.execute(
                Insert.STEP, (run.run_pk, step_name, now_ms() if ts_epoch is None else ts_epoch)
            )

    def add_task(
        self,
        run: RunRef,
        step_name: str,
        task_id: str | None = None,
        *,
        ts_epoch: int | None = None,
        origin_task_pk: int | None = None,
        metadata: Iterable[MetadataEntry] = (),
    ) -> TaskRef:
        """Record a task (and its step if new). ``task_id`` defaults to the run's next id."""
        ts = now_ms() if ts_epoch is None else ts_epoch
        with self.store.write():
            self.store.execute(Insert.STEP, (run.run_pk, step_name, ts))
            if task_id is None:
                task_id = self.next_task_id(run)
            task_pk = self.store.insert(
                Insert.NEW_TASK,
                (run.run_pk, step_name, task_id, ts, origin_task_pk),
            )
            task = TaskRef(task_pk, run, step_name, task_id)
            self._insert_metadata(task, metadata)
        return task

    def next_task_id(self, run: RunRef) -> str:
        """The next per-run task id (Metaflow's local scheme: 1, 2, ...; 0 is _parameters)."""
        top = self.store.scalar(*query.compile_max_task_id(run.run_pk))
        return str(1 if top is None else int(top) + 1)

    def begin_attempt(
        self,
        task: TaskRef,
        attempt: int,
        *,
        ts_epoch: int | None = None,
        metadata: Iterable[MetadataEntry] = (),
    ) -> None:
        """Record that an attempt started (its logs and metadata may follow)."""
        with self.store.write():
            self.store.execute(
                "INSERT INTO attempts (task_pk, attempt, started_at) VALUES (?, ?, ?)",
                (task.task_pk, attempt, now_ms() if ts_epoch is None else ts_epoch),
            )
            self._insert_metadata(task, metadata)

    def add_metadata(self, task: TaskRef, entries: Iterable[MetadataEntry]) -> None:
        """Record metadata events."""
        with self.store.write():
            self._insert_metadata(task, entries)

    def _insert_metadata(self, task: TaskRef, entries: Iterable[MetadataEntry]) -> None:
        rows = []
        for e in entries:
            is_json = not isinstance(e.value, str)
            value = json.dumps(e.value, ensure_ascii=False) if is_json else e.value
            rows.append(
                (
                    e.field_name,
                    e.type or e.field_name,
                    int(is_json),
                    value,
                    task.task_pk,
                    e.attempt,
                    e.ts_epoch,
                )
            )
        if not rows:
            return
        cache = self._cache
        if cache is None:
            insert_metadata_rows(self.store, rows)
            return
        ids = []
        for r in rows:
            key = r[:4]
            vid = cache.values.get(key)
            if vid is None:
                vid = cache.values[key] = metadata_value_id(self.store, *key)
            ids.append((r[4], r[5], vid, r[6]))
        last = cache.last_metadata
        self.store.executemany(Insert.METADATA, numbered(self.store, ids, last))
        for task_pk, _attempt, _vid, _ts in ids:  # bounded: later entries look it up
            last.pop(task_pk, None)

    def _log_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Write log lines' rows (``add_log_lines``) in one transaction."""
        if rows:
            with self.store.write():
                self.store.executemany(Insert.LOG_LINE, rows)

    def end_attempt(
        self,
        task: TaskRef,
        attempt: int,
        *,
        artifacts: Mapping[str, PreparedArtifact],
        task_ok: bool,
        success: bool,
        ts_epoch: int | None = None,
        metadata: Iterable[MetadataEntry] = (),
        status_metadata: bool = True,
        artifact_ts: Mapping[str, int] | None = None,
    ) -> None:
        """Write an attempt's artifacts and end it, in one transaction.

        Adds the ``attempt_ok`` and ``attempt-done`` metadata Metaflow records, unless
        ``status_metadata`` is False (the Metaflow extension records Metaflow's own).
        Artifacts are dated ``ts_epoch`` unless ``artifact_ts`` gives their own time (the
        importer keeps each artifact record's).
        """
        ts = now_ms() if ts_epoch is None else ts_epoch
        status = status_entries(attempt, task_ok, ts) if status_metadata else []
        with self.store.write():
            changed = self.store.change(
                "UPDATE attempts SET ended_at = :ts, task_ok = :ok, success = :success "
                "WHERE task_pk = :task AND attempt = :attempt",
                {
                    "ts": ts,
                    "ok": int(task_ok),
                    "success": int(success),
                    "task": task.task_pk,
                    "attempt": attempt,
                },
            )
            if changed != 1:
                raise MetaflowInternalError(f"attempt {attempt} of {task.pathspec} was never begun")
            # After ended_at: an artifact dated at the attempt's end is stored without its time.
            self._insert_artifacts(task, attempt, artifacts, ts, artifact_ts or {})
            self._insert_metadata(task, [*metadata, *status])

    def _insert_artifacts(
        self,
        task: TaskRef,
        attempt: int,
        artifacts: Mapping[str, PreparedArtifact],
        ts: int,
        artifact_ts: Mapping[str, int],
    ) -> None:
        """Artifacts of an attempt that ends at ``ts`` (so their time is stored only when
        ``artifact_ts`` gives another)."""
        rows = []
        cache = self._cache
        for name, art in artifacts.items():
            when = artifact_ts.get(name, ts)
            bid = None if cache is None else cache.blobs.get(art.sha)
            if bid is None:
                bid = artifact_blob_id(self.store, name, art)
                if cache is not None:
                    cache.blobs[art.sha] = bid
            rows.append((task.task_pk, attempt, name, bid, None if when == ts else when))
        insert_artifact_rows(self.store, rows, None if cache is None else cache.names)

    def clone_task(
        self, run: RunRef, origin_task_pk: int, *, metadata: Iterable[MetadataEntry] = ()
    ) -> TaskRef:
        """Copy a finished task of another run into ``run`` (resume): same task id, the
        artifacts of its latest done attempt (same blobs), metadata, no logs."""
        origin = self.store.one(*query.compile_clone_origin(origin_task_pk))
        if origin is None:
            raise MetaflowInternalError(f"task {origin_task_pk} has no finished attempt to clone")
        step_name, origin_task_id, attempt, _started, _ended, task_ok, success = origin
        ts = now_ms()
        with self.store.write():
            task = self.add_task(
                run, step_name, origin_task_id, ts_epoch=ts, origin_task_pk=origin_task_pk
            )
            self.store.execute(
                Insert.ENDED_ATTEMPT, (task.task_pk, attempt, ts, ts, task_ok, success)
            )
            # The clone's attempt ends at ts: its artifacts' time is that end (NULL).
            self.store.execute(
                "INSERT INTO task_artifacts (task_pk, attempt, name_id, blob_id, ts_epoch) "
                "SELECT :task, attempt, name_id, blob_id, NULL FROM task_artifacts "
                "WHERE task_pk = :origin AND attempt = :attempt",
                {"task": task.task_pk, "origin": origin_task_pk, "attempt": attempt},
            )
            self._insert_metadata(task, metadata)
            self._insert_metadata(task, status_entries(attempt, task_ok, ts))
        return task

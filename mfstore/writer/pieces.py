"""Writes the Metaflow extension makes piece by piece, as Metaflow's runtime reports them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .. import query
from ..blobs import (
    PackedBlob,
    blob_id,
    insert_blob,
    pack_blob,
)
from ..identity import now_ms
from ..store import Store
from .records import TASK_FILE_TYPE, BulkCache, MetadataEntry, RunRef, TaskRef
from .tasks import TaskWrites


class PieceWrites(TaskWrites):
    """``Writer``'s piece-by-piece writes of Metaflow's runtime (mixed into ``Writer``)."""

    store: Store
    _cache: BulkCache | None

    def put_blob(self, raw: bytes | memoryview | PackedBlob, sha: str | None = None) -> str:
        """Store bytes once (content-addressed, packed outside the transaction, or packed
        already by ``blobs.pack_blob``); return the sha."""
        packed = raw if isinstance(raw, PackedBlob) else pack_blob(raw, sha)
        with self.store.write():
            insert_blob(self.store, packed)
        return packed.sha

    def has_blob(self, sha: str) -> bool:
        """Whether the file holds the blob ``sha`` (or this ``bulk()`` wrote it already)."""
        cache = self._cache
        return (cache is not None and sha in cache.blobs) or blob_id(self.store, sha) is not None

    def ensure_task(
        self, run: RunRef, step_name: str, task_id: str, *, ts_epoch: int | None = None
    ) -> TaskRef:
        """The task ``step_name/task_id`` of ``run``, recorded first if it is new."""
        with self.store.write():
            pk = self.store.scalar(*query.compile_tasks(run.run_pk, step_name, task_id))
            if pk is not None:
                return TaskRef(int(pk), run, step_name, task_id)
            return self.add_task(run, step_name, task_id, ts_epoch=ts_epoch)

    def ensure_attempt(self, task: TaskRef, attempt: int, *, ts_epoch: int | None = None) -> None:
        """Record that an attempt started, unless it already is."""
        with self.store.write():
            self.store.execute(
                "INSERT INTO attempts (task_pk, attempt, started_at) VALUES (?, ?, ?) "
                "ON CONFLICT (task_pk, attempt) DO NOTHING",
                (task.task_pk, attempt, now_ms() if ts_epoch is None else ts_epoch),
            )

    def replace_log_lines(
        self,
        task: TaskRef,
        attempt: int,
        stream: str,
        lines: Iterable[tuple[int, str]],
        *,
        source: str,
    ) -> None:
        """Replace one source's log of one attempt (Metaflow saves a log file whole)."""
        with self.store.write():
            self.store.execute(
                "DELETE FROM log_lines WHERE task_pk = :task AND attempt = :attempt "
                "AND stream = :stream AND source = :source",
                {"task": task.task_pk, "attempt": attempt, "stream": stream, "source": source},
            )
            self.add_log_lines(task, attempt, stream, lines, source=source)

    def set_task_file(self, task: TaskRef, attempt: int | None, name: str, value: str) -> None:
        """Keep a Metaflow task-level file (a card, a marker) with the task, replacing one
        of the same name. ``value`` is the JSON reference the extension builds."""
        with self.store.write():
            self.store.execute(
                "DELETE FROM metadata WHERE task_pk = :task AND attempt IS :attempt AND value_id IN "
                "(SELECT value_id FROM metadata_values WHERE type = :type AND field_name = :name)",
                {"task": task.task_pk, "attempt": attempt, "type": TASK_FILE_TYPE, "name": name},
            )
            self._insert_metadata(
                task, [MetadataEntry(name, value, TASK_FILE_TYPE, attempt, now_ms())]
            )

    def set_task_origin(self, task: TaskRef, origin_task_pk: int) -> None:
        """Record the task ``task`` was cloned from (resume)."""
        with self.store.write():
            self.store.execute(
                "UPDATE tasks SET origin_task_pk = :origin WHERE task_pk = :task",
                {"origin": origin_task_pk, "task": task.task_pk},
            )

    def set_run_origin(self, run: RunRef, origin_run_number: str) -> None:
        """Record the run ``run`` was resumed from, unless one is recorded already."""
        with self.store.write():
            self.store.execute(
                "UPDATE runs SET origin_run_number = :origin WHERE run_pk = :run "
                "AND origin_run_number IS NULL",
                {"origin": origin_run_number, "run": run.run_pk},
            )

    def add_code_package_ref(
        self, sha: str, *, script_name: str, info: Mapping[str, Any] | None = None
    ) -> bool:
        """Record that blob ``sha`` (already stored) is a code package; False if it is not stored."""
        with self.store.write():
            if blob_id(self.store, sha) is None:
                return False
            self.store.execute(
                "INSERT INTO code_packages (sha, script_name, info) VALUES (?, ?, ?) "
                "ON CONFLICT (sha) DO NOTHING",
                (sha, script_name, json.dumps(dict(info or {}), sort_keys=True)),
            )
        return True

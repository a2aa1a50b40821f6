"""Writing a read run (``ParsedRun``) through ``Writer.task_batch()``: its tasks' rows
go into the file many tasks at a time, inside the import's one transaction."""

from __future__ import annotations

from typing import Any

from .. import query
from ..artifacts import PreparedArtifact
from ..writer import RunRef, TaskBatch, Writer
from .parse import ParsedRun

#: (flow, run) -> (ts_epoch, user_name) of the run record of each run written.
RECORD_TS: dict[tuple[str, str], tuple[int, str | None]] = {}


def run_created_at(run: ParsedRun, imported_before: int | None) -> int:
    """A run's ``created_at``: Metaflow's client dates a run by its run record. A tag edit
    rewrites that record's ts_epoch (Metaflow trap T2), after every step record (the run
    record is written first): then keep the date of an earlier import (re-imports stay
    identical), else the first step record's, written a few ms after the original run
    record."""
    ts, first = run.record_ts, run.first_step_ts
    if first is None or ts <= first:
        return ts
    return imported_before if imported_before is not None else first


class BlobSource:
    """The blobs of the runs being written: each run carries the blobs its reader had not
    handed over before; the others are found by sha in the file being written, in
    what this import handed over, or (rarely) read again."""

    def __init__(self, reread: Any) -> None:
        self._reread = reread
        self._handed: dict[str, PreparedArtifact] = {}
        # Type names of the values that are not plain data: named from the record of the
        # first task that had them (Metaflow's type), which a blob read again lacks.
        self._types: dict[str, str] = {}

    def add(self, blobs: dict[str, PreparedArtifact]) -> None:
        """Blobs that arrived with a run (kept until the next run's arrive)."""
        self._handed = blobs
        for sha, art in blobs.items():
            if art.value_json is None:
                self._types.setdefault(sha, art.type)

    def get(self, writer: Writer, flow_id: str, sha: str) -> PreparedArtifact | None:
        art = self._handed.get(sha)
        if art is not None:
            return art
        if writer.has_blob(sha):
            return PreparedArtifact(None, sha, "", None)
        prepared: PreparedArtifact | None = self._reread(flow_id, sha)
        if prepared is not None and sha in self._types:
            prepared.type = self._types[sha]
        return prepared


def write_run(
    writer: Writer,
    batch: TaskBatch,
    run: ParsedRun,
    blobs: BlobSource,
    imported_before: int | None = None,
) -> RunRef:
    """Write ``run`` (inside ``writer.bulk()``); return it. ``imported_before``: the
    created_at this run has in the file being imported into, if any."""
    flow_id = run.flow_id
    RECORD_TS[(flow_id, run.run_number)] = (run.record_ts, run.record_user)
    ref = writer.begin_run(
        flow_id,
        user_name=run.user_name,
        user_tags=run.user_orig,
        system_tags=run.system_tags,
        run_number=run.run_number,
        ts_epoch=run_created_at(run, imported_before),
        end_step=run.end_step,
        origin_run_number=run.origin_run,
    )
    if set(run.user_now) != set(run.user_orig):
        writer.replace_user_tags(
            ref.run_pk,
            sorted(set(run.user_orig) - set(run.user_now)),
            sorted(set(run.user_now) - set(run.user_orig)),
            user_name=run.record_user,
            ts_epoch=run.record_ts,
        )
    for step_name, ts in run.steps:
        batch.step(ref, step_name, ts)

    flushed = False
    failed_at: int | None = None
    end_success: bool | None = None
    end_done_ts: int | None = None
    for t in run.tasks:
        origin_task_pk = None
        if run.origin_run and t.origin_task is not None:
            if not flushed:  # the origin may be in this batch
                batch.flush()
                flushed = True
            origin_task_pk = writer.store.scalar(
                *query.compile_task_lookup(
                    flow_id, run.origin_run, t.step_name, t.origin_task, pk_only=True
                )
            )
        task = batch.task(
            ref, t.step_name, t.task_id, ts_epoch=t.ts_epoch, origin_task_pk=origin_task_pk
        )
        done = {d.attempt: d for d in t.done}
        for n, started in t.attempts:
            d = done.get(n)
            if d is None:
                batch.attempt(task, n, started_at=started)
            else:
                batch.attempt(
                    task,
                    n,
                    started_at=started,
                    ended_at=d.ts_epoch,
                    task_ok=d.task_ok,
                    success=d.success,
                )
        batch.metadata(task, t.metadata)
        for n, stream, source, lines in t.logs:
            batch.add_log_lines(task, n, stream, lines, source=source)
        last_done = None
        for d in t.done:
            arts = {}
            for name, sha in d.artifacts.items():
                art = blobs.get(writer, flow_id, sha)
                if art is not None:
                    arts[name] = art
            batch.artifacts(task, d.attempt, arts, d.ts_epoch, d.artifact_ts)
            batch.end_metadata(task, d.attempt, d.task_ok, d.ts_epoch)
            last_done = d
        if last_done is not None:
            if not last_done.task_ok:
                failed_at = max(failed_at or 0, last_done.ts_epoch)
            if t.step_name == run.end_step:
                end_success, end_done_ts = last_done.success, last_done.ts_epoch
    if end_success:
        writer.end_run(ref, successful=True, ts_epoch=end_done_ts, checkpoint=False)
    elif failed_at is not None or end_success is False:
        writer.end_run(
            ref, successful=False, ts_epoch=max(failed_at or 0, end_done_ts or 0), checkpoint=False
        )
    return ref

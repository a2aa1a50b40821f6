"""Writing one Metaflow run into a staging store through ``Writer``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import query
from ..artifacts import PreparedArtifact
from ..store import Store
from ..writer import MetadataEntry, RunRef, TaskRef, Writer
from .history import (
    END_FIELDS,
    AttemptFiles,
    BlobFiles,
    ImportReport,
    TaskFiles,
    loads_flag,
    parse_mflog,
    read_json,
    read_task,
)

#: (flow, run) -> (ts_epoch, user_name) of the run record read by the last stage_run.
RECORD_TS: dict[tuple[str, str], tuple[int, str | None]] = {}


def _run_created_at(
    run_rec: dict[str, Any], first_step_ts: int | None, imported_before: int | None
) -> int:
    # Metaflow's client dates a run by its run record. A tag edit rewrites that record's
    # ts_epoch (Metaflow trap T2), after every step record (the run record is written
    # first): then keep the date of an earlier import (re-imports stay identical), else
    # the first step record's, written a few ms after the original run record.
    ts = int(run_rec["ts_epoch"])
    if first_step_ts is None or ts <= first_step_ts:
        return ts
    return imported_before if imported_before is not None else first_step_ts


def stage_run(
    writer: Writer,
    flow_id: str,
    run_dir: Path,
    blobs: BlobFiles,
    report: ImportReport,
    target: Store | None = None,
) -> RunRef:
    """Write one Metaflow run through ``writer``; return it. ``target``: the file being
    imported into (a run already there keeps its created_at)."""
    run_rec = read_json(run_dir / "_meta" / "_self.json")
    run_number = str(run_rec.get("run_number", run_dir.name))
    step_dirs = sorted(
        (
            d
            for d in run_dir.iterdir()
            if d.is_dir() and d.name != "_meta" and (d / "_meta" / "_self.json").is_file()
        ),
        key=lambda d: d.name,
    )
    step_recs = {d.name: read_json(d / "_meta" / "_self.json") for d in step_dirs}
    first = step_recs.get("_parameters") or (
        min(step_recs.values(), key=lambda r: r["ts_epoch"]) if step_recs else None
    )
    first_ts = min((int(r["ts_epoch"]) for r in step_recs.values()), default=None)
    before = None
    if target is not None:
        row = target.one(*query.compile_run_by_key(flow_id, run_number))
        before = row[2] if row is not None else None
    created = _run_created_at(run_rec, first_ts, before)
    RECORD_TS[(flow_id, run_number)] = (int(run_rec["ts_epoch"]), run_rec.get("user_name"))
    user_now = list(dict.fromkeys(run_rec.get("tags") or []))
    user_orig = list(dict.fromkeys((first or run_rec).get("tags") or []))
    system_tags = list(dict.fromkeys(run_rec.get("system_tags") or []))
    user_name = (first or run_rec).get("user_name") or run_rec.get("user_name")

    tasks: list[TaskFiles] = []
    for d in step_dirs:
        for task_dir in d.iterdir():
            if task_dir.name == "_meta" or not (task_dir / "_meta" / "_self.json").is_file():
                continue
            tasks.append(read_task(d, task_dir))
    report.tasks += len(tasks)
    tasks.sort(key=lambda t: (t.ts_epoch, int(t.task_id) if t.task_id.isdigit() else 0, t.task_id))

    end_step = "end"
    origin_run: str | None = None
    for t in tasks:
        for rec in t.metadata:
            if t.step_name == "_parameters" and rec["field_name"] == "end_step":
                end_step = str(rec["value"])
            if (
                rec["field_name"] == "origin-run-id"
                and str(rec["value"]) not in ("None", "")
                and origin_run is None
            ):
                origin_run = str(rec["value"])

    run = writer.begin_run(
        flow_id,
        user_name=user_name,
        user_tags=user_orig,
        system_tags=system_tags,
        run_number=run_number,
        ts_epoch=created,
        end_step=end_step,
        origin_run_number=origin_run,
    )
    if set(user_now) != set(user_orig):
        writer.replace_user_tags(
            run.run_pk,
            sorted(set(user_orig) - set(user_now)),
            sorted(set(user_now) - set(user_orig)),
            user_name=run_rec.get("user_name"),
            ts_epoch=int(run_rec["ts_epoch"]),
        )
    for d in step_dirs:
        writer.add_step(run, d.name, ts_epoch=int(step_recs[d.name]["ts_epoch"]))

    failed_at: int | None = None
    end_success: bool | None = None
    end_done_ts: int | None = None
    for t in tasks:
        origin_task_pk = None
        origin_task = next(
            (str(r["value"]) for r in t.metadata if r["field_name"] == "origin-task-id"), None
        )
        if origin_run and origin_task is not None:
            origin_task_pk = writer.store.scalar(
                *query.compile_task_by_key(flow_id, origin_run, t.step_name, origin_task)
            )
        task = writer.add_task(
            run, t.step_name, t.task_id, ts_epoch=t.ts_epoch, origin_task_pk=origin_task_pk
        )
        last_done: tuple[int, bool, bool, int] | None = None
        for n in sorted(t.attempts):
            a = t.attempts[n]
            writer.begin_attempt(
                task, n, ts_epoch=a.started_at if a.started_at is not None else t.ts_epoch
            )
        writer.add_metadata(
            task,
            [
                MetadataEntry(
                    r["field_name"],
                    r["value"],
                    r.get("type") or r["field_name"],
                    r["_attempt"],
                    int(r["ts_epoch"]),
                )
                for r in t.metadata
                if not (
                    r["field_name"] in END_FIELDS
                    and r["_attempt"] in t.attempts
                    and _is_done(t.attempts[r["_attempt"]])
                )
            ],
        )
        for n in sorted(t.attempts):
            _import_logs(writer, task, t.path, n)
        for n in sorted(t.attempts):
            a = t.attempts[n]
            if not _is_done(a):
                continue
            prepared: dict[str, PreparedArtifact] = {}
            for name, rec in a.artifacts.items():
                p = blobs.prepared(
                    rec["sha"],
                    a.data_info.get(name) or {},
                    f"{run.pathspec}/{t.step_name}/{t.task_id}/{name}",
                )
                if p is not None:
                    prepared[name] = p
            task_ok = loads_flag(prepared.get("_task_ok"))
            success = loads_flag(prepared.get("_success"))
            ok = bool(task_ok) if task_ok is not None else False
            artifact_ts = {name: int(rec["ts_epoch"]) for name, rec in a.artifacts.items()}
            # Metaflow's client: a task finished when its _task_ok artifact was recorded
            ts = artifact_ts.get("_task_ok") or (
                a.done_ts or max(artifact_ts.values(), default=t.ts_epoch)
            )
            writer.end_attempt(
                task,
                n,
                artifacts=prepared,
                task_ok=ok,
                success=bool(success),
                ts_epoch=ts,
                artifact_ts={name: artifact_ts[name] for name in prepared},
            )
            last_done = (n, ok, bool(success), ts)
        if last_done is not None:
            _, ok, success, ts = last_done
            if not ok:
                failed_at = max(failed_at or 0, ts)
            if t.step_name == end_step:
                end_success, end_done_ts = success, ts
    if end_success:
        writer.end_run(run, successful=True, ts_epoch=end_done_ts, checkpoint=False)
    elif failed_at is not None or end_success is False:
        writer.end_run(
            run, successful=False, ts_epoch=max(failed_at or 0, end_done_ts or 0), checkpoint=False
        )
    return run


def _is_done(a: AttemptFiles) -> bool:
    return a.done_ts is not None or bool(a.artifacts)


def _import_logs(writer: Writer, task: TaskRef, task_dir: Path, attempt: int) -> None:
    for stream in ("stdout", "stderr"):
        for source in ("runtime", "task"):
            lines = list(parse_mflog(task_dir / (f"{attempt}.{source}_{stream}.log")))
            if lines:
                writer.add_log_lines(task, attempt, stream, lines, source=source)

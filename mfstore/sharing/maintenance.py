"""Commands that keep a file: delete + garbage collection, verify, stats."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import query
from ..blobs import Progress, verify_blobs
from ..exception import CommandException, StoreError, StoreFullError, disk_full
from ..store import Store
from ..writer import copy as copied
from .files import fold_after_commit
from .select import RunFilter, describe_runs, select_runs


@dataclass
class DeleteReport:
    runs: list[str] = field(default_factory=list)
    tasks: int = 0
    blobs_removed: int = 0
    bytes_before: int = 0
    bytes_after: int = 0


def delete(
    path: Path,
    f: RunFilter,
    *,
    dry_run: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> DeleteReport:
    """Remove the matching runs, reclaim unreferenced blobs and shrink the file.

    A run still marked running is refused (``guards.check_deletable``); ``force``
    deletes it only if its runtime is gone (idle for ``guards.STALE_SECONDS``).
    ``progress(done, total, what)`` is called once per selected run while they are
    counted, then once per phase (delete, garbage collection, compaction)."""
    from ..guards import check_deletable

    if f.is_empty():
        raise CommandException("give run pathspecs or filters: refusing to delete every run")
    try:
        store = Store(path)
    except StoreFullError:
        raise disk_full(path, f"nothing was deleted: {path} is as it was") from None
    report = DeleteReport(bytes_before=Path(path).stat().st_size)
    try:
        step = progress or (lambda _done, _total, _what: None)
        run_pks = select_runs(store, f)
        report.runs = describe_runs(store, run_pks)
        total = len(run_pks) + (0 if dry_run else 3)
        for i, pk in enumerate(run_pks):
            step(i, total, "counting tasks")
            report.tasks += int(store.scalar(*query.compile_task_count(pk)))
        check_deletable(store, run_pks, force=force)
        if dry_run or not run_pks:
            step(total, total, "done")
            report.bytes_after = report.bytes_before
            return report
        step(len(run_pks), total, "deleting runs")
        try:
            with store.write():
                copied.delete_runs(store, run_pks)
                step(len(run_pks) + 1, total, "removing unreferenced blobs")
                report.blobs_removed = copied.collect_garbage(store)
                copied.drop_delete_scratch(store)
        except StoreFullError:
            raise disk_full(path, f"nothing was deleted: {path} is as it was") from None
        deleted = f"the {len(run_pks)} runs were deleted (that is kept)"
        step(len(run_pks) + 2, total, "compacting the file")
        try:
            store.execute("VACUUM")
        except StoreFullError:
            raise disk_full(
                path,
                f"{deleted}, but the file could not shrink: it keeps its size and later runs "
                "reuse the freed space",
                "free some space; the next `mfstore delete` shrinks it",
            ) from None
        fold_after_commit(store, deleted)
        step(total, total, "done")
    finally:
        store.close()
    report.bytes_after = Path(path).stat().st_size
    return report


def verify(path: Path, *, progress: Progress | None = None) -> list[str]:
    """Every problem found in the file, one line each (empty list: the file is sound)."""
    problems: list[str] = []
    try:
        store = Store(path, reader=True)
    except Exception as exc:
        return [f"{path}: cannot be opened: {exc}"]
    try:
        with store.read():  # one consistent snapshot while others write or delete
            try:
                for (msg,) in store.query("PRAGMA integrity_check"):
                    if msg != "ok":
                        problems.append(f"integrity_check: {msg}")
            except StoreError as exc:
                problems.append(f"integrity_check failed: {exc}")
            try:
                for table, rowid, parent, _fk in store.query("PRAGMA foreign_key_check"):
                    problems.append(
                        f"foreign key: {table} row {rowid} refers to a missing {parent} row"
                    )
            except StoreError as exc:
                problems.append(f"foreign_key_check failed: {exc}")
            for flow_id, run_number, step, task_id, attempt, name, sha in store.query(
                query.ARTIFACTS_MISSING_BLOBS
            ):
                problems.append(
                    f"artifact {flow_id}/{run_number}/{step}/{task_id}/{name} (attempt {attempt}): "
                    f"its blob (blob_id {sha}) is missing"
                )
            for task_pk, step, task_id, run_pk in store.query(query.TASKS_MISSING_RUNS):
                problems.append(
                    f"task {step}/{task_id} (task_pk {task_pk}): its run (run_pk {run_pk}) is missing"
                )
            for flow_id, run_number in store.query(query.RUNS_MISSING_TAGSETS):
                problems.append(f"run {flow_id}/{run_number}: its tag set is missing")
            for (sha,) in store.query(query.CODE_MISSING_BLOBS):
                problems.append(f"code package {sha}: its blob is missing")
            for what, sql in query.compile_value_checks():
                row = store.one(sql)
                if row is not None:
                    problems.append(f"{what} (the first such row: {row[0]!r})")
            problems += _verify_blobs(store, progress)
    finally:
        store.close()
    return problems


def _verify_blobs(store: Store, progress: Progress | None) -> list[str]:
    out = []
    for sha, problem in verify_blobs(store, progress):
        used = store.one(*query.compile_blob_user(sha))
        out.append("blob {}{}: {}".format(sha, f" (artifact {used[0]})" if used else "", problem))
    return out


def stats(path: Path, *, progress: Progress | None = None) -> dict[str, Any]:
    """Runs, tasks, artifacts per flow; stored vs raw bytes; dedup and compression ratios.

    ``progress(done, total, what)`` is called before each of its five counts and at the end."""
    step = progress or (lambda _done, _total, _what: None)
    store = Store(path, reader=True)
    try:
        with store.read():  # one consistent snapshot while others write or delete
            step(0, 5, "runs")
            flows = {}
            for flow_id, runs, ok, failed, running in store.query(query.FLOW_RUN_STATS):
                flows[flow_id] = {
                    "runs": runs,
                    "successful": ok,
                    "failed": failed,
                    "running": running,
                }
            step(1, 5, "tasks")
            for flow_id, tasks in store.query(query.FLOW_TASK_COUNTS):
                flows[flow_id]["tasks"] = tasks
            step(2, 5, "artifacts")
            for flow_id, n, logical in store.query(query.FLOW_ARTIFACT_STATS):
                flows[flow_id]["artifacts"] = n
                flows[flow_id]["artifact_bytes"] = logical
            step(3, 5, "blobs")
            n_blobs, raw, stored, logical = store.one(query.BLOB_TOTALS) or (0, 0, 0, 0)
            step(4, 5, "log lines")
            log_lines = store.scalar(query.LOG_LINE_COUNT)
            step(5, 5, "done")
            return {
                "file": str(path),
                "file_bytes": Path(path).stat().st_size,
                "flows": flows,
                "runs": sum(f["runs"] for f in flows.values()),
                "tasks": sum(f.get("tasks", 0) for f in flows.values()),
                "artifacts": sum(f.get("artifacts", 0) for f in flows.values()),
                "log_lines": log_lines,
                "blobs": n_blobs,
                "artifact_bytes": logical,
                "raw_bytes": raw,
                "stored_bytes": stored,
                "dedup_ratio": round(logical / raw, 3) if raw else None,
                "compression_ratio": round(raw / stored, 3) if stored else None,
            }
    finally:
        store.close()

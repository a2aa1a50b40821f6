"""Commands that keep a file: delete + garbage collection, verify, stats."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..blobs import Progress, verify_blobs
from ..exception import CommandException, StoreError, StoreFullError, disk_full
from ..store import Store
from .files import fold_after_commit
from .select import RunFilter, describe_runs, select_runs


@dataclass
class DeleteReport:
    runs: list[str] = field(default_factory=list)
    tasks: int = 0
    blobs_removed: int = 0
    bytes_before: int = 0
    bytes_after: int = 0


def collect_garbage(store: Store) -> int:
    """Remove blobs no artifact or code package references (and unused tag sets,
    code packages and empty flows); inside ``store.write()``. Returns blobs removed."""
    store.execute(
        "DELETE FROM code_packages WHERE sha NOT IN (SELECT code_sha FROM runs WHERE code_sha IS NOT NULL) "
        "AND sha NOT IN (SELECT code_sha FROM deployments)"
    )
    unused = (
        "blob_id NOT IN (SELECT blob_id FROM artifacts) "
        "AND lower(hex(sha)) NOT IN (SELECT sha FROM code_packages)"
    )
    n = store.scalar("SELECT count(*) FROM blobs WHERE " + unused)
    store.execute("DELETE FROM blobs WHERE " + unused)
    store.execute("DELETE FROM tagsets WHERE tagset_id NOT IN (SELECT tagset_id FROM runs)")
    store.execute(
        "DELETE FROM flows WHERE flow_id NOT IN (SELECT flow_id FROM runs) "
        "AND flow_id NOT IN (SELECT flow_id FROM deployments) AND flow_id NOT IN (SELECT flow_id FROM tagsets)"
    )
    return int(n or 0)


def delete(path: Path, f: RunFilter, *, dry_run: bool = False, force: bool = False) -> DeleteReport:
    """Remove the matching runs, reclaim unreferenced blobs and shrink the file.

    A run still marked running is refused (``guards.check_deletable``); ``force``
    deletes it only if its runtime is gone (idle for ``guards.STALE_SECONDS``)."""
    from ..guards import check_deletable

    if f.is_empty():
        raise CommandException("give run pathspecs or filters: refusing to delete every run")
    try:
        store = Store(path)
    except StoreFullError:
        raise disk_full(path, f"nothing was deleted: {path} is as it was") from None
    report = DeleteReport(bytes_before=Path(path).stat().st_size)
    try:
        run_pks = select_runs(store, f)
        report.runs = describe_runs(store, run_pks)
        report.tasks = sum(
            int(store.scalar("SELECT count(*) FROM tasks WHERE run_pk = ?", (pk,)))
            for pk in run_pks
        )
        check_deletable(store, run_pks, force=force)
        if dry_run or not run_pks:
            report.bytes_after = report.bytes_before
            return report
        try:
            with store.write():
                store.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS _doomed (run_pk INTEGER PRIMARY KEY)"
                )
                store.execute("DELETE FROM _doomed")
                store.executemany("INSERT INTO _doomed VALUES (?)", [(pk,) for pk in run_pks])
                # Resumed runs that are kept lose the link to a deleted origin task (not the data).
                store.execute(
                    "UPDATE tasks SET origin_task_pk = NULL WHERE run_pk NOT IN (SELECT run_pk FROM _doomed) "
                    "AND origin_task_pk IN (SELECT task_pk FROM tasks WHERE run_pk IN (SELECT run_pk FROM _doomed))"
                )
                store.execute("DELETE FROM runs WHERE run_pk IN (SELECT run_pk FROM _doomed)")
                report.blobs_removed = collect_garbage(store)
                store.execute("DROP TABLE _doomed")
        except StoreFullError:
            raise disk_full(path, f"nothing was deleted: {path} is as it was") from None
        deleted = f"the {len(run_pks)} runs were deleted (that is kept)"
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
                "SELECT r.flow_id, r.run_number, t.step_name, t.task_id, a.attempt, a.name, a.blob_id FROM artifacts a "
                "JOIN tasks t ON t.task_pk = a.task_pk LEFT JOIN runs r ON r.run_pk = t.run_pk "
                "WHERE a.blob_id NOT IN (SELECT blob_id FROM blobs)"
            ):
                problems.append(
                    f"artifact {flow_id}/{run_number}/{step}/{task_id}/{name} (attempt {attempt}): "
                    f"its blob (blob_id {sha}) is missing"
                )
            for task_pk, step, task_id, run_pk in store.query(
                "SELECT task_pk, step_name, task_id, run_pk FROM tasks WHERE run_pk NOT IN (SELECT run_pk FROM runs)"
            ):
                problems.append(
                    f"task {step}/{task_id} (task_pk {task_pk}): its run (run_pk {run_pk}) is missing"
                )
            for flow_id, run_number in store.query(
                "SELECT flow_id, run_number FROM runs WHERE tagset_id NOT IN (SELECT tagset_id FROM tagsets)"
            ):
                problems.append(f"run {flow_id}/{run_number}: its tag set is missing")
            for (sha,) in store.query(
                "SELECT code_sha FROM runs WHERE code_sha IS NOT NULL "
                "AND code_sha NOT IN (SELECT lower(hex(sha)) FROM blobs)"
            ):
                problems.append(f"code package {sha}: its blob is missing")
            problems += _verify_blobs(store, progress)
    finally:
        store.close()
    return problems


def _verify_blobs(store: Store, progress: Progress | None) -> list[str]:
    out = []
    for sha, problem in verify_blobs(store, progress):
        used = store.one(
            "SELECT r.flow_id || '/' || r.run_number || '/' || t.step_name || '/' || t.task_id || '/' || a.name "
            "FROM artifacts a JOIN tasks t ON t.task_pk = a.task_pk JOIN runs r ON r.run_pk = t.run_pk "
            "WHERE a.blob_id = (SELECT blob_id FROM blobs WHERE lower(hex(sha)) = ?) LIMIT 1",
            (sha,),
        )
        out.append("blob {}{}: {}".format(sha, f" (artifact {used[0]})" if used else "", problem))
    return out


def stats(path: Path) -> dict[str, Any]:
    """Runs, tasks, artifacts per flow; stored vs raw bytes; dedup and compression ratios."""
    store = Store(path, reader=True)
    try:
        with store.read():  # one consistent snapshot while others write or delete
            flows = {}
            for flow_id, runs, ok, failed, running in store.query(
                "SELECT flow_id, count(*), sum(status = 'successful'), sum(status = 'failed'), sum(status = 'running') "
                "FROM runs GROUP BY flow_id ORDER BY flow_id"
            ):
                flows[flow_id] = {
                    "runs": runs,
                    "successful": ok,
                    "failed": failed,
                    "running": running,
                }
            for flow_id, tasks in store.query(
                "SELECT r.flow_id, count(*) FROM tasks t JOIN runs r ON r.run_pk = t.run_pk GROUP BY r.flow_id"
            ):
                flows[flow_id]["tasks"] = tasks
            for flow_id, n, logical in store.query(
                "SELECT r.flow_id, count(*), coalesce(sum(b.size), 0) FROM artifacts a JOIN tasks t ON t.task_pk = a.task_pk "
                "JOIN runs r ON r.run_pk = t.run_pk LEFT JOIN blobs b ON b.blob_id = a.blob_id GROUP BY r.flow_id"
            ):
                flows[flow_id]["artifacts"] = n
                flows[flow_id]["artifact_bytes"] = logical
            n_blobs, raw, stored = store.one(
                "SELECT count(*), coalesce(sum(size), 0), coalesce(sum(stored_size), 0) FROM blobs"
            ) or (0, 0, 0)
            logical = (
                store.scalar(
                    "SELECT coalesce(sum(b.size), 0) FROM artifacts a JOIN blobs b ON b.blob_id = a.blob_id"
                )
                or 0
            )
            log_lines = store.scalar("SELECT count(*) FROM log_lines")
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

"""Importing a whole ``.metaflow`` directory: stage each run, copy it into the target
(``sharing.copy_runs``), reconcile tag edits."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import query
from ..artifacts import PreparedArtifact
from ..exception import StoreFullError, disk_full
from ..sharing import RunOutcomes, copy_runs, fold_after_commit
from ..store import Store
from ..writer import TaskBatch, Writer
from ..writer.copy import merge_flow, set_flow_created
from .history import (
    BlobFiles,
    confined_to,
    find_metaflow_root,
    forget_real_paths,
    list_runs,
    read_json,
)
from .parse import default_workers, read_runs
from .write import RECORD_TS, BlobSource, run_created_at, write_run

# -- the whole directory -----------------------------------------------------------


@dataclass
class ImportReport(RunOutcomes):
    """What ``import_metaflow`` did: the runs ``added``, ``identical`` (already imported,
    unchanged: skipped), ``retagged`` (already imported, their tag edits synced) and in
    ``conflicts``, and what else it met."""

    problems: list[str] = field(default_factory=list)
    """Files that could not be read (the run is imported without them)."""
    tasks: int = 0
    """Tasks read from the directory."""
    seconds: float = 0.0
    """How long the import took."""


#: Below this many runs to read, worker processes cost more than they save.
MIN_RUNS_FOR_WORKERS = 64


def import_metaflow(
    path: str | os.PathLike[str],
    target: Store,
    *,
    progress: Callable[[int, int, str], None] | None = None,
    workers: int | None = None,
) -> ImportReport:
    """Import every run of the ``.metaflow`` directory at ``path`` into ``target``.
    Nothing outside that directory is read (symlinks, ``..``, absolute paths and bad
    shas are reported as problems and their run skipped); every blob is checked
    against its sha. The runs are written in one transaction: all of them, or nothing.

    ``workers``: processes that read the history (the files are the cost); default one
    per CPU for histories of at least ``MIN_RUNS_FOR_WORKERS`` runs; 0 or 1: none."""
    started = time.perf_counter()
    root = find_metaflow_root(path)
    report = ImportReport()
    with confined_to(root):
        return _import(root, target, report, progress, started, workers)


def _import(
    root: Path,
    target: Store,
    report: ImportReport,
    progress: Callable[[int, int, str], None] | None,
    started: float,
    workers: int | None,
) -> ImportReport:
    runs = list_runs(root, report.problems)
    flow_ts: dict[str, int] = {}
    jobs: list[tuple[str, str]] = []
    for flow_id, run_dir in runs:
        if flow_id not in flow_ts:
            try:
                flow_ts[flow_id] = int(
                    read_json(root / flow_id / "_meta" / "_self.json")["ts_epoch"]
                )
            except (OSError, ValueError, KeyError, TypeError):
                flow_ts[flow_id] = 0
        forget_real_paths()
        if _already_identical(target, flow_id, run_dir):
            report.identical.append(f"{flow_id}/{run_dir.name}")
        else:
            jobs.append((flow_id, os.fspath(run_dir)))
    if workers is None:
        workers = default_workers() if len(jobs) >= MIN_RUNS_FOR_WORKERS else 1

    files: dict[str, BlobFiles] = {}

    def reread(flow_id: str, sha: str) -> PreparedArtifact | None:
        if flow_id not in files:
            files[flow_id] = BlobFiles(root / flow_id)
        return files[flow_id].load(sha, {}, f"{flow_id} blob {sha}", report.problems)

    # Runs new to the target are written into it; runs it has already (changed since,
    # or re-tagged) are staged and compared by copy_runs. One transaction in the target.
    staging = Store(":memory:")
    writer, stager = Writer(target), Writer(staging)
    blobs = BlobSource(reread)
    merged = None
    try:
        with writer.bulk(), contextlib.ExitStack() as staged:
            staged.enter_context(stager.bulk())
            batch, stage_batch = TaskBatch(writer), TaskBatch(stager)
            flows_seen: set[str] = set()
            skipped = len(runs) - len(jobs)
            for i, item in enumerate(read_runs(root, jobs, workers)):
                if isinstance(item, str):
                    report.problems.append(item)
                    continue
                if progress is not None:
                    progress(skipped + i, len(runs), f"{item.flow_id}/{item.run_number}")
                report.problems += item.problems
                report.tasks += len(item.tasks)
                blobs.add(item.blobs)
                there = target.one(
                    *query.compile_run_by_key(
                        item.flow_id, item.run_number, query.RunFields.PK_TAGSET_AND_TIME
                    )
                )
                if there is not None:
                    write_run(stager, stage_batch, item, blobs, imported_before=there[2])
                    continue
                if item.flow_id not in flows_seen:
                    flows_seen.add(item.flow_id)
                    merge_flow(
                        target, item.flow_id, flow_ts[item.flow_id] or run_created_at(item, None)
                    )
                write_run(writer, batch, item, blobs)
                report.added.append(f"{item.flow_id}/{item.run_number}")
            blobs.add({})
            if progress is not None:
                progress(len(runs), len(runs), "writing")
            batch.flush()
            stage_batch.flush()
            for flow_id, ts in flow_ts.items():
                if ts:
                    set_flow_created(staging, flow_id, ts)
            staged.close()  # the staged runs are committed (in memory) before the copy
            merged = copy_runs(staging, target, reconcile_tags=False)
    except StoreFullError:
        staging.close()
        raise disk_full(
            target.path, f"nothing was imported (one transaction): {target.path} is as it was"
        ) from None
    try:
        kept = f"the {len(report.added) + len(merged.added)} runs imported are kept"
        try:
            report.retagged += _sync_tags(target, staging, merged.identical)
        except StoreFullError:
            raise disk_full(
                target.path,
                f"{kept}; tag changes of runs imported before were not applied",
                "free some space and import again (imported runs are skipped)",
            ) from None
        report.added += merged.added
        report.identical += merged.identical
        report.conflicts += merged.conflicts
    finally:
        staging.close()
    fold_after_commit(target, kept)
    report.seconds = time.perf_counter() - started
    return report


def _sync_tags(target: Store, staging: Store, pathspecs: list[str]) -> list[str]:
    """Runs already imported whose user tags changed in Metaflow since: Metaflow's run
    record is the newer statement when it was rewritten after the target's last tag
    event, then the target takes its tags (one tag event, dated at Metaflow's edit)."""
    out = []
    writer = Writer(target)
    for ps in pathspecs:
        flow_id, run_number = ps.split("/")
        mine = target.one(
            *query.compile_run_by_key(flow_id, run_number, query.RunFields.PK_TAGSET_AND_TIME)
        )
        theirs = staging.one(
            *query.compile_run_by_key(flow_id, run_number, query.RunFields.PK_TAGSET_AND_TIME)
        )
        if mine is None or theirs is None:
            continue
        mf_user, _ = query.tag_groups(staging.query(*query.compile_tagset(theirs[1])))
        cur, _ = query.tag_groups(target.query(*query.compile_tagset(mine[1])))
        if mf_user == cur:
            continue
        mf_ts, mf_by = RECORD_TS.get((flow_id, run_number), (0, None))
        last = target.scalar(*query.compile_last_tag_event(mine[0])) or mine[2]
        if mf_ts > last:
            writer.replace_user_tags(
                mine[0],
                sorted(cur - mf_user),
                sorted(mf_user - cur),
                user_name=mf_by,
                ts_epoch=mf_ts,
            )
            out.append(ps)
    return out


def _already_identical(target: Store, flow_id: str, run_dir: Path) -> bool:
    """Fast path for re-import: the run is in the target, has ended there, and the
    directory's run record and task count are unchanged (tag edits need the full path)."""
    row = target.one(
        *query.compile_run_by_key(flow_id, run_dir.name, query.RunFields.PK_STATUS_AND_TAGSET)
    )
    if row is None or row[1] == "running":
        return False
    run_pk, _, tagset_id = row
    try:
        rec = read_json(run_dir / "_meta" / "_self.json")
    except (OSError, ValueError):
        return False
    tags = {(t, 0) for t in rec.get("tags") or []} | {(t, 1) for t in rec.get("system_tags") or []}
    have = {(t, s) for t, s in target.query(*query.compile_tagset(tagset_id))}
    if tags != have:
        return False
    n_dir = sum(
        1
        for d in run_dir.iterdir()
        if d.is_dir() and d.name != "_meta"
        for t in d.iterdir()
        if t.name != "_meta" and t.is_dir()
    )
    n_db = target.scalar(*query.compile_task_count(run_pk))
    return bool(n_dir == n_db)

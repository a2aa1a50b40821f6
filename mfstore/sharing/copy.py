"""Handing .mfdb files to others: snapshot, export a subset, merge, delete + GC, verify, stats.

Everything here works on whole runs. ``copy_runs`` is the one engine behind export,
merge and import: it copies runs with their tag events, steps, tasks, attempts,
artifacts (and only the blobs they reference, copied as stored, never recompressed),
metadata, logs, code packages and trigger events, in one transaction of the target.

Merge rules (documented in docs/sharing.md):

- A run is identified by its pathspec (run ids are globally unique). A run absent from
  the target is added; a run present with identical *content* is skipped; a run present
  with different content is reported as a conflict and left untouched on both sides.
- Content = everything but the user tags: the run record (user, created_at, status,
  end, origin, code), system tags, steps, tasks, attempts, artifacts, metadata, logs,
  trigger events.
- User tags are reconciled: tag events of both files are unioned; then each tag's
  presence is decided by the newest statement about it, where a statement is a tag
  event (from either file) that added or removed it; a tag no event mentions is kept
  if either side has it (a side's current set counts as dated at the run's creation).
  Ties keep the tag.
"""

from __future__ import annotations

import json
from collections.abc import Sequence, Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from .. import query
from ..blobs import Progress, copy_blob_id
from ..store import Store
from ..tags import is_provenance
from ..writer import Writer, copy as copied, insert_metadata_rows
from .digest import run_digest

# -- copying runs between files ------------------------------------------------------


@dataclass
class RunOutcomes:
    """What became of each run a copy or an import met, by pathspec."""

    added: list[str] = field(default_factory=list)
    """Runs the target did not have: added."""
    identical: list[str] = field(default_factory=list)
    """Runs the target has already, with the same content: left as they are."""
    conflicts: list[str] = field(default_factory=list)
    """``"<pathspec>: differs in <parts>"`` - left untouched on both sides."""
    retagged: list[str] = field(default_factory=list)
    """Runs the target has already, with the same content but other tag edits: the edits
    were merged into the target's run."""


@dataclass
class CopyReport(RunOutcomes):
    """What ``copy_runs`` (merge, export, import) did."""

    blobs_added: int = 0
    """Values (blobs) the target did not have."""
    blob_bytes_added: int = 0
    """Their stored (compressed) bytes."""
    preview: list[tuple[str, str, int, int]] = field(default_factory=list)
    """merge --dry-run: (flow, user, runs that would be added, runs already there)."""


def _tags(store: Store, tagset_id: int) -> tuple[frozenset[str], frozenset[str]]:
    return query.tag_groups(store.query(*query.compile_tagset(tagset_id)))


def _events(store: Store, run_pk: int) -> list[tuple[int, str | None, str, str]]:
    return [tuple(r) for r in store.query(*query.compile_child_rows("tag_events", run_pk))]


def reconcile_user_tags(
    mine: AbstractSet[str],
    mine_events: Sequence[tuple[int, Any, str, str]],
    mine_ts: int,
    theirs: AbstractSet[str],
    theirs_events: Sequence[tuple[int, Any, str, str]],
    theirs_ts: int,
) -> set[str]:
    """The merged user tag set (see the module docstring)."""
    latest: dict[str, tuple[int, bool]] = {}

    def state(tag: str, ts: int, present: bool) -> None:
        old = latest.get(tag)
        if old is None or ts > old[0] or (ts == old[0] and present):
            latest[tag] = (ts, present)

    for events in (mine_events, theirs_events):
        for ts, _user, removed, added in events:
            for t in json.loads(removed):
                state(t, ts, False)
            for t in json.loads(added):
                state(t, ts, True)
    for current, ts in ((mine, mine_ts), (theirs, theirs_ts)):
        for t in current:
            state(t, ts, True)
    return {t for t, (_, present) in latest.items() if present}


def copy_runs(
    src: Store,
    dst: Store,
    run_pks: Sequence[int] | None = None,
    *,
    reconcile_tags: bool = True,
    progress: Progress | None = None,
    provenance: str | None = None,
) -> CopyReport:
    """Copy runs of ``src`` (all, or ``run_pks``) into ``dst`` in one transaction.
    ``provenance``: a system tag added to every run copied in (merge)."""
    report = CopyReport()
    if run_pks is None:
        run_pks = [int(r[0]) for r in src.query(query.ALL_RUNS)]
    writer = Writer(dst)
    with src.read(), dst.write():
        for i, pk in enumerate(run_pks):
            row = src.one(*query.compile_run_fields(pk, query.RunFields.RECORD))
            if row is None:
                continue
            flow_id, run_number = row[0], row[1]
            pathspec = f"{flow_id}/{run_number}"
            if progress is not None:
                progress(i, len(run_pks), pathspec)
            there = dst.one(
                *query.compile_run_by_key(flow_id, run_number, query.RunFields.PK_TAGSET_AND_TIME)
            )
            if there is None:
                _insert_run(src, dst, writer, pk, row, report, provenance)
                report.added.append(pathspec)
                continue
            a, b = run_digest(src, pk), run_digest(dst, there[0])
            differ = [k for k in a if a[k] != b[k]]
            if differ:
                report.conflicts.append("{}: differs in {}".format(pathspec, ", ".join(differ)))
                continue
            if reconcile_tags and _reconcile(src, dst, writer, pk, row, there):
                report.retagged.append(pathspec)
            else:
                report.identical.append(pathspec)
        if progress is not None:
            progress(len(run_pks), len(run_pks), "done")
    return report


def _reconcile(
    src: Store, dst: Store, writer: Writer, pk: int, row: Sequence[Any], there: Sequence[Any]
) -> bool:
    dst_pk, dst_tagset, created = there
    src_user, system = _tags(src, row[3])
    dst_user, _ = _tags(dst, dst_tagset)
    src_ev, dst_ev = _events(src, pk), _events(dst, dst_pk)
    new_events = [e for e in src_ev if e not in set(dst_ev)]
    merged = reconcile_user_tags(dst_user, dst_ev, created, src_user, src_ev, created)
    if not new_events and merged == dst_user:
        return False
    copied.insert_child_rows(dst, "tag_events", dst_pk, new_events)
    if merged != dst_user:
        copied.set_run_tagset(dst, dst_pk, writer.ensure_tagset(row[0], merged, system))
    return True


def _copy_child_rows(
    src: Store, dst: Store, table: query.PlainChild, old_pk: int, new_pk: int
) -> None:
    """The rows of ``table`` that belong to run or task ``old_pk`` in ``src``, added to
    ``new_pk`` in ``dst``."""
    copied.insert_child_rows(
        dst, table, new_pk, src.query(*query.compile_child_rows(table, old_pk))
    )


def _copy_blob(src: Store, dst: Store, sha: str, report: CopyReport) -> int:
    found, added = copy_blob_id(src, dst, sha)
    if added is not None:
        report.blobs_added += 1
        report.blob_bytes_added += added
    return found


def _insert_run(
    src: Store,
    dst: Store,
    writer: Writer,
    pk: int,
    row: Sequence[Any],
    report: CopyReport,
    provenance: str | None = None,
) -> None:
    flow_id = row[0]
    flow = src.one(*query.compile_flow_lookup(flow_id))
    copied.merge_flow(dst, flow_id, flow[1] if flow is not None else row[4])
    user, system = _tags(src, row[3])
    if provenance is not None:
        system = frozenset({t for t in system if not is_provenance(t)} | {provenance})
    tagset = writer.ensure_tagset(flow_id, user, system)
    code_sha = row[9]
    if code_sha is not None:
        _copy_blob(src, dst, code_sha, report)
        package = src.one(*query.compile_code_package(code_sha))
        assert package is not None  # the foreign key from runs
        copied.add_code_package_record(dst, code_sha, *package)
    new_pk = copied.insert_run_record(dst, (flow_id, row[1], row[2], tagset, *row[4:9], code_sha))
    copied.insert_child_rows(dst, "tag_events", new_pk, _events(src, pk))
    _copy_child_rows(src, dst, "steps", pk, new_pk)
    task_map: dict[int, int] = {}
    for task_pk, step_name, task_id, ts, origin_pk in src.query(*query.compile_run_task_rows(pk)):
        new_origin = None
        if origin_pk is not None:
            o = src.one(*query.compile_task_pathspec(origin_pk))
            if o is not None:
                new_origin = dst.scalar(*query.compile_task_lookup(*o, pk_only=True))
        task_map[task_pk] = copied.insert_task_record(
            dst, new_pk, step_name, task_id, ts, new_origin
        )
    for old, new in task_map.items():
        _copy_child_rows(src, dst, "attempts", old, new)
        arts = src.query(*query.compile_artifact_rows(old))
        ids = {sha: _copy_blob(src, dst, sha, report) for sha in {a[2] for a in arts}}
        copied.insert_child_rows(
            dst, "artifacts", new, [(att, name, ids[sha], ts) for att, name, sha, ts in arts]
        )
        insert_metadata_rows(
            dst,
            [(*m, new, att, ts) for att, ts, *m in src.query(*query.compile_metadata_rows(old))],
        )
        _copy_child_rows(src, dst, "log_lines", old, new)
    _copy_child_rows(src, dst, "trigger_events", pk, new_pk)

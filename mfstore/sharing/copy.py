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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..blobs import Progress, copy_blob_id
from ..store import Store
from ..tags import is_provenance
from ..writer import Writer, insert_metadata_rows
from .digest import run_digest

# -- copying runs between files ------------------------------------------------------


@dataclass
class CopyReport:
    """What ``copy_runs`` (merge, export, import) did."""

    added: list[str] = field(default_factory=list)
    identical: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    """``"<pathspec>: differs in <parts>"`` - left untouched on both sides."""
    retagged: list[str] = field(default_factory=list)
    blobs_added: int = 0
    blob_bytes_added: int = 0
    preview: list[tuple[str, str, int, int]] = field(default_factory=list)
    """merge --dry-run: (flow, user, runs that would be added, runs already there)."""


def _tags(store: Store, tagset_id: int) -> tuple[set[str], set[str]]:
    return Writer(store).read_tagset(tagset_id)


def _events(store: Store, run_pk: int) -> list[tuple[int, str | None, str, str]]:
    return [
        tuple(r)
        for r in store.query(
            "SELECT ts_epoch, user_name, removed, added FROM tag_events WHERE run_pk = ? ORDER BY ts_epoch, event_pk",
            (run_pk,),
        )
    ]


def reconcile_user_tags(
    mine: set[str],
    mine_events: Sequence[tuple[int, Any, str, str]],
    mine_ts: int,
    theirs: set[str],
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
        run_pks = [
            int(r[0]) for r in src.query("SELECT run_pk FROM runs ORDER BY ts_epoch, run_number")
        ]
    writer = Writer(dst)
    with src.read(), dst.write():
        for i, pk in enumerate(run_pks):
            row = src.one(
                "SELECT flow_id, run_number, user_name, tagset_id, ts_epoch, status, finished_at, end_step, "
                "origin_run_number, code_sha FROM runs WHERE run_pk = ?",
                (pk,),
            )
            if row is None:
                continue
            flow_id, run_number = row[0], row[1]
            pathspec = f"{flow_id}/{run_number}"
            if progress is not None:
                progress(i, len(run_pks), pathspec)
            there = dst.one(
                "SELECT run_pk, tagset_id, ts_epoch FROM runs WHERE flow_id = ? AND run_number = ?",
                (flow_id, run_number),
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
    dst.executemany(
        "INSERT INTO tag_events (run_pk, ts_epoch, user_name, removed, added) VALUES (?, ?, ?, ?, ?)",
        [(dst_pk, *e) for e in new_events],
    )
    if merged != dst_user:
        dst.execute(
            "UPDATE runs SET tagset_id = ? WHERE run_pk = ?",
            (writer.tagset_id(row[0], merged, system), dst_pk),
        )
    return True


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
    flow_ts = src.scalar("SELECT ts_epoch FROM flows WHERE flow_id = ?", (flow_id,))
    dst.execute(
        "INSERT INTO flows (flow_id, ts_epoch) VALUES (?, ?) "
        "ON CONFLICT (flow_id) DO UPDATE SET ts_epoch = min(ts_epoch, excluded.ts_epoch)",
        (flow_id, flow_ts if flow_ts is not None else row[4]),
    )
    user, system = _tags(src, row[3])
    if provenance is not None:
        system = {t for t in system if not is_provenance(t)} | {provenance}
    tagset = writer.tagset_id(flow_id, user, system)
    code_sha = row[9]
    if code_sha is not None:
        _copy_blob(src, dst, code_sha, report)
        dst.execute(
            "INSERT INTO code_packages (sha, script_name, info) SELECT ?, ?, ? WHERE NOT EXISTS "
            "(SELECT 1 FROM code_packages WHERE sha = ?)",
            (
                *src.one(
                    "SELECT sha, script_name, info FROM code_packages WHERE sha = ?", (code_sha,)
                ),
                code_sha,
            ),  # type: ignore[misc]
        )
    new_pk = dst.insert(
        "INSERT INTO runs (flow_id, run_number, user_name, tagset_id, ts_epoch, status, finished_at, end_step, "
        "origin_run_number, code_sha) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (flow_id, row[1], row[2], tagset, row[4], row[5], row[6], row[7], row[8], code_sha),
    )
    dst.executemany(
        "INSERT INTO tag_events (run_pk, ts_epoch, user_name, removed, added) VALUES (?, ?, ?, ?, ?)",
        [(new_pk, *e) for e in _events(src, pk)],
    )
    dst.executemany(
        "INSERT INTO steps (run_pk, step_name, ts_epoch) VALUES (?, ?, ?)",
        [
            (new_pk, s, ts)
            for s, ts in src.query("SELECT step_name, ts_epoch FROM steps WHERE run_pk = ?", (pk,))
        ],
    )
    task_map: dict[int, int] = {}
    for task_pk, step_name, task_id, ts, origin_pk in src.query(
        "SELECT task_pk, step_name, task_id, ts_epoch, origin_task_pk FROM tasks WHERE run_pk = ? ORDER BY task_pk",
        (pk,),
    ):
        new_origin = None
        if origin_pk is not None:
            o = src.one(
                "SELECT r.flow_id, r.run_number, t.step_name, t.task_id FROM tasks t JOIN runs r ON r.run_pk = t.run_pk "
                "WHERE t.task_pk = ?",
                (origin_pk,),
            )
            if o is not None:
                new_origin = dst.scalar(
                    "SELECT t.task_pk FROM tasks t JOIN runs r ON r.run_pk = t.run_pk WHERE r.flow_id = ? "
                    "AND r.run_number = ? AND t.step_name = ? AND t.task_id = ?",
                    o,
                )
        task_map[task_pk] = dst.insert(
            "INSERT INTO tasks (run_pk, step_name, task_id, ts_epoch, origin_task_pk) VALUES (?, ?, ?, ?, ?)",
            (new_pk, step_name, task_id, ts, new_origin),
        )
    for old, new in task_map.items():
        dst.executemany(
            "INSERT INTO attempts (task_pk, attempt, started_at, ended_at, task_ok, success) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (new, *r)
                for r in src.query(
                    "SELECT attempt, started_at, ended_at, task_ok, success FROM attempts WHERE task_pk = ?",
                    (old,),
                )
            ],
        )
        arts = src.query(
            "SELECT a.attempt, a.name, lower(hex(b.sha)), a.ts_epoch FROM artifacts a "
            "JOIN blobs b ON b.blob_id = a.blob_id WHERE a.task_pk = ?",
            (old,),
        )
        ids = {sha: _copy_blob(src, dst, sha, report) for sha in {a[2] for a in arts}}
        dst.executemany(
            "INSERT INTO artifacts (task_pk, attempt, name, blob_id, ts_epoch) VALUES (?, ?, ?, ?, ?)",
            [(new, att, name, ids[sha], ts) for att, name, sha, ts in arts],
        )
        insert_metadata_rows(
            dst,
            [
                (*m, new, att, ts)
                for att, ts, *m in src.query(
                    "SELECT m.attempt, m.ts_epoch, v.field_name, v.type, v.is_json, v.value FROM metadata m "
                    "JOIN metadata_values v ON v.value_id = m.value_id WHERE m.task_pk = ? "
                    "ORDER BY m.metadata_pk",
                    (old,),
                )
            ],
        )
        dst.executemany(
            "INSERT INTO log_lines (task_pk, attempt, stream, source, ts_us, line) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (new, *ln)
                for ln in src.query(
                    "SELECT attempt, stream, source, ts_us, line FROM log_lines WHERE task_pk = ? ORDER BY line_pk",
                    (old,),
                )
            ],
        )
    dst.executemany(
        "INSERT INTO trigger_events (run_pk, name, event_id, type, ts_epoch, pathspec, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (new_pk, *t)
            for t in src.query(
                "SELECT name, event_id, type, ts_epoch, pathspec, payload FROM trigger_events WHERE run_pk = ? "
                "ORDER BY trigger_pk",
                (pk,),
            )
        ],
    )

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

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

from .blobs import Progress, blob_id, copy_blob, verify_blobs
from .exception import (
    CommandException,
    MetaflowNotFound,
    StoreError,
    StoreFullError,
    disk_full,
    is_no_room,
)
from .store import Store
from .tags import is_provenance
from .writer import Writer, insert_metadata_rows

# -- selecting runs ------------------------------------------------------------------


def parse_time(text: str) -> int:
    """ISO date/time -> ms since the epoch (naive times are local time, like created_at)."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise CommandException(
            f"{text!r} is not an ISO date or time (e.g. 2026-11-24 or 2026-11-24T13:00)"
        ) from None
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return int(dt.timestamp() * 1000)


@dataclass
class RunFilter:
    """Which runs export/delete act on; empty filter = every run."""

    flow: str | None = None
    namespace: str | None = None
    """A tag (user or system) every selected run carries, e.g. ``user:alice``."""
    tags: Sequence[str] = ()
    """Tags every selected run carries (all must match)."""
    pathspecs: Sequence[str] = ()
    """``Flow/RunId`` (or ``Flow``); selected runs must be one of them."""
    since: int | None = None
    """created_at >= this (ms)."""
    before: int | None = None
    """created_at < this (ms)."""

    def is_empty(self) -> bool:
        return not (
            self.flow or self.namespace or self.tags or self.pathspecs or self.since or self.before
        )


def select_runs(store: Store, f: RunFilter) -> list[int]:
    """run_pk of the runs matching ``f``, oldest first. Unknown pathspecs raise."""
    where: list[str] = []
    params: list[Any] = []
    if f.flow:
        where.append("r.flow_id = ?")
        params.append(f.flow)
    for tag in [*f.tags, *([f.namespace] if f.namespace else [])]:
        where.append(
            "EXISTS (SELECT 1 FROM tagset_tags t WHERE t.tagset_id = r.tagset_id AND t.tag = ?)"
        )
        params.append(tag)
    if f.since is not None:
        where.append("r.ts_epoch >= ?")
        params.append(f.since)
    if f.before is not None:
        where.append("r.ts_epoch < ?")
        params.append(f.before)
    if f.pathspecs:
        ors = []
        for ps in f.pathspecs:
            parts = ps.strip("/").split("/")
            if len(parts) == 1:
                ors.append("r.flow_id = ?")
                params.append(parts[0])
                found = store.scalar("SELECT 1 FROM runs WHERE flow_id = ?", (parts[0],))
            elif len(parts) == 2:
                ors.append("(r.flow_id = ? AND r.run_number = ?)")
                params.extend(parts)
                found = store.scalar(
                    "SELECT 1 FROM runs WHERE flow_id = ? AND run_number = ?", tuple(parts)
                )
            else:
                raise CommandException(f"{ps!r} is not a run pathspec: expected Flow/RunId")
            if not found:
                raise MetaflowNotFound(
                    "{} does not exist in {}".format(
                        f"Run('{ps}')" if len(parts) == 2 else f"Flow('{ps}')", store.path
                    )
                )
        where.append("(" + " OR ".join(ors) + ")")
    sql = "SELECT r.run_pk FROM runs r" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY r.ts_epoch, r.run_number"
    return [int(r[0]) for r in store.query(sql, params)]


def describe_runs(store: Store, run_pks: Iterable[int]) -> list[str]:
    """Pathspecs of runs."""
    out = []
    for pk in run_pks:
        row = store.one("SELECT flow_id, run_number FROM runs WHERE run_pk = ?", (pk,))
        if row:
            out.append("{}/{}".format(*row))
    return out


# -- content digests -----------------------------------------------------------------


def _h(rows: Iterable[Sequence[Any]]) -> str:
    h = hashlib.sha1()
    for row in rows:
        h.update(
            json.dumps(
                list(row), ensure_ascii=False, default=lambda b: hashlib.sha1(b).hexdigest()
            ).encode("utf-8", "surrogatepass")
        )
        h.update(b"\n")
    return h.hexdigest()


def run_digest(store: Store, run_pk: int) -> dict[str, str]:
    """sha1 per part of a run's content (everything but user tags and tag events)."""
    q = store.query
    task_key = "(SELECT step_name || '/' || task_id FROM tasks x WHERE x.task_pk = {t}.task_pk)"
    origin = (
        "(SELECT r2.flow_id || '/' || r2.run_number || '/' || o.step_name || '/' || o.task_id "
        "FROM tasks o JOIN runs r2 ON r2.run_pk = o.run_pk WHERE o.task_pk = t.origin_task_pk)"
    )
    return {
        "run": _h(
            q(
                "SELECT flow_id, run_number, user_name, ts_epoch, status, finished_at, end_step, "
                "origin_run_number, code_sha FROM runs WHERE run_pk = ?",
                (run_pk,),
            )
        ),
        "system_tags": _h(
            (tag,)
            for (tag,) in q(
                "SELECT tt.tag FROM runs r JOIN tagset_tags tt ON tt.tagset_id = r.tagset_id "
                "WHERE r.run_pk = ? AND tt.is_system = 1 ORDER BY tt.tag",
                (run_pk,),
            )
            if not is_provenance(tag)  # where a copy came from is not its content
        ),
        "steps": _h(
            q(
                "SELECT step_name, ts_epoch FROM steps WHERE run_pk = ? ORDER BY step_name",
                (run_pk,),
            )
        ),
        "tasks": _h(
            q(
                f"SELECT t.step_name, t.task_id, t.ts_epoch, {origin} FROM tasks t WHERE t.run_pk = ? "
                "ORDER BY t.step_name, t.task_id",
                (run_pk,),
            )
        ),
        "attempts": _h(
            q(
                "SELECT {}, a.attempt, a.started_at, a.ended_at, a.task_ok, a.success FROM attempts a "
                "JOIN tasks t ON t.task_pk = a.task_pk WHERE t.run_pk = ? ORDER BY 1, 2".format(
                    task_key.format(t="a")
                ),
                (run_pk,),
            )
        ),
        "artifacts": _h(
            q(
                "SELECT {}, a.attempt, a.name, lower(hex(b.sha)), y.name, a.ts_epoch FROM artifacts a "
                "JOIN tasks t ON t.task_pk = a.task_pk JOIN blobs b ON b.blob_id = a.blob_id "
                "LEFT JOIN types y ON y.type_id = b.type_id WHERE t.run_pk = ? ORDER BY 1, 2, 3".format(
                    task_key.format(t="a")
                ),
                (run_pk,),
            )
        ),
        "metadata": _h(
            q(
                "SELECT {}, m.attempt, v.field_name, v.value, v.is_json, v.type, m.ts_epoch FROM metadata m "
                "JOIN metadata_values v ON v.value_id = m.value_id "
                "JOIN tasks t ON t.task_pk = m.task_pk WHERE t.run_pk = ? ORDER BY 1, 2, 3, 7, 4, 6".format(
                    task_key.format(t="m")
                ),
                (run_pk,),
            )
        ),
        "logs": _h(
            q(
                "SELECT {}, l.attempt, l.stream, l.source, l.ts_us, l.line FROM log_lines l "
                "JOIN tasks t ON t.task_pk = l.task_pk WHERE t.run_pk = ? ORDER BY 1, 2, 3, 5, l.line_pk".format(
                    task_key.format(t="l")
                ),
                (run_pk,),
            )
        ),
        "triggers": _h(
            q(
                "SELECT name, event_id, type, ts_epoch, pathspec, payload FROM trigger_events WHERE run_pk = ? "
                "ORDER BY ts_epoch, event_id",
                (run_pk,),
            )
        ),
    }


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
    added = copy_blob(src, dst, sha)
    if added is not None:
        report.blobs_added += 1
        report.blob_bytes_added += added
    found = blob_id(dst, sha)
    assert found is not None
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


# -- commands --------------------------------------------------------------------------


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        _fsync(path)
    except OSError:  # some file systems cannot fsync a directory
        pass


def _fresh_target(dst: Path) -> Path:
    if dst.exists():
        raise CommandException(
            f"{dst} already exists: choose a new file name (nothing was written)"
        )
    for suffix in ("-wal", "-shm", "-journal"):
        if Path(str(dst) + suffix).exists():
            raise CommandException(f"{dst}{suffix} exists beside the target: remove it first")
    if not dst.parent.is_dir():
        raise CommandException(f"directory {dst.parent} does not exist")
    return dst


def remove_stale_temp_files(dst: Path, kind: str) -> list[Path]:
    """Remove what a killed ``snapshot``/``export`` to ``dst`` left: the hidden
    ``.NAME.<kind>-PID`` file (and its -wal/-shm) of a process that no longer runs."""
    removed = []
    prefix = f".{dst.name}.{kind}-"
    for p in dst.parent.glob(f".{glob_escape(dst.name)}.{kind}-*"):
        pid_text = p.name[len(prefix) :].split("-", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def snapshot(src_path: Path, dst_path: Path) -> int:
    """Consistent single-file copy of ``src_path`` at ``dst_path`` (VACUUM INTO), even
    while other processes write; fsynced; returns its size in bytes. A failure (a full
    disk) leaves no ``dst_path`` and no temporary file."""
    dst_path = _fresh_target(Path(dst_path))
    remove_stale_temp_files(dst_path, "snapshot")
    tmp = dst_path.with_name(f".{dst_path.name}.snapshot-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        src = Store(src_path, reader=True)
        try:
            # VACUUM INTO reads one snapshot of the source (a read transaction: writers go on).
            src.execute("VACUUM INTO ?", (str(tmp),))
        finally:
            src.close()
        _fsync(tmp)
        os.replace(tmp, dst_path)
        _fsync_dir(dst_path.parent)
    except BaseException as exc:
        _remove_with_sidecars(tmp)
        if is_no_room(exc):
            raise disk_full(
                dst_path,
                f"no snapshot was written (nothing left beside it) and {src_path} is unchanged",
                "free some space there, or snapshot to another disk",
            ) from None
        raise
    return dst_path.stat().st_size


def _remove_with_sidecars(path: Path) -> None:
    for p in (path, *(Path(f"{path}{s}") for s in ("-wal", "-shm", "-journal"))):
        p.unlink(missing_ok=True)


def export(
    src_path: Path, dst_path: Path, f: RunFilter, *, progress: Progress | None = None
) -> CopyReport:
    """Write the runs of ``src_path`` matching ``f`` to a new file ``dst_path``. A
    failure (a full disk) leaves no ``dst_path`` and no temporary file."""
    dst_path = _fresh_target(Path(dst_path))
    # Salvage: a file refused for a planted SQL object can still be exported; the copy
    # reads only the data tables and the new file is made from schema.sql alone.
    src = Store(src_path, salvage=True)
    try:
        run_pks = select_runs(src, f)
        remove_stale_temp_files(dst_path, "export")
        tmp = dst_path.with_name(f".{dst_path.name}.export-{os.getpid()}")
        _remove_with_sidecars(tmp)
        try:
            dst = Store(tmp, create=True)
            try:
                report = copy_runs(src, dst, run_pks, progress=progress)
                if not dst.checkpoint():
                    raise StoreError(
                        f"{tmp}: could not fold its log into the file; nothing exported"
                    )
            finally:
                dst.close()
            # Everything is in the main file (checkpointed): a finished export leaves no
            # -wal/-shm of its temporary file behind.
            for p in (Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
                p.unlink(missing_ok=True)
            _fsync(tmp)
            os.replace(tmp, dst_path)
            _fsync_dir(dst_path.parent)
        except BaseException as exc:
            _remove_with_sidecars(tmp)
            if is_no_room(exc):
                raise disk_full(
                    dst_path,
                    f"nothing was exported (no file and no temporary file left) and "
                    f"{src_path} is unchanged",
                    "free some space there, or export to another disk",
                ) from None
            raise
    finally:
        src.close()
    return report


def merge(
    other_path: Path,
    into_path: Path,
    *,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> CopyReport:
    """Add the runs of ``other_path`` to ``into_path`` (see the module docstring).

    THEIRS is checked first (``guards.check_source``: every blob that would be
    copied verifies, no run is future-dated, no row is malformed); any failure refuses
    the whole merge before anything is written. Each run added carries a provenance
    system tag (``Run.merged_from``). ``dry_run``: check and report, write nothing
    (``report.preview``: flow, user, runs that would come in, runs already there).
    """
    from .guards import check_source, make_provenance, preview
    from .identity import get_username

    if Path(other_path).absolute() == Path(into_path).absolute():
        raise CommandException(f"cannot merge {other_path} into itself")
    other = Store(other_path, reader=True)
    try:
        run_pks = [
            int(r[0]) for r in other.query("SELECT run_pk FROM runs ORDER BY ts_epoch, run_number")
        ]
        # Checked with MINE opened only to read: a refused merge leaves it as it was.
        exists = Path(into_path).exists()
        mine = Store(into_path, reader=True) if exists else Store(":memory:")
        try:
            check_source(other, mine, run_pks)
            if dry_run:
                report = CopyReport()
                report.preview = preview(other, mine, run_pks)
                return report
        finally:
            mine.close()
        tag = make_provenance(other, run_pks, get_username()).tag()
        nothing = f"nothing was merged (one transaction): {into_path} is as it was"
        try:
            into = Store(into_path, create=True)
        except StoreFullError:
            raise disk_full(into_path, nothing) from None
        try:
            try:
                report = copy_runs(other, into, run_pks, progress=progress, provenance=tag)
            except StoreFullError:
                raise disk_full(into_path, nothing) from None
            fold_after_commit(into, f"the merge ({len(report.added)} runs added) is kept")
        finally:
            into.close()
    finally:
        other.close()
    return report


@dataclass
class DeleteReport:
    runs: list[str] = field(default_factory=list)
    tasks: int = 0
    blobs_removed: int = 0
    bytes_before: int = 0
    bytes_after: int = 0


def fold_after_commit(store: Store, kept: str) -> None:
    """Checkpoint after a committed change; a full disk there loses nothing (the change
    stays in the -wal file beside the file), and the message says so."""
    try:
        store.checkpoint()
    except StoreFullError:
        raise disk_full(
            store.path,
            f"{kept}, in {store.path.name}-wal beside the file (copy the two together, or "
            "`mfstore snapshot` it once there is room)",
            "free some space: the next write to the file folds it in",
        ) from None


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
    from .guards import check_deletable

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

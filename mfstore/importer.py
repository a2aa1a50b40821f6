"""Import a real Metaflow local history (a ``.metaflow`` directory) into a .mfdb.

Reads only files, never Metaflow: blobs are ``data/<sha[:2]>/<sha>`` (gzip of the
pickled bytes, stored as is so the sha stays Metaflow's), records are the ``_meta``
JSON files, logs are MFLOG lines. Every path is resolved relative to the directory
given: the absolute roots Metaflow stores (``location``, ``ds-root``) are ignored, so
a moved directory imports the same.

Each run is first written through ``Writer`` into a private staging store, then
copied into the target by ``sharing.copy_runs`` (one transaction): a run already in
the target with identical content is skipped, so re-import is idempotent; a run whose
content differs (e.g. it was still running at the last import) is reported and left
untouched; user tags edited since the last import are reconciled as in ``merge``.

Mapping (see docs/sharing.md):

- run ``created_at``: the earliest step record's ``ts_epoch`` (written with the run
  record, and never rewritten, unlike the run record on a tag edit: Metaflow trap T2).
  The tags the run started with come from its steps' records; later edits become one
  ``tag_events`` row dated at the run record's rewrite.
- status: ``successful`` if the end task's ``_success`` is True; ``failed`` if a task
  ended with ``_task_ok`` False (no later attempt) or the end task was unsuccessful;
  else ``running`` (killed or incomplete runs).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from . import artifacts as _artifacts
from .artifacts import PreparedArtifact, prepare_raw_artifact
from .blobs import sha1_hex
from .exception import HistoryPathError, NotAMetaflowHistory, StoreFullError, disk_full
from .store import Store
from .writer import MetadataEntry, RunRef, TaskRef, Writer

#: Fields that ``Writer.end_attempt`` records itself for every ended attempt.
_END_FIELDS = ("attempt_ok", "attempt-done")
_MFLOG_RE = re.compile(r"^\[!?MFLOG\|(\d+)\|([^|]+)\|([^|]*)\|([^\]]*)\](.*)$", re.S)
_SYSMETA_RE = re.compile(r"^sysmeta_(.+)_(\d+)\.json$")
_ARTIFACT_RE = re.compile(r"^(\d+)_artifact_(.+)\.json$")


@dataclass
class ImportReport:
    """What ``import_metaflow`` did."""

    imported: list[str] = field(default_factory=list)
    """Pathspecs of runs added."""
    skipped: list[str] = field(default_factory=list)
    """Runs already present with identical content."""
    conflicts: list[str] = field(default_factory=list)
    """Runs present with different content (left untouched), with the reason."""
    retagged: list[str] = field(default_factory=list)
    """Runs already present whose user tags were reconciled."""
    problems: list[str] = field(default_factory=list)
    """Files that could not be read (the run is imported without them)."""
    tasks: int = 0
    """Tasks read from the directory."""
    seconds: float = 0.0


def find_metaflow_root(path: str | os.PathLike[str]) -> Path:
    """``path`` itself if it is a ``.metaflow`` directory, else ``path/.metaflow``."""
    p = Path(path).expanduser()
    if (p / ".metaflow").is_dir():
        p = p / ".metaflow"
    if not p.is_dir():
        raise NotAMetaflowHistory(
            f"{p} is not a directory: give a .metaflow directory or the directory holding it"
        )
    if not any(_is_flow_dir(d) for d in p.iterdir()):
        raise NotAMetaflowHistory(
            f"{p} holds no Metaflow flows (no <Flow>/_meta/_self.json): is it a .metaflow directory?"
        )
    return p


def _is_flow_dir(d: Path) -> bool:
    return d.is_dir() and (d / "_meta" / "_self.json").is_file()


#: The real path of the history being imported: nothing outside it is read.
_confined_to: list[str] = []
_SHA = re.compile(r"^[0-9a-f]{40}$")
P = TypeVar("P", Path, str)


#: Real paths of the directories of the run being read (cleared for every run): a file's
#: real path is its directory's plus its name unless the file itself is a symlink, so
#: each file costs one lstat instead of one per component of its path.
_real_dirs: dict[str, str] = {}


def _realpath(path: str) -> str:
    parent, name = os.path.split(path)
    if not parent or not name or name in (".", ".."):
        return os.path.realpath(path)
    real_parent = _real_dirs.get(parent)
    if real_parent is None:
        real_parent = _real_dirs[parent] = os.path.realpath(parent)
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            return os.path.realpath(path)
    except OSError:
        pass  # missing: realpath too just appends the name
    return os.path.join(real_parent, name)


def _inside(path: P) -> P:
    """``path`` if it (after symlinks) lies inside the history being imported."""
    if _confined_to:
        real = _realpath(os.fspath(path))
        root = _confined_to[-1]
        if real != root and not real.startswith(root + os.sep):
            raise HistoryPathError(
                f"{path} leads outside the history ({real}): refused, nothing read from it"
            )
    return path


def _read_json(path: Path | str) -> Any:
    with open(_inside(path), "rb") as fh:
        return json.loads(fh.read())


def list_runs(root: Path, problems: list[str] | None = None) -> list[tuple[str, Path]]:
    """``(flow_id, run_dir)`` of every run, oldest run id first (resume origins come first).
    Flow or run directories that lead outside the history are skipped (and reported)."""
    out = []
    for flow_dir in sorted(root.iterdir()):
        if not _is_flow_dir(flow_dir):
            continue
        try:
            _inside(flow_dir)
        except HistoryPathError as exc:
            if problems is not None:
                problems.append(f"{flow_dir.name}: not imported ({exc})")
            continue
        for run_dir in flow_dir.iterdir():
            if (
                run_dir.name in ("_meta", "data")
                or not (run_dir / "_meta" / "_self.json").is_file()
            ):
                continue
            out.append((flow_dir.name, run_dir))
    out.sort(key=lambda fr: (int(fr[1].name) if fr[1].name.isdigit() else 0, fr[1].name, fr[0]))
    return out


# -- reading one run ---------------------------------------------------------------


@dataclass
class _Attempt:
    attempt: int
    started_at: int | None = None
    done_ts: int | None = None
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_info: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Task:
    step_name: str
    task_id: str
    path: Path
    ts_epoch: int
    metadata: list[dict[str, Any]]
    attempts: dict[int, _Attempt]


def _read_task(step_dir: Path, task_dir: Path) -> _Task:
    # Plain strings: a task has ~30 small files, and pathlib's objects cost more than
    # reading them.
    task_path = os.fspath(task_dir)
    meta_dir = os.path.join(task_path, "_meta")
    self_rec = _read_json(os.path.join(meta_dir, "_self.json"))
    metadata: list[dict[str, Any]] = []
    attempts: dict[int, _Attempt] = {}

    def att(n: int) -> _Attempt:
        if n not in attempts:
            attempts[n] = _Attempt(n)
        return attempts[n]

    for entry in sorted(os.listdir(_inside(meta_dir))):
        m = _SYSMETA_RE.match(entry)
        if m:
            rec = _read_json(os.path.join(meta_dir, entry))
            attempt = None
            for tag in rec.get("tags") or []:
                if isinstance(tag, str) and tag.startswith("attempt_id:"):
                    attempt = int(tag.split(":", 1)[1])
            rec["_attempt"] = attempt
            metadata.append(rec)
            if attempt is not None:
                a = att(attempt)
                if rec["field_name"] == "attempt-done":
                    a.done_ts = max(a.done_ts or 0, int(rec["ts_epoch"]))
                if rec["field_name"] == "attempt" and a.started_at is None:
                    a.started_at = int(rec["ts_epoch"])
            continue
        m = _ARTIFACT_RE.match(entry)
        if m:
            rec = _read_json(os.path.join(meta_dir, entry))
            att(int(m.group(1))).artifacts[rec.get("name", m.group(2))] = rec
    for entry in os.listdir(_inside(task_path)):
        head, _, kind = entry.partition(".")
        if not head.isdigit():
            continue
        n = int(head)
        if kind == "attempt.json":
            try:
                t = _read_json(os.path.join(task_path, entry)).get("time")
                if t is not None:
                    att(n).started_at = int(float(t) * 1000)
            except (OSError, ValueError):
                att(n)
        elif kind == "data.json":
            try:
                att(n).data_info = _read_json(os.path.join(task_path, entry)).get("info") or {}
            except (OSError, ValueError):
                pass
        elif kind in ("task_begin", "runtime_stdout.log", "runtime_stderr.log"):
            att(n)
    metadata.sort(key=lambda r: int(r["ts_epoch"]))
    return _Task(
        step_dir.name,
        str(self_rec.get("task_id", task_dir.name)),
        task_dir,
        int(self_rec["ts_epoch"]),
        metadata,
        attempts,
    )


def parse_mflog(path: Path) -> Iterator[tuple[int, str]]:
    """``(utc_microseconds, text)`` of each line of an MFLOG file; unparsable lines keep
    the previous line's time (Metaflow shows them last; mfstore keeps file order)."""
    try:
        data = _inside(path).read_bytes()
    except FileNotFoundError:
        return
    yield from parse_mflog_bytes(data)


def parse_mflog_bytes(data: bytes) -> Iterator[tuple[int, str]]:
    """``parse_mflog`` of the bytes of an MFLOG file."""
    last = 0
    for raw in data.decode("utf-8", "replace").split("\n"):
        if raw == "":
            continue
        m = _MFLOG_RE.match(raw)
        if m:
            last = _iso_us(m.group(2), last)
            yield last, m.group(5)
        else:
            yield last, raw


def _iso_us(text: str, default: int) -> int:
    try:
        dt = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return default
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


class _BlobReader:
    def __init__(self, flow_dir: Path, report: ImportReport) -> None:
        self.data_dir = flow_dir / "data"
        self.report = report
        self.cache: dict[str, PreparedArtifact] = {}

    def prepared(self, sha: str, info: dict[str, Any], what: str) -> PreparedArtifact | None:
        hit = self.cache.get(sha)
        if hit is not None:
            return hit
        if not isinstance(sha, str) or not _SHA.match(sha):
            raise HistoryPathError(f"{what}: its sha {sha!r} is not a sha1 hex digest: refused")
        path = _inside(self.data_dir / sha[:2] / sha)  # outside: the run is skipped
        meta_path = _inside(self.data_dir / sha[:2] / (sha + "_meta"))
        try:
            with open(path, "rb") as fh:
                packed = fh.read()
            cas_raw = False
            if meta_path.exists():
                cas_raw = bool(_read_json(meta_path).get("cas_raw"))
            raw = packed if cas_raw else gzip.decompress(packed)
        except (OSError, EOFError, ValueError, gzip.BadGzipFile) as exc:
            self.report.problems.append(f"{what}: blob {path} unreadable ({exc})")
            return None
        actual = sha1_hex(raw)
        if actual != sha:
            self.report.problems.append(
                f"{what}: blob {sha} holds content with sha {actual}: artifact not imported"
            )
            return None
        type_name, value_json = _describe(raw, info)
        prepared = prepare_raw_artifact(raw, type_name=type_name, value_json=value_json, sha=sha)
        self.cache[sha] = prepared
        return prepared


def _describe(raw: bytes, info: dict[str, Any]) -> tuple[str, str | None]:
    """Type name and JSON of a pickled value, without running code from the pickle."""
    return _artifacts.describe_pickled(raw, info.get("type"))


def _loads_flag(raw_prepared: PreparedArtifact | None) -> bool | None:
    if raw_prepared is None or raw_prepared.value_json is None:
        return None
    try:
        v = json.loads(raw_prepared.value_json)
    except ValueError:
        return None
    return v if isinstance(v, bool) else None


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
    blobs: _BlobReader,
    report: ImportReport,
    target: Store | None = None,
) -> RunRef:
    """Write one Metaflow run through ``writer``; return it. ``target``: the file being
    imported into (a run already there keeps its created_at)."""
    run_rec = _read_json(run_dir / "_meta" / "_self.json")
    run_number = str(run_rec.get("run_number", run_dir.name))
    step_dirs = sorted(
        (
            d
            for d in run_dir.iterdir()
            if d.is_dir() and d.name != "_meta" and (d / "_meta" / "_self.json").is_file()
        ),
        key=lambda d: d.name,
    )
    step_recs = {d.name: _read_json(d / "_meta" / "_self.json") for d in step_dirs}
    first = step_recs.get("_parameters") or (
        min(step_recs.values(), key=lambda r: r["ts_epoch"]) if step_recs else None
    )
    first_ts = min((int(r["ts_epoch"]) for r in step_recs.values()), default=None)
    before = None
    if target is not None:
        before = target.scalar(
            "SELECT ts_epoch FROM runs WHERE flow_id = ? AND run_number = ?", (flow_id, run_number)
        )
    created = _run_created_at(run_rec, first_ts, before)
    _RECORD_TS[(flow_id, run_number)] = (int(run_rec["ts_epoch"]), run_rec.get("user_name"))
    user_now = list(dict.fromkeys(run_rec.get("tags") or []))
    user_orig = list(dict.fromkeys((first or run_rec).get("tags") or []))
    system_tags = list(dict.fromkeys(run_rec.get("system_tags") or []))
    user_name = (first or run_rec).get("user_name") or run_rec.get("user_name")

    tasks: list[_Task] = []
    for d in step_dirs:
        for task_dir in d.iterdir():
            if task_dir.name == "_meta" or not (task_dir / "_meta" / "_self.json").is_file():
                continue
            tasks.append(_read_task(d, task_dir))
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
                "SELECT t.task_pk FROM tasks t JOIN runs r ON r.run_pk = t.run_pk "
                "WHERE r.flow_id = ? AND r.run_number = ? AND t.step_name = ? AND t.task_id = ?",
                (flow_id, origin_run, t.step_name, origin_task),
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
                    r["field_name"] in _END_FIELDS
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
            task_ok = _loads_flag(prepared.get("_task_ok"))
            success = _loads_flag(prepared.get("_success"))
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


def _is_done(a: _Attempt) -> bool:
    return a.done_ts is not None or bool(a.artifacts)


def _import_logs(writer: Writer, task: TaskRef, task_dir: Path, attempt: int) -> None:
    for stream in ("stdout", "stderr"):
        for source in ("runtime", "task"):
            lines = list(parse_mflog(task_dir / (f"{attempt}.{source}_{stream}.log")))
            if lines:
                writer.add_log_lines(task, attempt, stream, lines, source=source)


# -- the whole directory -----------------------------------------------------------


def import_metaflow(
    path: str | os.PathLike[str],
    target: Store,
    *,
    progress: Callable[[int, int, str], None] | None = None,
) -> ImportReport:
    """Import every run of the ``.metaflow`` directory at ``path`` into ``target``.
    Nothing outside that directory is read (symlinks, ``..``, absolute paths and bad
    shas are reported as problems and their run skipped); every blob is checked
    against its sha."""
    started = time.perf_counter()
    root = find_metaflow_root(path)
    report = ImportReport()
    _confined_to.append(os.path.realpath(root))
    try:
        return _import(root, target, report, progress, started)
    finally:
        _confined_to.pop()
        _real_dirs.clear()


def _import(
    root: Path,
    target: Store,
    report: ImportReport,
    progress: Callable[[int, int, str], None] | None,
    started: float,
) -> ImportReport:
    from .sharing import copy_runs, fold_after_commit

    runs = list_runs(root, report.problems)
    staging = Store(":memory:")
    writer = Writer(staging)
    readers: dict[str, _BlobReader] = {}
    flow_ts: dict[str, int] = {}
    try:
        for i, (flow_id, run_dir) in enumerate(runs):
            if progress is not None:
                progress(i, len(runs), f"{flow_id}/{run_dir.name}")
            if flow_id not in readers:
                readers[flow_id] = _BlobReader(root / flow_id, report)
                try:
                    flow_ts[flow_id] = int(
                        _read_json(root / flow_id / "_meta" / "_self.json")["ts_epoch"]
                    )
                except (OSError, ValueError, KeyError):
                    pass
            _real_dirs.clear()
            if _already_identical(target, staging, flow_id, run_dir):
                report.skipped.append(f"{flow_id}/{run_dir.name}")
                continue
            try:
                # One savepoint per run: a run that cannot be read leaves nothing staged.
                with staging.write():
                    stage_run(writer, flow_id, run_dir, readers[flow_id], report, target)
            except (OSError, ValueError, KeyError) as exc:
                report.problems.append(
                    f"{flow_id}/{run_dir.name}: not imported ({type(exc).__name__}: {exc})"
                )
        if progress is not None:
            progress(len(runs), len(runs), "writing")
        with staging.write():
            for flow_id, ts in flow_ts.items():
                staging.execute("UPDATE flows SET ts_epoch = ? WHERE flow_id = ?", (ts, flow_id))
        try:
            merged = copy_runs(staging, target, reconcile_tags=False)
        except StoreFullError:
            raise disk_full(
                target.path, f"nothing was imported (one transaction): {target.path} is as it was"
            ) from None
        kept = f"the {len(merged.added)} runs imported are kept"
        try:
            report.retagged += _sync_tags(target, staging, merged.identical)
        except StoreFullError:
            raise disk_full(
                target.path,
                f"{kept}; tag changes of runs imported before were not applied",
                "free some space and import again (imported runs are skipped)",
            ) from None
        report.imported += merged.added
        report.skipped += merged.identical
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
            "SELECT run_pk, tagset_id, ts_epoch FROM runs WHERE flow_id = ? AND run_number = ?",
            (flow_id, run_number),
        )
        theirs = staging.one(
            "SELECT run_pk, tagset_id FROM runs WHERE flow_id = ? AND run_number = ?",
            (flow_id, run_number),
        )
        if mine is None or theirs is None:
            continue
        mf_user, _ = Writer(staging).read_tagset(theirs[1])
        cur, _ = writer.read_tagset(mine[1])
        if mf_user == cur:
            continue
        mf_ts, mf_by = _RECORD_TS.get((flow_id, run_number), (0, None))
        last = (
            target.scalar("SELECT max(ts_epoch) FROM tag_events WHERE run_pk = ?", (mine[0],))
            or mine[2]
        )
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


#: (flow, run) -> (ts_epoch, user_name) of the run record read by the last stage_run.
_RECORD_TS: dict[tuple[str, str], tuple[int, str | None]] = {}


def _already_identical(target: Store, staging: Store, flow_id: str, run_dir: Path) -> bool:
    """Fast path for re-import: the run is in the target, has ended there, and the
    directory's run record and task count are unchanged (tag edits need the full path)."""
    row = target.one(
        "SELECT r.run_pk, r.status, r.tagset_id FROM runs r WHERE r.flow_id = ? AND r.run_number = ?",
        (flow_id, run_dir.name),
    )
    if row is None or row[1] == "running":
        return False
    run_pk, _, tagset_id = row
    try:
        rec = _read_json(run_dir / "_meta" / "_self.json")
    except (OSError, ValueError):
        return False
    tags = {(t, 0) for t in rec.get("tags") or []} | {(t, 1) for t in rec.get("system_tags") or []}
    have = {
        (t, s)
        for t, s in target.query(
            "SELECT tag, is_system FROM tagset_tags WHERE tagset_id = ?", (tagset_id,)
        )
    }
    if tags != have:
        return False
    n_dir = sum(
        1
        for d in run_dir.iterdir()
        if d.is_dir() and d.name != "_meta"
        for t in d.iterdir()
        if t.name != "_meta" and t.is_dir()
    )
    n_db = target.scalar("SELECT count(*) FROM tasks WHERE run_pk = ?", (run_pk,))
    return bool(n_dir == n_db)

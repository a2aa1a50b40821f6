"""Reading one Metaflow run into plain data (``ParsedRun``): every file of the run is
read, parsed and checked here, before anything is written, so a run that cannot be read
leaves nothing behind. Reading is the cost of an import (a task is ~30 small JSON
files), so ``read_runs`` spreads runs over worker processes and hands them back in order."""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import struct
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..artifacts import PreparedArtifact
from ..blobs import from_json
from ..exception import MetaflowInternalError, MetaflowTaggingError
from ..tags import validate_tags
from ..writer import MetadataEntry
from ..writer.records import STATUS_FIELDS
from .history import BlobFiles, Folder, confined_to, forget_real_paths, parse_mflog_bytes

_SYSMETA_RE = re.compile(r"^sysmeta_(.+)_(\d+)\.json$")
_ARTIFACT_RE = re.compile(r"^(\d+)_artifact_(.+)\.json$")
#: A record that is not there, or not a file: the directory is not a step or task.
_ABSENT = (FileNotFoundError, NotADirectoryError, IsADirectoryError)
#: What a damaged or hostile run raises while it is read: the run is skipped.
READ_ERRORS = (OSError, ValueError, KeyError, TypeError, AttributeError, MetaflowTaggingError)


@dataclass
class DoneAttempt:
    """An attempt that ended (or recorded artifacts)."""

    attempt: int
    artifacts: dict[str, str]
    """name -> sha of the artifacts whose blob was readable and matched its sha."""
    artifact_ts: dict[str, int]
    task_ok: bool
    success: bool
    ts_epoch: int


@dataclass
class ParsedTask:
    step_name: str
    task_id: str
    ts_epoch: int
    origin_task: str | None
    attempts: list[tuple[int, int]]
    """``(attempt, started_at)``, in order."""
    metadata: list[MetadataEntry]
    logs: list[tuple[int, str, str, list[tuple[int, str]]]]
    """``(attempt, stream, source, lines)``."""
    done: list[DoneAttempt]


@dataclass
class ParsedRun:
    """Everything the writer needs of one run (see ``importer.write``)."""

    flow_id: str
    dir_name: str
    run_number: str
    record_ts: int
    """``ts_epoch`` of the run record (rewritten by Metaflow on a tag edit)."""
    record_user: str | None
    user_name: str | None
    user_now: list[str]
    user_orig: list[str]
    system_tags: list[str]
    first_step_ts: int | None
    steps: list[tuple[str, int]]
    end_step: str
    origin_run: str | None
    tasks: list[ParsedTask]
    blobs: dict[str, PreparedArtifact] = field(default_factory=dict)
    """Blobs this reader had not handed over before (the others go by sha)."""
    problems: list[str] = field(default_factory=list)
    """Artifacts left out (unreadable blob, other content)."""


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} is {type(value).__name__}, not a string")
    return value


def _strs(values: Any, what: str) -> list[str]:
    if values is None:
        return []
    if not isinstance(values, list):
        raise ValueError(f"{what} is not a list")
    return list(dict.fromkeys(_str(v, what) for v in values))


@dataclass
class _Found:
    """What reading one run of flow ``flow_id`` collects on the way (``ParsedRun``'s last
    two fields)."""

    flow_id: str
    blobs: dict[str, PreparedArtifact] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class RunReader:
    """Reads runs of one history; remembers which blobs it handed over (by sha, with
    the ``_task_ok``/``_success`` flag they hold), so each is read once per reader."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._flows: dict[str, BlobFiles] = {}
        self._sent: dict[tuple[str, str], bool | None] = {}

    def read(self, flow_id: str, run_dir: str) -> ParsedRun | str:
        """The run, or the one line saying why it is skipped."""
        forget_real_paths()
        found = _Found(flow_id)
        try:
            run = self._read(run_dir, found)
        except READ_ERRORS as exc:
            return (
                f"{flow_id}/{os.path.basename(run_dir)}: not imported ({type(exc).__name__}: {exc})"
            )
        for sha, art in found.blobs.items():
            self._sent[(flow_id, sha)] = _flag(art)
        run.blobs, run.problems = found.blobs, found.problems
        return run

    def _blob(
        self, found: _Found, sha: str, info: dict[str, Any], what: str
    ) -> tuple[bool, bool | None]:
        """``(readable, flag)`` of blob ``sha``; read (into ``found``) unless handed over."""
        flow_id = found.flow_id
        if (flow_id, sha) in self._sent:
            return True, self._sent[(flow_id, sha)]
        art = found.blobs.get(sha)
        if art is None:
            files = self._flows.get(flow_id)
            if files is None:
                files = self._flows[flow_id] = BlobFiles(self.root / flow_id)
            art = files.load(sha, info if isinstance(info, dict) else {}, what, found.problems)
            if art is None:
                return False, None
            found.blobs[sha] = art
        return True, _flag(art)

    def _read(self, run_dir: str, found: _Found) -> ParsedRun:
        flow_id = found.flow_id
        dir_name = os.path.basename(run_dir)
        run = Folder(run_dir)
        run_rec = run.sub("_meta").json("_self.json")
        run_number = str(run_rec.get("run_number", dir_name))
        step_recs: dict[str, dict[str, Any]] = {}
        steps: dict[str, Folder] = {}
        for name in sorted(run.names()):
            if name == "_meta":
                continue
            try:
                step = run.sub(name)
                step_recs[name] = step.sub("_meta").json("_self.json")
            except _ABSENT:
                continue
            steps[name] = step
        first = step_recs.get("_parameters") or (
            min(step_recs.values(), key=lambda r: r["ts_epoch"]) if step_recs else None
        )
        user_now = validate_tags(_strs(run_rec.get("tags"), "a tag"))
        user_orig = validate_tags(_strs((first or run_rec).get("tags"), "a tag"))
        user_name = (first or run_rec).get("user_name") or run_rec.get("user_name")
        record_user = run_rec.get("user_name")
        for who in (user_name, record_user):
            if who is not None:
                _str(who, "the user name")

        tasks: list[_TaskFiles] = []
        seen: set[tuple[str, str]] = set()
        for step_name, step in steps.items():
            for entry in step.names():
                if entry == "_meta":
                    continue
                read = _read_task(step_name, step.sub(entry))
                if read is None:
                    continue
                if (step_name, read.task_id) in seen:
                    raise ValueError(f"two tasks of step {step_name} have id {read.task_id}")
                seen.add((step_name, read.task_id))
                tasks.append(read)
        tasks.sort(
            key=lambda t: (t.ts_epoch, int(t.task_id) if t.task_id.isdigit() else 0, t.task_id)
        )

        end_step = "end"
        origin_run: str | None = None
        for t in tasks:
            for rec in t.metadata:
                if t.step_name == "_parameters" and rec.field_name == "end_step":
                    end_step = str(rec.value)
                if (
                    rec.field_name == "origin-run-id"
                    and str(rec.value) not in ("None", "")
                    and origin_run is None
                ):
                    origin_run = str(rec.value)
        pathspec = f"{flow_id}/{run_number}"
        parsed = [self._task(found, pathspec, t) for t in tasks]
        return ParsedRun(
            flow_id=flow_id,
            dir_name=dir_name,
            run_number=run_number,
            record_ts=int(run_rec["ts_epoch"]),
            record_user=record_user,
            user_name=user_name,
            user_now=user_now,
            user_orig=user_orig,
            system_tags=_strs(run_rec.get("system_tags"), "a system tag"),
            first_step_ts=min((int(r["ts_epoch"]) for r in step_recs.values()), default=None),
            steps=[(name, int(rec["ts_epoch"])) for name, rec in step_recs.items()],
            end_step=end_step,
            origin_run=origin_run,
            tasks=parsed,
        )

    def _task(self, found: _Found, pathspec: str, t: _TaskFiles) -> ParsedTask:
        origin_task = next(
            (str(r.value) for r in t.metadata if r.field_name == "origin-task-id"), None
        )
        done: list[DoneAttempt] = []
        for n in sorted(t.attempts):
            a = t.attempts[n]
            if not a.is_done:
                continue
            shas: dict[str, str] = {}
            flags: dict[str, bool | None] = {}
            for name, rec in a.artifacts.items():
                ok, flag = self._blob(
                    found,
                    rec["sha"],
                    a.data_info.get(name) or {},
                    f"{pathspec}/{t.step_name}/{t.task_id}/{name}",
                )
                if ok:
                    shas[name] = rec["sha"]
                    flags[name] = flag
            artifact_ts = {name: int(rec["ts_epoch"]) for name, rec in a.artifacts.items()}
            # Metaflow's client: a task finished when its _task_ok artifact was recorded
            ts = artifact_ts.get("_task_ok") or (
                a.done_ts or max(artifact_ts.values(), default=t.ts_epoch)
            )
            done.append(
                DoneAttempt(
                    n,
                    shas,
                    {name: artifact_ts[name] for name in shas},
                    bool(flags.get("_task_ok")),
                    bool(flags.get("_success")),
                    ts,
                )
            )
        metadata = [
            r
            for r in t.metadata
            if not (
                r.field_name in STATUS_FIELDS
                and r.attempt in t.attempts
                and t.attempts[r.attempt].is_done
            )
        ]
        logs = []
        for n in sorted(t.attempts):
            for stream in ("stdout", "stderr"):
                for source in ("runtime", "task"):
                    name = f"{n}.{source}_{stream}.log"
                    if name in t.files:
                        lines = list(parse_mflog_bytes(t.folder.read(name)))
                        if lines:
                            logs.append((n, stream, source, lines))
        return ParsedTask(
            t.step_name,
            t.task_id,
            t.ts_epoch,
            origin_task,
            [
                (n, a.started_at if a.started_at is not None else t.ts_epoch)
                for n, a in sorted(t.attempts.items())
            ],
            metadata,
            logs,
            done,
        )


def _flag(art: PreparedArtifact) -> bool | None:
    """The value of a ``_task_ok``/``_success`` artifact (None unless a bool)."""
    return from_json(art.value_json, bool)


# -- one task's files ------------------------------------------------------------------


class _AttemptFiles:
    __slots__ = ("artifacts", "data_info", "done_ts", "started_at")

    def __init__(self) -> None:
        self.started_at: int | None = None
        self.done_ts: int | None = None
        self.artifacts: dict[str, dict[str, Any]] = {}
        self.data_info: dict[str, Any] = {}

    @property
    def is_done(self) -> bool:
        return self.done_ts is not None or bool(self.artifacts)


@dataclass
class _TaskFiles:
    step_name: str
    task_id: str
    folder: Folder
    ts_epoch: int
    metadata: list[MetadataEntry]
    attempts: dict[int, _AttemptFiles]
    files: set[str]


def _attempt_of(rec: dict[str, Any]) -> int | None:
    attempt = None
    for tag in rec.get("tags") or []:
        if isinstance(tag, str) and tag.startswith("attempt_id:"):
            attempt = int(tag.split(":", 1)[1])
            if attempt < 0:
                raise ValueError(f"attempt {attempt} is negative")
    return attempt


def _read_task(step_name: str, task: Folder) -> _TaskFiles | None:
    """A task directory's records (plain strings: pathlib costs more than the reads);
    None when it is not a task (no ``_meta/_self.json``)."""
    try:
        meta = task.sub("_meta")
        self_rec = meta.json("_self.json")
    except _ABSENT:
        return None
    metadata: list[MetadataEntry] = []
    attempts: dict[int, _AttemptFiles] = {}

    def att(n: int) -> _AttemptFiles:
        a = attempts.get(n)
        if a is None:
            a = attempts[n] = _AttemptFiles()
        return a

    for entry in sorted(meta.names()):
        if entry.startswith("sysmeta_"):
            if not _SYSMETA_RE.match(entry):
                continue
            rec = meta.json(entry)
            attempt = _attempt_of(rec)
            field_name = _str(rec["field_name"], "a metadata field name")
            ts = int(rec["ts_epoch"])
            metadata.append(
                MetadataEntry(
                    field_name, rec["value"], str(rec.get("type") or field_name), attempt, ts
                )
            )
            if attempt is not None:
                a = att(attempt)
                if field_name == "attempt-done":
                    a.done_ts = max(a.done_ts or 0, ts)
                if field_name == "attempt" and a.started_at is None:
                    a.started_at = ts
            continue
        m = _ARTIFACT_RE.match(entry)
        if m:
            rec = meta.json(entry)
            name = _str(rec.get("name", m.group(2)), "an artifact name")
            att(int(m.group(1))).artifacts[name] = rec
    files = set(task.names())
    for entry in files:
        head, _, kind = entry.partition(".")
        if not head.isdigit():
            continue
        n = int(head)
        if kind == "attempt.json":
            try:
                t = task.json(entry).get("time")
                if t is not None:
                    att(n).started_at = int(float(t) * 1000)
            except (OSError, ValueError):
                att(n)
        elif kind == "data.json":
            with contextlib.suppress(OSError, ValueError):
                att(n).data_info = task.json(entry).get("info") or {}
        elif kind in ("task_begin", "runtime_stdout.log", "runtime_stderr.log"):
            att(n)
    metadata.sort(key=lambda r: r.ts_epoch)
    return _TaskFiles(
        step_name,
        str(self_rec.get("task_id", os.path.basename(task.path))),
        task,
        int(self_rec["ts_epoch"]),
        metadata,
        attempts,
        files,
    )


# -- many runs, in worker processes ------------------------------------------------------

#: Runs handed to a worker at a time, and batches in flight per worker (memory bound).
CHUNK_RUNS = 8
AHEAD_PER_WORKER = 4


def default_workers() -> int:
    """Worker processes for a large import: one per CPU this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _send(pipe: IO[bytes], obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    pipe.write(struct.pack("<Q", len(data)) + data)
    pipe.flush()


def _receive(pipe: IO[bytes]) -> Any:
    head = pipe.read(8)
    if len(head) < 8:
        raise EOFError
    (size,) = struct.unpack("<Q", head)
    data = pipe.read(size)
    if len(data) < size:
        raise EOFError
    # Our own worker's output: plain data it built from what it parsed (never the
    # history's bytes as a pickle stream).
    return pickle.loads(data)


def serve(root: str) -> None:
    """A worker's loop (``python -m mfstore.importer.worker ROOT``): batches of
    ``(flow_id, run_dir)`` in on stdin, their ``RunReader.read`` results out on stdout."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    reader = RunReader(Path(root))
    with confined_to(Path(root)):
        while True:
            try:
                jobs = _receive(stdin)
            except EOFError:
                return
            try:
                out: Any = [reader.read(flow_id, run_dir) for flow_id, run_dir in jobs]
            except Exception:  # a bug, not the history: the parent reports it
                out = ("failed", traceback.format_exc())
            _send(stdout, out)


class _Workers:
    """Reader processes (``mfstore.importer.worker``): plain child processes talking
    over pipes, so nothing of the caller's process (its main module, threads, open
    files) is copied or re-run."""

    def __init__(self, root: Path, n: int) -> None:
        self.procs = [
            subprocess.Popen(
                [sys.executable, "-m", "mfstore.importer.worker", os.fspath(root)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            )
            for _ in range(n)
        ]

    def send(self, i: int, jobs: list[tuple[str, str]]) -> None:
        p = self.procs[i % len(self.procs)]
        assert p.stdin is not None
        _send(p.stdin, jobs)

    def receive(self, i: int) -> list[ParsedRun | str]:
        p = self.procs[i % len(self.procs)]
        assert p.stdout is not None
        try:
            out = _receive(p.stdout)
        except EOFError:
            raise MetaflowInternalError(
                f"a process reading the history ended early (exit code {p.wait()})"
            ) from None
        if isinstance(out, tuple):
            raise MetaflowInternalError(f"a process reading the history failed: {out[1]}")
        result: list[ParsedRun | str] = out
        return result

    def close(self) -> None:
        for p in self.procs:
            if p.stdin is not None:
                p.stdin.close()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
            if p.stdout is not None:
                p.stdout.close()


def read_runs(root: Path, jobs: list[tuple[str, str]], workers: int) -> Iterator[ParsedRun | str]:
    """Each run of ``jobs`` (``(flow_id, run_dir)``) read, in order: a ``ParsedRun``, or
    the line saying why it is skipped. ``workers`` > 1: read by that many processes,
    each at most ``AHEAD_PER_WORKER`` batches ahead of the caller (memory stays
    bounded). Call inside ``confined_to(root)``."""
    if workers <= 1 or len(jobs) <= CHUNK_RUNS:
        reader = RunReader(root)
        for flow_id, run_dir in jobs:
            yield reader.read(flow_id, run_dir)
        return
    chunks = [jobs[i : i + CHUNK_RUNS] for i in range(0, len(jobs), CHUNK_RUNS)]
    pool = _Workers(root, workers)
    try:
        ahead = min(len(chunks), workers * AHEAD_PER_WORKER)
        for i in range(ahead):
            pool.send(i, chunks[i])
        for i in range(len(chunks)):
            done = pool.receive(i)
            if i + ahead < len(chunks):
                pool.send(i + ahead, chunks[i + ahead])
            yield from done
    finally:
        pool.close()

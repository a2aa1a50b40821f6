"""Reading a Metaflow local datastore (``.metaflow``): files only, confined to the
directory given; blobs checked against their sha."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from .. import artifacts as _artifacts
from ..artifacts import PreparedArtifact, prepare_raw_artifact
from ..blobs import sha1_hex
from ..exception import HistoryPathError, NotAMetaflowHistory

#: Fields that ``Writer.end_attempt`` records itself for every ended attempt.
END_FIELDS = ("attempt_ok", "attempt-done")
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


@contextlib.contextmanager
def confined_to(root: Path) -> Iterator[None]:
    """Inside the block, every path read must resolve inside ``root``."""
    _confined_to.append(os.path.realpath(root))
    try:
        yield
    finally:
        _confined_to.pop()
        _real_dirs.clear()


def forget_real_paths() -> None:
    """Drop the cached real paths of directories (before reading the next run)."""
    _real_dirs.clear()


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


def read_json(path: Path | str) -> Any:
    with open(_inside(os.fspath(path)), "rb") as fh:
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
class AttemptFiles:
    attempt: int
    started_at: int | None = None
    done_ts: int | None = None
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_info: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskFiles:
    step_name: str
    task_id: str
    path: Path
    ts_epoch: int
    metadata: list[dict[str, Any]]
    attempts: dict[int, AttemptFiles]


def read_task(step_dir: Path, task_dir: Path) -> TaskFiles:
    # Plain strings: a task has ~30 small files, and pathlib's objects cost more than
    # reading them.
    task_path = os.fspath(task_dir)
    meta_dir = os.path.join(task_path, "_meta")
    self_rec = read_json(os.path.join(meta_dir, "_self.json"))
    metadata: list[dict[str, Any]] = []
    attempts: dict[int, AttemptFiles] = {}

    def att(n: int) -> AttemptFiles:
        if n not in attempts:
            attempts[n] = AttemptFiles(n)
        return attempts[n]

    for entry in sorted(os.listdir(_inside(meta_dir))):
        m = _SYSMETA_RE.match(entry)
        if m:
            rec = read_json(os.path.join(meta_dir, entry))
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
            rec = read_json(os.path.join(meta_dir, entry))
            att(int(m.group(1))).artifacts[rec.get("name", m.group(2))] = rec
    for entry in os.listdir(_inside(task_path)):
        head, _, kind = entry.partition(".")
        if not head.isdigit():
            continue
        n = int(head)
        if kind == "attempt.json":
            try:
                t = read_json(os.path.join(task_path, entry)).get("time")
                if t is not None:
                    att(n).started_at = int(float(t) * 1000)
            except (OSError, ValueError):
                att(n)
        elif kind == "data.json":
            try:
                att(n).data_info = read_json(os.path.join(task_path, entry)).get("info") or {}
            except (OSError, ValueError):
                pass
        elif kind in ("task_begin", "runtime_stdout.log", "runtime_stderr.log"):
            att(n)
    metadata.sort(key=lambda r: int(r["ts_epoch"]))
    return TaskFiles(
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


class BlobFiles:
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
                cas_raw = bool(read_json(meta_path).get("cas_raw"))
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


def loads_flag(raw_prepared: PreparedArtifact | None) -> bool | None:
    if raw_prepared is None or raw_prepared.value_json is None:
        return None
    try:
        v = json.loads(raw_prepared.value_json)
    except ValueError:
        return None
    return v if isinstance(v, bool) else None

"""The Metaflow-free half of the extension: which file, what a datastore key means, and
mfstore rows rendered as the dicts Metaflow's metadata providers return.

Every read is a statement compiled in ``mfstore.query``; every write goes through
``mfstore.writer.Writer``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import provider as _provider, query
from ..exception import MetaflowNotFound
from ..store import Store
from ..writer import RunRef, TaskRef, Writer
from . import TYPE

#: Sub-directory of the datastore root Metaflow's card datastore writes under.
CARD_DIR = "mf.cards"
#: Encoding of every artifact blob (Metaflow's default serializer; mfstore's pickles).
ENCODING = "gzip+pickle-v4"
#: Task files up to this size that are UTF-8 text are kept inline in their reference.
INLINE_LIMIT = 4096

Filters = dict[str, Any] | None


# -- which file -----------------------------------------------------------------


def split_root(root: str | os.PathLike[str]) -> tuple[Path, list[str]]:
    """``(file, prefix parts)`` of a datastore root: ``X.mfdb``, ``X.mfdb/mf.cards``, or a
    directory (its ``metaflow.mfdb``)."""
    p = Path(os.fspath(root)).expanduser().absolute()
    parts: list[str] = []
    cur = p
    while True:
        if cur.suffix == ".mfdb" or cur.is_file():
            return cur, list(reversed(parts))
        if cur.parent == cur:
            break
        parts.append(cur.name)
        cur = cur.parent
    return p / _provider.DEFAULT_FILE_NAME, []


def default_file(*, create: bool) -> Path | None:
    """The file chosen the mfstore way: ``$MFSTORE_DB``, else ``metaflow.mfdb`` from the
    current directory up; else ``./metaflow.mfdb`` when ``create``, else None."""
    found = _provider.discover()
    if found is not None:
        return found
    return _provider.default_write_path() if create else None


# -- datastore keys ---------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """What a datastore key (a path relative to the root) stands for."""

    kind: str
    """'blob', 'task' (a file of a task: artifacts index, marker, log, card) or 'other'."""
    parts: tuple[str, ...]
    flow: str | None = None
    run: str | None = None
    step: str | None = None
    task: str | None = None
    name: str | None = None
    """File name within the task (``0.data.json``, ``mf.cards/cards/default-x.html``)."""

    @property
    def sha(self) -> str:
        return self.parts[-1]

    @property
    def attempt(self) -> int | None:
        """The attempt a task file belongs to (``3.task_end`` -> 3), else None."""
        head = (self.name or "").split(".", 1)[0]
        return int(head) if head.isdigit() else None

    @property
    def suffix(self) -> str:
        """The file name without its attempt prefix."""
        name = self.name or ""
        head, _, rest = name.partition(".")
        return rest if head.isdigit() and rest else name


def parse_key(parts: list[str]) -> Key:
    """Classify ``parts`` (prefix + key, split on '/')."""
    t = tuple(p for p in parts if p not in ("", "."))
    if t and t[0] == CARD_DIR:
        r = t[1:]
        if len(r) == 9 and r[1] == "runs" and r[3] == "steps" and r[5] == "tasks":
            return Key("task", t, r[0], r[2], r[4], r[6], f"{CARD_DIR}/{r[7]}/{r[8]}")
        return Key("other", t)
    if len(t) == 4 and t[1] == "data" and len(t[3]) == 40:
        return Key("blob", t, t[0])
    if len(t) == 5:
        return Key("task", t, t[0], t[1], t[2], t[3], t[4])
    return Key("other", t)


def log_name(name: str) -> tuple[str, str] | None:
    """``(source, stream)`` of a log file suffix such as ``task_stdout.log``."""
    if not name.endswith(".log"):
        return None
    source, _, stream = name[:-4].rpartition("_")
    if stream in ("stdout", "stderr") and source:
        return source, stream
    return None


def type_repr(type_name: str) -> str:
    """Metaflow's ``str(type(value))`` from mfstore's qualified type name."""
    module, _, qual = type_name.rpartition(".")
    return f"<class '{qual}'>" if module == "builtins" else f"<class '{type_name}'>"


# -- an open file ------------------------------------------------------------------


class Session:
    """One .mfdb file opened by this process, with its writer and id caches."""

    def __init__(self, path: Path, *, create: bool) -> None:
        self.path = path
        self.store: Store = _provider.open_store(path, create=create)
        self.writer = Writer(self.store)
        self._runs: dict[tuple[str, str], RunRef] = {}
        self._tasks: dict[tuple[str, str, str, str], TaskRef] = {}

    def run_row(self, flow: str, run: str) -> tuple[Any, ...] | None:
        if not query.storable(flow, run):
            return None
        return self.store.one(*query.compile_run_lookup(flow, str(run)))

    def run(self, flow: str, run: str) -> RunRef | None:
        key = (flow, str(run))
        ref = self._runs.get(key)
        if ref is None:
            row = self.run_row(flow, str(run))
            if row is None:
                return None
            ref = self._runs[key] = RunRef(int(row[0]), flow, str(run))
        return ref

    def task(
        self, flow: str, run: str, step: str, task_id: str, *, create: bool = False
    ) -> TaskRef | None:
        key = (flow, str(run), step, str(task_id))
        ref = self._tasks.get(key)
        if ref is not None:
            return ref
        run_ref = self.run(flow, str(run))
        if run_ref is None:
            return None
        if create:
            ref = self.writer.ensure_task(run_ref, step, str(task_id))
        else:
            if not query.storable(step, str(task_id)):
                return None
            row = self.store.one(*query.compile_tasks(run_ref.run_pk, step, str(task_id)))
            if row is None:
                return None
            ref = TaskRef(int(row[0]), run_ref, step, str(task_id))
        self._tasks[key] = ref
        return ref

    def tagset(self, tagset_id: int) -> tuple[list[str], list[str]]:
        user: list[str] = []
        system: list[str] = []
        for tag, is_system in self.store.query(*query.compile_tagset(tagset_id)):
            (system if is_system else user).append(tag)
        return sorted(user), sorted(system)


_sessions: dict[tuple[str, int, bool], Session] = {}


def session(path: Path | str, *, create: bool = False) -> Session:
    """The session for ``path`` in this process (re-made after a fork)."""
    p = Path(path).absolute()
    key = (str(p), os.getpid(), create)
    s = _sessions.get(key)
    if s is None:
        if not create and not p.exists():
            raise MetaflowNotFound(f"{p} does not exist: run a flow with --metadata mfdb first")
        s = _sessions[key] = Session(p, create=create)
    return s


# -- rows -> Metaflow's dicts ---------------------------------------------------------


def _wanted(filters: Filters) -> tuple[list[str], list[str], list[str]]:
    any_tags: list[str] = []
    user: list[str] = []
    system: list[str] = []
    for key, value in (filters or {}).items():
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        {"any_tags": any_tags, "tags": user, "system_tags": system}.get(key, []).extend(
            str(v) for v in values
        )
    return any_tags, user, system


def passes(obj: dict[str, Any], filters: Filters) -> bool:
    any_tags, user, system = _wanted(filters)
    u, s = set(obj.get("tags", ())), set(obj.get("system_tags", ()))
    return (
        all(t in u or t in s for t in any_tags)
        and all(t in u for t in user)
        and all(t in s for t in system)
    )


def flow_dicts(sess: Session, flow: str | None = None) -> list[dict[str, Any]]:
    """Flows (one when ``flow`` is given) as Metaflow's ``_self.json`` of a flow."""
    if flow is not None:
        if not query.storable(flow):
            return []
        rows = sess.store.query(*query.compile_flow_lookup(flow))
        return [{"flow_id": r[0], "ts_epoch": r[1]} for r in rows]
    out = []
    for (name,) in sess.store.query(*query.compile_flows(None)):
        out.extend(flow_dicts(sess, name))
    return out


def _run_dict(
    sess: Session, row: tuple[Any, ...], memo: dict[int, tuple[list[str], list[str]]] | None = None
) -> dict[str, Any]:
    cols = dict(zip(query.RUN_COLUMNS, row, strict=True))
    memo = {} if memo is None else memo
    if cols["tagset_id"] not in memo:
        memo[cols["tagset_id"]] = sess.tagset(cols["tagset_id"])
    user, system = memo[cols["tagset_id"]]
    return {
        "flow_id": cols["flow_id"],
        "run_number": cols["run_number"],
        "user_name": cols["user_name"],
        "tags": list(user),
        "system_tags": list(system),
        "ts_epoch": cols["ts_epoch"],
    }


def run_dicts(sess: Session, flow: str, filters: Filters) -> list[dict[str, Any]]:
    """Runs of ``flow`` carrying the filter's tags (one indexed query), newest first."""
    if not query.storable(flow):
        return []
    any_tags, user, system = _wanted(filters)
    tags = list(dict.fromkeys(any_tags + user + system))
    if not query.storable(*tags):
        return []
    rows = sess.store.query(*query.compile_runs(flow, tags))
    memo: dict[int, tuple[list[str], list[str]]] = {}  # runs share few tag sets
    out = [_run_dict(sess, r, memo) for r in rows]
    return [d for d in out if passes(d, filters)] if user or system else out


def run_dict(sess: Session, flow: str, run: str) -> dict[str, Any] | None:
    row = sess.run_row(flow, run)
    return None if row is None else _run_dict(sess, row)


def _under_run(run: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    d = {
        "flow_id": run["flow_id"],
        "run_number": run["run_number"],
        "user_name": run["user_name"],
        "tags": run["tags"],
        "system_tags": run["system_tags"],
    }
    d.update(extra)
    return d


def step_dicts(sess: Session, flow: str, run: str, step: str | None = None) -> list[dict[str, Any]]:
    """Steps of a run (or the one named), newest first."""
    rd = run_dict(sess, flow, run)
    ref = sess.run(flow, run)
    if rd is None or ref is None:
        return []
    if step is not None and not query.storable(step):
        return []
    rows = sess.store.query(*query.compile_steps(ref.run_pk, step))
    return [_under_run(rd, {"step_name": s, "ts_epoch": ts}) for s, ts in rows]


def task_dicts(
    sess: Session, flow: str, run: str, step: str, task_id: str | None = None
) -> list[dict[str, Any]]:
    """Tasks of a step (or the one named), newest first."""
    rd = run_dict(sess, flow, run)
    ref = sess.run(flow, run)
    if rd is None or ref is None or not query.storable(step, task_id):
        return []
    one = None if task_id is None else str(task_id)
    rows = sess.store.query(*query.compile_tasks(ref.run_pk, step, one))
    return [
        _under_run(rd, {"step_name": step, "task_id": tid, "ts_epoch": ts})
        for _pk, ts, _origin, tid in rows
    ]


def artifact_dicts(
    sess: Session,
    flow: str,
    run: str,
    step: str,
    task_id: str,
    attempt: int | None,
    name: str | None = None,
) -> list[dict[str, Any]]:
    """Artifacts of the latest *done* attempt of a task (or of ``attempt``)."""
    rd = run_dict(sess, flow, run)
    task = sess.task(flow, run, step, task_id)
    if rd is None or task is None:
        return []
    if attempt is None:
        attempt = sess.store.scalar(*query.compile_done_attempt(task.task_pk))
        if attempt is None:
            return []
    if name is not None and not query.storable(name):
        return []
    rows = sess.store.query(*query.compile_artifacts(task.task_pk, attempt, name))
    location = f":root:{sess.path}"
    return [
        _under_run(
            rd,
            {
                "step_name": step,
                "task_id": str(task_id),
                "attempt_id": attempt,
                "name": n,
                "content_type": ENCODING,
                "type": "metaflow.artifact",
                "sha": sha,
                "ds_type": TYPE,
                "location": location,
                "ts_epoch": ts,
            },
        )
        for n, sha, _type, ts in rows
    ]


def metadata_dicts(
    sess: Session, flow: str, run: str, step: str, task_id: str
) -> list[dict[str, Any]]:
    """All metadata of a task, in recording order. ``ds-type``/``ds-root`` always name
    this file (wherever it was written, by whichever runtime), so logs and artifacts load."""
    rd = run_dict(sess, flow, run)
    task = sess.task(flow, run, step, task_id)
    if rd is None or task is None:
        return []
    out = []
    for field, value, is_json, ts, mtype, attempt in sess.store.query(
        *query.compile_metadata(task.task_pk, None)
    ):
        if field == "ds-type":
            value, is_json = TYPE, 0
        elif field == "ds-root":
            value, is_json = str(sess.path), 0
        out.append(
            {
                "flow_id": flow,
                "run_number": str(run),
                "step_name": step,
                "task_id": str(task_id),
                "field_name": field,
                "type": mtype,
                "value": json.loads(value) if is_json else value,
                "tags": [] if attempt is None else [f"attempt_id:{attempt}"],
                "user_name": rd["user_name"],
                "ts_epoch": ts,
            }
        )
    return out

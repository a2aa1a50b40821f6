"""Reads of one run's steps, tasks, attempts, artifacts, metadata and logs (the Client
and the Metaflow extension). Pure: returns SQL + parameters."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .common import BLOB_JOIN, LOG_STREAM, METADATA_JOIN, Params, done_attempt, sha_key

ARTIFACT_COLUMNS = ("run_pk", "tagset_id", "task_pk", "attempt", "sha", "type", "ts_epoch")

# A task's metadata rows (m) with their interned entries (v), but the rows that keep
# task files (``compile_task_files``).
_MD_ROWS = (
    f"SELECT v.field_name, v.value, v.is_json, m.ts_epoch, v.type, m.attempt FROM {METADATA_JOIN} "
    "WHERE m.task_pk = :task AND v.type != 'mfstore-file'"
)
_ALL_METADATA = _MD_ROWS + " ORDER BY m.metadata_pk"
_ATTEMPT_METADATA = _MD_ROWS + " AND m.attempt = :attempt ORDER BY m.metadata_pk"


# The latest *done* attempt of task t (Metaflow's ``attempt-done``), or the given one.
_DONE_ATTEMPT = f"coalesce(:attempt, ({done_attempt('t.task_pk')}))"
_TASK_DONE_ATTEMPT = done_attempt(":task")


def compile_artifact_lookup(
    flow_id: str, run_number: str, step_name: str, task_id: str, name: str, attempt: int | None
) -> tuple[str, Params]:
    """One artifact of the latest done attempt (or of ``attempt``), as ``ARTIFACT_COLUMNS``."""
    return (
        "SELECT r.run_pk, r.tagset_id, t.task_pk, a.attempt, lower(hex(b.sha)), y.name, a.ts_epoch FROM runs r "
        "JOIN tasks t ON t.run_pk = r.run_pk AND t.step_name = :step AND t.task_id = :task "
        f"JOIN artifacts a ON a.task_pk = t.task_pk AND a.attempt = {_DONE_ATTEMPT} AND a.name = :name "
        f"{BLOB_JOIN} WHERE r.flow_id = :flow AND r.run_number = :run",
        {
            "flow": flow_id,
            "run": run_number,
            "step": step_name,
            "task": task_id,
            "name": name,
            "attempt": attempt,
        },
    )


_RUN_STEPS = "SELECT step_name, ts_epoch FROM steps s WHERE run_pk = :run"
#: Newest first, as Metaflow sorts by ``created_at``; steps created in the same
#: millisecond: the one whose first task was recorded later first (a resume's cloned
#: steps, recorded before the steps it runs, stay after them), then by name.
_ALL_STEPS = _RUN_STEPS + (
    " ORDER BY ts_epoch DESC, (SELECT min(t.task_pk) FROM tasks t WHERE t.run_pk = s.run_pk"
    " AND t.step_name = s.step_name AND t.ts_epoch = s.ts_epoch) DESC, step_name DESC"
)
_ONE_STEP = _RUN_STEPS + " AND step_name = :step"


def compile_steps(run_pk: int, step_name: str | None = None) -> tuple[str, Params]:
    """``(step_name, ts_epoch)`` of the steps of a run, newest first (ties: the later
    recorded first); with ``step_name``, that step only (no row: there is none)."""
    if step_name is None:
        return _ALL_STEPS, {"run": run_pk}
    return _ONE_STEP, {"run": run_pk, "step": step_name}


#: Columns of a task row (after the run's run_pk and tagset_id).
_TASK_COLS = "task_pk, ts_epoch, origin_task_pk, task_id"


_STEP_TASKS = f"SELECT {_TASK_COLS} FROM tasks WHERE run_pk = :run AND step_name = :step"
_ALL_TASKS = _STEP_TASKS + " ORDER BY ts_epoch DESC, CAST(task_id AS INTEGER) DESC, task_id DESC"
_ONE_TASK = _STEP_TASKS + " AND task_id = :task"


def compile_tasks(run_pk: int, step_name: str, task_id: str | None = None) -> tuple[str, Params]:
    """Tasks of a step, newest first (ties: highest task id first); with ``task_id``, that
    task only (no row: there is none)."""
    if task_id is None:
        return _ALL_TASKS, {"run": run_pk, "step": step_name}
    return _ONE_TASK, {"run": run_pk, "step": step_name, "task": task_id}


def compile_done_attempt(task_pk: int) -> tuple[str, Params]:
    """The latest attempt of a task that ended (NULL if none)."""
    return _TASK_DONE_ATTEMPT, {"task": task_pk}


def compile_attempt(task_pk: int, attempt: int | None) -> tuple[str, Params]:
    """``(attempt, started_at, ended_at, task_ok, success)`` of one attempt, or the latest *done* one."""
    if attempt is None:
        return (
            "SELECT attempt, started_at, ended_at, task_ok, success FROM attempts "
            "WHERE task_pk = :task AND ended_at IS NOT NULL ORDER BY attempt DESC LIMIT 1",
            {"task": task_pk},
        )
    return (
        "SELECT attempt, started_at, ended_at, task_ok, success FROM attempts "
        "WHERE task_pk = :task AND attempt = :attempt",
        {"task": task_pk, "attempt": attempt},
    )


def compile_started_attempt(task_pk: int) -> tuple[str, Params]:
    """The latest *started* attempt of a task (NULL if none)."""
    return "SELECT max(attempt) FROM attempts WHERE task_pk = :task", {"task": task_pk}


_ATTEMPT_ARTIFACTS = (
    f"SELECT a.name, lower(hex(b.sha)), y.name, a.ts_epoch FROM artifacts a {BLOB_JOIN} "
    "WHERE a.task_pk = :task AND a.attempt = :attempt"
)
_ALL_ARTIFACTS = _ATTEMPT_ARTIFACTS + " ORDER BY a.ts_epoch DESC, a.name"
_ONE_ARTIFACT = _ATTEMPT_ARTIFACTS + " AND a.name = :name"


def compile_artifacts(task_pk: int, attempt: int, name: str | None = None) -> tuple[str, Params]:
    """``(name, sha, type, ts_epoch)`` of an attempt's artifacts, newest first (ties: by
    name); with ``name``, that artifact only (no row: there is none)."""
    if name is None:
        return _ALL_ARTIFACTS, {"task": task_pk, "attempt": attempt}
    return _ONE_ARTIFACT, {"task": task_pk, "attempt": attempt, "name": name}


def compile_metadata(task_pk: int, attempt: int | None) -> tuple[str, Params]:
    """``(field_name, value, is_json, ts_epoch, type, attempt)`` of a task's metadata (all
    attempts, or one) in recording order, without the rows that keep task files
    (``compile_task_files``)."""
    if attempt is None:
        return _ALL_METADATA, {"task": task_pk}
    return _ATTEMPT_METADATA, {"task": task_pk, "attempt": attempt}


def compile_artifact_refs(task_pk: int, attempt: int) -> tuple[str, Params]:
    """``(name, sha, type, value_json)`` of an attempt's artifacts (resume clones them)."""
    return (
        f"SELECT a.name, lower(hex(b.sha)), y.name, b.value_json FROM artifacts a {BLOB_JOIN} "
        "WHERE a.task_pk = :task AND a.attempt = :attempt",
        {"task": task_pk, "attempt": attempt},
    )


def compile_task_metadata_value(task_pk: int, field_name: str) -> tuple[str, Params]:
    """The newest value of one metadata field of a task (NULL if none)."""
    return (
        f"SELECT v.value FROM {METADATA_JOIN} WHERE m.task_pk = :task "
        "AND v.field_name = :field ORDER BY m.ts_epoch DESC, m.metadata_pk DESC LIMIT 1",
        {"task": task_pk, "field": field_name},
    )


_STREAM_LINES = f"SELECT ts_us, line FROM log_lines WHERE {LOG_STREAM} ORDER BY ts_us, line_pk"
_SOURCE_LINES = f"SELECT ts_us, line FROM log_lines WHERE {LOG_STREAM} AND source = :source ORDER BY ts_us, line_pk"


def compile_log_lines(
    task_pk: int, attempt: int, stream: str, source: str | None = None
) -> tuple[str, Params]:
    """``(ts_us, line)`` of one log stream of one attempt in time order: merged over its
    sources, or of ``source`` only."""
    if source is None:
        return _STREAM_LINES, {"task": task_pk, "attempt": attempt, "stream": stream}
    return _SOURCE_LINES, {"task": task_pk, "attempt": attempt, "stream": stream, "source": source}


def compile_log_size(task_pk: int, attempt: int, stream: str) -> tuple[str, Params]:
    """Bytes of the log text (UTF-8, one newline per line)."""
    return (
        f"SELECT coalesce(sum(length(CAST(line AS BLOB)) + 1), 0) FROM log_lines WHERE {LOG_STREAM}",
        {"task": task_pk, "attempt": attempt, "stream": stream},
    )


def compile_tasks_with_metadata(run_pk: int, step_name: str, field_name: str) -> tuple[str, Params]:
    """``(task_id, value)`` of the tasks of a step carrying metadata ``field_name`` (task order)."""
    return (
        "SELECT t.task_id, v.value FROM tasks t JOIN metadata m ON m.task_pk = t.task_pk "
        "JOIN metadata_values v ON v.value_id = m.value_id AND v.field_name = :field "
        "WHERE t.run_pk = :run AND t.step_name = :step ORDER BY t.task_pk, m.metadata_pk",
        {"run": run_pk, "step": step_name, "field": field_name},
    )


def compile_task_ids(run_pk: int, step_name: str) -> tuple[str, Params]:
    """Task ids of a step in creation order."""
    return (
        "SELECT task_id FROM tasks WHERE run_pk = :run AND step_name = :step ORDER BY task_pk",
        {"run": run_pk, "step": step_name},
    )


def compile_tagset(tagset_id: int) -> tuple[str, Params]:
    """``(tag, is_system)`` of one tag set (``tag_groups`` makes them a tag pair)."""
    return "SELECT tag, is_system FROM tagset_tags WHERE tagset_id = :ts", {"ts": tagset_id}


def tag_groups(rows: Iterable[Sequence[Any]]) -> tuple[frozenset[str], frozenset[str]]:
    """``(user_tags, system_tags)`` of ``compile_tagset``'s rows."""
    user: list[str] = []
    system: list[str] = []
    for tag, is_system in rows:
        (system if is_system else user).append(tag)
    return frozenset(user), frozenset(system)


def compile_task_pathspec(task_pk: int) -> tuple[str, Params]:
    """``(flow_id, run_number, step_name, task_id)`` of a task by row id (resume origins)."""
    return (
        "SELECT r.flow_id, r.run_number, t.step_name, t.task_id FROM tasks t JOIN runs r ON r.run_pk = t.run_pk "
        "WHERE t.task_pk = :task",
        {"task": task_pk},
    )


def compile_trigger_events(run_pk: int) -> tuple[str, Params]:
    """``(name, event_id, type, ts_epoch, pathspec, payload)`` of the events that started a run, newest first."""
    return (
        "SELECT name, event_id, type, ts_epoch, pathspec, payload FROM trigger_events WHERE run_pk = :run "
        "ORDER BY ts_epoch DESC, trigger_pk DESC",
        {"run": run_pk},
    )


def compile_code_package(sha: str) -> tuple[str, Params]:
    """``(script_name, info)`` of a code package."""
    return "SELECT script_name, info FROM code_packages WHERE sha = :sha", {"sha": sha}


def compile_artifact_json(task_pk: int, attempt: int, name: str) -> tuple[str, Params]:
    """``(value_json,)`` of one artifact: its JSON value, NULL when it is not plain data."""
    return (
        "SELECT b.value_json FROM artifacts a JOIN blobs b ON b.blob_id = a.blob_id "
        "WHERE a.task_pk = :task AND a.attempt = :attempt AND a.name = :name",
        {"task": task_pk, "attempt": attempt, "name": name},
    )


def compile_blob_size(sha: str) -> tuple[str, Params]:
    """Raw (pickled) size of a blob."""
    return "SELECT size FROM blobs WHERE sha = :sha", {"sha": sha_key(sha)}


# -- the Metaflow extension (Metaflow's metadata provider and datastore) ---------


def compile_task_files(task_pk: int) -> tuple[str, Params]:
    """``(attempt, name, reference)`` of the Metaflow task files kept with a task."""
    return (
        f"SELECT m.attempt, v.field_name, v.value FROM {METADATA_JOIN} WHERE m.task_pk = :task "
        "AND v.type = 'mfstore-file' ORDER BY m.metadata_pk",
        {"task": task_pk},
    )


def compile_log_sources(task_pk: int) -> tuple[str, Params]:
    """Distinct ``(attempt, stream, source)`` that have log lines for a task."""
    return (
        "SELECT DISTINCT attempt, stream, source FROM log_lines WHERE task_pk = :task",
        {"task": task_pk},
    )


def compile_blob_record(sha: str) -> tuple[str, Params]:
    """``(type, value_json)`` recorded with blob ``sha`` (type NULL: none recorded)."""
    return (
        "SELECT y.name, b.value_json FROM blobs b LEFT JOIN types y ON y.type_id = b.type_id "
        "WHERE b.sha = :sha",
        {"sha": sha_key(sha)},
    )


def compile_max_task_id(run_pk: int) -> tuple[str, Params]:
    """The largest numeric task id of a run (NULL when the run has no task)."""
    return (
        "SELECT max(CAST(task_id AS INTEGER)) FROM tasks WHERE run_pk = :run",
        {"run": run_pk},
    )

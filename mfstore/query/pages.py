"""Reads of the web UI's pages and the command-line listings (``mfstore runs``,
``show``, ``logs``). Pure: returns SQL + parameters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from .common import BLOB_JOIN, LOG_STREAM, METADATA_JOIN, Params, bound_list, iso
from .runs import compile_runs, compile_window, older_than

_OLDER = " AND " + older_than()

# -- the web UI (mfstore/ui): one statement per page part, never a scan of all runs ------


def compile_flow_tag_names(
    flow_id: str, *, system: bool, prefix: str = "", limit: int = 200
) -> tuple[str, Params]:
    """Distinct user (or system) tags of a flow's tag sets starting with ``prefix`` (a range
    of the ``tagset_tags`` primary key: the cost depends on distinct tags, not runs)."""
    params: Params = {"flow": flow_id, "sys": int(system), "lim": limit, "lo": prefix}
    bound = ""
    if prefix:
        params["hi"] = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        bound = " AND tag < :hi"
    return (
        "SELECT DISTINCT tag FROM tagset_tags WHERE flow_id = :flow AND tag >= :lo"
        f"{bound} AND is_system = :sys ORDER BY tag LIMIT :lim",
        params,
    )


def compile_run_parameters(run_pks: Sequence[int]) -> tuple[str, Params]:
    """``(run_pk, name, type, value_json)`` of the parameters of some runs (the artifacts
    of their ``_parameters`` task whose names do not start with ``_``)."""
    params: Params = {}
    names = bound_list(params, "p", run_pks)
    return (
        "SELECT t.run_pk, a.name, y.name, b.value_json FROM tasks t "
        f"JOIN artifacts a ON a.task_pk = t.task_pk {BLOB_JOIN} "
        f"WHERE t.run_pk IN ({names}) AND t.step_name = '_parameters' AND substr(a.name, 1, 1) != '_' "
        "AND a.name != 'name' "
        "ORDER BY t.run_pk, a.name",
        params,
    )


def _narrowed(where: str, params: Params, step: str | None, task_id: str | None) -> str:
    """``where`` narrowed to one step (``t.step_name``) and to one task (``t.task_id``)
    when they are given; their values go into ``params``."""
    if step is not None:
        params["step"] = step
        where += " AND t.step_name = :step"
    if task_id is not None:
        params["task"] = task_id
        where += " AND t.task_id = :task"
    return where


def compile_run_task_attempts(
    run_pk: int, step_name: str | None = None, task_id: str | None = None, *, limit: int = 5000
) -> tuple[str, Params]:
    """``(step_name, task_id, task_pk, ts_epoch, origin_task_pk, attempt, started_at,
    ended_at, task_ok, success)``: every task of a run (or of one step, or one task) with
    each of its attempts (NULLs for a task without one), in scheduling order."""
    params: Params = {"run": run_pk, "lim": limit}
    where = _narrowed("t.run_pk = :run", params, step_name, task_id)
    return (
        "SELECT t.step_name, t.task_id, t.task_pk, t.ts_epoch, t.origin_task_pk, a.attempt, "
        "a.started_at, a.ended_at, a.task_ok, a.success FROM tasks t "
        f"LEFT JOIN attempts a ON a.task_pk = t.task_pk WHERE {where} "
        "ORDER BY t.task_pk, a.attempt LIMIT :lim",
        params,
    )


def compile_run_step_counts(run_pk: int) -> tuple[str, Params]:
    """``(step_name, tasks)`` of a run (the ``tasks`` unique index, no table rows read)."""
    return (
        "SELECT step_name, count(*) FROM tasks WHERE run_pk = :run GROUP BY step_name",
        {"run": run_pk},
    )


def compile_run_artifact_json(run_pk: int, name: str, steps: Sequence[str]) -> tuple[str, Params]:
    """``value_json`` of artifact ``name`` of the first task (of ``steps``) that stored it."""
    params: Params = {"run": run_pk, "name": name}
    names = bound_list(params, "s", steps)
    return (
        "SELECT b.value_json FROM tasks t JOIN artifacts a ON a.task_pk = t.task_pk AND a.name = :name "
        "JOIN blobs b ON b.blob_id = a.blob_id WHERE t.run_pk = :run "
        f"AND t.step_name IN ({names}) ORDER BY t.task_pk, a.attempt DESC LIMIT 1",
        params,
    )


def compile_attempt_artifacts(task_pk: int, attempt: int) -> tuple[str, Params]:
    """``(name, type, sha, size, value_json)`` of one attempt's artifacts, by name."""
    return (
        "SELECT a.name, y.name, lower(hex(b.sha)), b.size, b.value_json FROM artifacts a "
        f"{BLOB_JOIN} WHERE a.task_pk = :task AND a.attempt = :attempt "
        "ORDER BY a.name",
        {"task": task_pk, "attempt": attempt},
    )


def compile_artifact_attempt(task_pk: int) -> tuple[str, Params]:
    """The latest attempt of a task that stored artifacts (what ``Task.data`` shows)."""
    return "SELECT max(attempt) FROM artifacts WHERE task_pk = :task", {"task": task_pk}


def compile_log_page(
    task_pk: int,
    attempt: int,
    stream: str,
    *,
    after: tuple[int, int] | None = None,
    limit: int = 500,
) -> tuple[str, Params]:
    """``(ts_us, line_pk, source, line)``: up to ``limit`` log lines after the keyset
    ``after = (ts_us, line_pk)``, in time order (``log_lines_by_task``)."""
    params: Params = {"task": task_pk, "attempt": attempt, "stream": stream, "lim": limit}
    keyset = ""
    if after is not None:
        params["ats"], params["apk"] = after
        keyset = " AND (ts_us > :ats OR (ts_us = :ats AND line_pk > :apk))"
    return (
        f"SELECT ts_us, line_pk, source, line FROM log_lines WHERE {LOG_STREAM}{keyset} "
        "ORDER BY ts_us, line_pk LIMIT :lim",
        params,
    )


def compile_log_count(task_pk: int, attempt: int, stream: str) -> tuple[str, Params]:
    """Number of log lines of one stream of one attempt."""
    return (
        f"SELECT count(*) FROM log_lines WHERE {LOG_STREAM}",
        {"task": task_pk, "attempt": attempt, "stream": stream},
    )


def compile_artifact_search(
    flow_id: str,
    name: str,
    *,
    equals: Sequence[Any] = (),
    low: float | None = None,
    high: float | None = None,
    before: tuple[int, str] | None = None,
    scan: int = 2000,
) -> tuple[str, Params]:
    """``(run_number, ts_epoch, status, step_name, task_id, value_json)`` of the tasks whose
    artifact ``name`` (latest attempt that stored artifacts) equals one of ``equals`` or
    lies in ``[low, high]``, among the ``scan`` newest runs older than ``before``: a
    bounded walk of ``runs_by_time`` with primary-key seeks per task, never all runs."""
    params: Params = {"flow": flow_id, "name": name, "scan": scan}
    keyset = ""
    if before is not None:
        params["bts"], params["brn"] = before
        keyset = _OLDER
    tests = []
    for i, value in enumerate(equals):
        params[f"e{i}"] = value
        tests.append(f"json_extract(b.value_json, '$') = :e{i}")
    clauses = ["(" + " OR ".join(tests) + ")"] if tests else []
    if low is not None:
        params["lo"] = low
        clauses.append(
            "json_type(b.value_json) IN ('integer', 'real') AND json_extract(b.value_json, '$') >= :lo"
        )
    if high is not None:
        params["hi"] = high
        clauses.append(
            "json_type(b.value_json) IN ('integer', 'real') AND json_extract(b.value_json, '$') <= :hi"
        )
    where = " AND ".join(clauses) or "1"
    return (
        "SELECT r.run_number, r.ts_epoch, r.status, t.step_name, t.task_id, b.value_json FROM ("
        f"SELECT run_pk, run_number, ts_epoch, status FROM runs WHERE flow_id = :flow{keyset} "
        "ORDER BY ts_epoch DESC, run_number DESC LIMIT :scan) r "
        "JOIN tasks t ON t.run_pk = r.run_pk "
        "JOIN artifacts a ON a.task_pk = t.task_pk AND a.name = :name "
        "AND a.attempt = (SELECT max(z.attempt) FROM artifacts z WHERE z.task_pk = t.task_pk) "
        "JOIN blobs b ON b.blob_id = a.blob_id "
        f"WHERE {where} ORDER BY r.ts_epoch DESC, r.run_number DESC, t.task_pk",
        params,
    )


def compile_task_cards(task_pk: int) -> tuple[str, Params]:
    """``(metadata_pk, attempt, name)`` of the card files kept with a task (the Metaflow
    extension keeps task files as metadata of type ``mfstore-file``; cards are its
    ``.html`` files)."""
    return (
        f"SELECT m.metadata_pk, m.attempt, v.field_name FROM {METADATA_JOIN} WHERE m.task_pk = :task "
        "AND v.type = 'mfstore-file' AND v.field_name LIKE '%.html' ORDER BY m.metadata_pk",
        {"task": task_pk},
    )


def compile_card(task_pk: int, metadata_pk: int) -> tuple[str, Params]:
    """``(field_name, value)`` of one card file (``value``: JSON ``{"text"|"sha": ...}``);
    ``metadata_pk`` numbers the task's metadata entries."""
    return (
        f"SELECT v.field_name, v.value FROM {METADATA_JOIN} "
        "WHERE m.task_pk = :task AND m.metadata_pk = :pk AND v.type = 'mfstore-file' "
        "AND v.field_name LIKE '%.html'",
        {"task": task_pk, "pk": metadata_pk},
    )


#: Columns of ``compile_run_listing`` (times as ISO 8601 text, like the ``mf_runs`` view).
RUN_LISTING_COLUMNS = (
    "run_id",
    "status",
    "user",
    "created_at",
    "finished_at",
    "duration_s",
    "tagset_id",
)


def compile_run_listing(
    flow_id: str, tags: Sequence[str] = (), limit: int | None = None
) -> tuple[str, Params]:
    """Runs of ``flow_id`` carrying all ``tags``, newest first, as ``RUN_LISTING_COLUMNS``.

    With ``limit``: the newest ``limit`` runs (``compile_runs``: index seeks per matching
    tag set). Without: every run in index order - a walk back along ``runs_by_time`` (one
    tag-set seek per tag per run), no sort, so the first row comes at once and memory
    stays flat at any size.
    """
    if limit is None:
        inner, params = compile_window(flow_id, tags)
    else:
        inner, params = compile_runs(flow_id, tags, limit=limit)
    return (
        f"SELECT q.run_number, q.status, q.user_name, {iso('q.ts_epoch')}, {iso('q.finished_at')}, "
        f"(q.finished_at - q.ts_epoch) / 1000.0, q.tagset_id FROM ({inner}) q "
        "ORDER BY q.ts_epoch DESC, q.run_number DESC",
        params,
    )


#: ``(flow, created_ms, runs, last_run_ms)`` of every flow, by name (index-only counts).
FLOW_SUMMARIES: Final = (
    "SELECT f.flow_id, f.ts_epoch, (SELECT count(*) FROM runs r WHERE r.flow_id = f.flow_id), "
    "(SELECT max(r.ts_epoch) FROM runs r WHERE r.flow_id = f.flow_id) FROM flows f ORDER BY f.flow_id"
)


#: Columns of ``compile_show_tasks`` (mf_tasks).
SHOW_TASK_COLUMNS = (
    "step",
    "task_id",
    "status",
    "attempt",
    "attempts",
    "foreach_index",
    "started_at",
    "finished_at",
    "duration_s",
)


def compile_show_tasks(
    run_pk: int, step: str | None = None, limit: int | None = None
) -> tuple[str, Params]:
    """Tasks of a run (or of one of its steps) in creation order, as ``SHOW_TASK_COLUMNS``."""
    params: Params = {"run": run_pk}
    where = "run_pk = :run"
    if step is not None:
        params["step"] = step
        where += " AND step = :step"
    sql = "SELECT {} FROM mf_tasks WHERE {} ORDER BY task_pk".format(
        ", ".join(SHOW_TASK_COLUMNS), where
    )
    if limit is not None:
        params["lim"] = limit
        sql += " LIMIT :lim"
    return sql, params


def compile_task_count(run_pk: int, step: str | None = None) -> tuple[str, Params]:
    """Number of tasks of a run (or of one of its steps)."""
    if step is None:
        return "SELECT count(*) FROM tasks WHERE run_pk = :run", {"run": run_pk}
    return (
        "SELECT count(*) FROM tasks WHERE run_pk = :run AND step_name = :step",
        {"run": run_pk, "step": step},
    )


def compile_show_steps(run_pk: int) -> tuple[str, Params]:
    """``(step, status, tasks, started_at, finished_at, duration_s)`` of a run's steps."""
    return (
        "SELECT step, status, tasks, started_at, finished_at, duration_s FROM mf_steps "
        "WHERE run_pk = :run ORDER BY started_at, step",
        {"run": run_pk},
    )


def compile_show_task(task_pk: int) -> tuple[str, Params]:
    """``SHOW_TASK_COLUMNS`` of one task."""
    return (
        "SELECT {} FROM mf_tasks WHERE task_pk = :task".format(", ".join(SHOW_TASK_COLUMNS)),
        {"task": task_pk},
    )


def compile_show_artifacts(task_pk: int) -> tuple[str, Params]:
    """``(name, type, size, sha, value_json)`` of a task's artifacts (latest attempt), by name."""
    return (
        "SELECT name, type, size, sha, value_json FROM mf_artifacts WHERE task_pk = :task ORDER BY name",
        {"task": task_pk},
    )


def compile_show_metadata(task_pk: int) -> tuple[str, Params]:
    """``(field_name, value, type, attempt, created_at)`` of a task's metadata, oldest first."""
    return (
        "SELECT field_name, value, type, attempt, created_at FROM mf_metadata WHERE task_pk = :task "
        "ORDER BY created_ms, field_name",
        {"task": task_pk},
    )


def compile_attempt_numbers(task_pks: Sequence[int]) -> tuple[str, Params]:
    """Distinct attempt numbers of the given tasks, ascending."""
    params: Params = {}
    names = bound_list(params, "t", task_pks)
    return (
        f"SELECT DISTINCT attempt FROM attempts WHERE task_pk IN ({names}) ORDER BY attempt",
        params,
    )


def compile_log_listing(
    flow_id: str,
    run_number: str,
    step: str | None,
    task_id: str | None,
    stream: str,
    attempt: int | None,
) -> tuple[str, Params]:
    """``(step/task_id, attempt, ts_us, line)`` of the logs of a run, step or task: each
    task's latest attempt, or ``attempt``; by time."""
    params: Params = {"flow": flow_id, "run": run_number, "stream": stream}
    where = _narrowed("r.flow_id = :flow AND r.run_number = :run", params, step, task_id)
    if attempt is None:
        which = "l.attempt = (SELECT max(y.attempt) FROM attempts y WHERE y.task_pk = t.task_pk)"
    else:
        params["attempt"] = attempt
        which = "l.attempt = :attempt"
    return (
        "SELECT t.step_name || '/' || t.task_id, l.attempt, l.ts_us, l.line FROM runs r "
        "JOIN tasks t ON t.run_pk = r.run_pk JOIN log_lines l ON l.task_pk = t.task_pk "
        f"WHERE {where} AND l.stream = :stream AND {which} ORDER BY l.ts_us, l.line_pk",
        params,
    )


def compile_task_pks(
    flow_id: str, run_number: str, step: str | None, task_id: str | None
) -> tuple[str, Params]:
    """``task_pk`` of the tasks of a run, step or task."""
    params: Params = {"flow": flow_id, "run": run_number}
    where = _narrowed("r.flow_id = :flow AND r.run_number = :run", params, step, task_id)
    return (
        f"SELECT t.task_pk FROM runs r JOIN tasks t ON t.run_pk = r.run_pk WHERE {where}",
        params,
    )

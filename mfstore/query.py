"""Namespace and tag filters -> parameterized, indexed SQL. Pure: no connection here.

A namespace is just one more required tag. "Runs of flow F having every tag in T"
compiles to: the tag sets of F containing all of T (a seek per tag into the
``tagset_tags`` primary key), then, for ``latest``, one index seek per matching tag set
into ``runs_by_tagset`` - so the cost depends on the number of distinct tag sets that
match, never on the number of runs. Tags that are each common but never together give
an empty set of tag sets and an immediate answer.

Values are always bound as parameters (``:p0``, ``:flow`` ...); the only identifiers
that reach SQL text come from the fixed column lists below.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Columns of ``runs`` every run query returns, in this order.
RUN_COLUMNS = (
    "run_pk",
    "flow_id",
    "run_number",
    "user_name",
    "tagset_id",
    "ts_epoch",
    "status",
    "finished_at",
    "end_step",
    "origin_run_number",
    "code_sha",
)
_RUN_COLS = ", ".join("r." + c for c in RUN_COLUMNS)
_ORDER = "ORDER BY r.ts_epoch DESC, r.run_number DESC"

Params = dict[str, Any]


def storable(*values: str | None) -> bool:
    """True if every value can be stored (UTF-8 text). A string that cannot (e.g. with a
    lone surrogate) is in no row of any file, so a lookup of it matches nothing."""
    try:
        for value in values:
            if value is not None:
                value.encode("utf-8")
    except (UnicodeEncodeError, AttributeError):
        return False
    return True


def required_tags(namespace: str | None, tags: Sequence[str]) -> list[str]:
    """The tags a run must carry: the user's filter tags plus the namespace (if any)."""
    wanted = list(dict.fromkeys(tags))
    if namespace is not None and namespace not in wanted:
        wanted.append(namespace)
    return wanted


def _matching_tagsets(tags: Sequence[str], params: Params) -> str:
    """SQL selecting tagset_id of the flow's tag sets that contain every tag."""
    first, rest = tags[0], tags[1:]
    params["p0"] = first
    clauses = []
    for i, tag in enumerate(rest, start=1):
        params[f"p{i}"] = tag
        clauses.append(
            f"EXISTS (SELECT 1 FROM tagset_tags t{i} WHERE t{i}.flow_id = :flow AND t{i}.tag = :p{i} "
            f"AND t{i}.tagset_id = t0.tagset_id)"
        )
    where = " AND ".join(["t0.flow_id = :flow", "t0.tag = :p0", *clauses])
    return "SELECT DISTINCT t0.tagset_id FROM tagset_tags t0 WHERE " + where


def compile_runs(
    flow_id: str,
    tags: Sequence[str] = (),
    *,
    successful: bool = False,
    latest: bool = False,
    before: tuple[int, str] | None = None,
    limit: int | None = None,
) -> tuple[str, Params]:
    """Runs of ``flow_id`` carrying all ``tags`` (user or system), newest first.

    ``successful`` keeps only successful runs; ``latest`` returns at most one row and
    costs one index seek per matching tag set; ``before`` keeps runs strictly older
    than ``(ts_epoch, run_number)``; ``limit`` returns the newest ``limit`` rows with
    ``limit`` index seeks per matching tag set (``latest`` is ``limit=1``).
    """
    if latest:
        limit = 1
    params: Params = {"flow": flow_id}
    ok = " AND status = 'successful'" if successful else ""
    ok_r = " AND r.status = 'successful'" if successful else ""
    if before is not None:
        params["bts"], params["brn"] = before
        ok += " AND (ts_epoch < :bts OR (ts_epoch = :bts AND run_number < :brn))"
        ok_r += " AND (r.ts_epoch < :bts OR (r.ts_epoch = :bts AND r.run_number < :brn))"
    if not tags:
        sql = f"SELECT {_RUN_COLS} FROM runs r WHERE r.flow_id = :flow{ok_r} {_ORDER}"
        if limit is not None:
            params["lim"] = limit
            sql += " LIMIT :lim"
        return sql, params
    matching = _matching_tagsets(tags, params)
    if limit is not None:
        params["lim"] = limit
        sql = (
            f"WITH m(tagset_id) AS ({matching}) "
            f"SELECT {_RUN_COLS} FROM m JOIN runs r ON r.run_pk IN ("
            f"SELECT run_pk FROM runs WHERE flow_id = :flow AND tagset_id = m.tagset_id{ok} "
            f"ORDER BY ts_epoch DESC, run_number DESC LIMIT :lim) {_ORDER} LIMIT :lim"
        )
        return sql, params
    # CROSS JOIN pins the join order: matching tag sets first, then an index range
    # per tag set, instead of a scan of the flow's runs filtered by tag set.
    sql = (
        f"WITH m(tagset_id) AS ({matching}) "
        f"SELECT {_RUN_COLS} FROM m CROSS JOIN runs r ON r.flow_id = :flow AND r.tagset_id = m.tagset_id{ok_r} {_ORDER}"
    )
    return sql, params


def compile_run_lookup(flow_id: str, run_number: str) -> tuple[str, Params]:
    """One run by pathspec (unique index seek)."""
    return (
        f"SELECT {_RUN_COLS} FROM runs r WHERE r.flow_id = :flow AND r.run_number = :run",
        {"flow": flow_id, "run": run_number},
    )


def compile_flow_in_namespace(flow_id: str, tag: str) -> tuple[str, Params]:
    """1 if the flow has at least one run carrying ``tag``."""
    return (
        "SELECT 1 FROM tagset_tags t CROSS JOIN runs r ON r.flow_id = t.flow_id AND r.tagset_id = t.tagset_id "
        "WHERE t.flow_id = :flow AND t.tag = :tag LIMIT 1",
        {"flow": flow_id, "tag": tag},
    )


def compile_flows(namespace: str | None) -> tuple[str, Params]:
    """Flow names (sorted) having at least one run in ``namespace`` (all if None)."""
    if namespace is None:
        return "SELECT flow_id FROM flows ORDER BY flow_id", {}
    return (
        "SELECT f.flow_id FROM flows f WHERE EXISTS ("
        "SELECT 1 FROM tagset_tags t CROSS JOIN runs r ON r.flow_id = t.flow_id AND r.tagset_id = t.tagset_id "
        "WHERE t.flow_id = f.flow_id AND t.tag = :tag) ORDER BY f.flow_id",
        {"tag": namespace},
    )


def compile_tag_counts(flow_id: str, tags: Sequence[str]) -> tuple[str, Params]:
    """Number of the flow's tag sets holding each tag (to drive the filter from the rarest)."""
    params: Params = {"flow": flow_id}
    names = []
    for i, tag in enumerate(tags):
        params[f"p{i}"] = tag
        names.append(f":p{i}")
    return (
        "SELECT tag, count(DISTINCT tagset_id) FROM tagset_tags WHERE flow_id = :flow AND tag IN ({}) GROUP BY tag".format(
            ", ".join(names)
        ),
        params,
    )


def compile_tagset_has(tagset_id: int, tag: str) -> tuple[str, Params]:
    """1 if the tag set holds ``tag`` (as a user or system tag)."""
    return (
        "SELECT 1 FROM tagset_tags WHERE tagset_id = :ts AND tag = :tag LIMIT 1",
        {"ts": tagset_id, "tag": tag},
    )


# -- point lookups and children (one indexed statement each) ---------------------


def compile_flow_lookup(flow_id: str) -> tuple[str, Params]:
    """One flow by name (primary key seek)."""
    return "SELECT flow_id, ts_epoch FROM flows WHERE flow_id = :flow", {"flow": flow_id}


def compile_step_lookup(flow_id: str, run_number: str, step_name: str) -> tuple[str, Params]:
    """``(run_pk, tagset_id, step ts_epoch)`` of one step."""
    return (
        "SELECT r.run_pk, r.tagset_id, s.ts_epoch FROM runs r JOIN steps s "
        "ON s.run_pk = r.run_pk AND s.step_name = :step WHERE r.flow_id = :flow AND r.run_number = :run",
        {"flow": flow_id, "run": run_number, "step": step_name},
    )


def compile_task_lookup(
    flow_id: str, run_number: str, step_name: str, task_id: str
) -> tuple[str, Params]:
    """``(run_pk, tagset_id, task_pk, ts_epoch, origin_task_pk)`` of one task."""
    return (
        "SELECT r.run_pk, r.tagset_id, t.task_pk, t.ts_epoch, t.origin_task_pk FROM runs r JOIN tasks t "
        "ON t.run_pk = r.run_pk AND t.step_name = :step AND t.task_id = :task "
        "WHERE r.flow_id = :flow AND r.run_number = :run",
        {"flow": flow_id, "run": run_number, "step": step_name, "task": task_id},
    )


#: Columns of an artifact row: the task's run, the task, then the artifact record.
ARTIFACT_COLUMNS = ("run_pk", "tagset_id", "task_pk", "attempt", "sha", "type", "ts_epoch")

# An artifact row's blob (b) and type name (y).
_BLOB_JOIN = "JOIN blobs b ON b.blob_id = a.blob_id LEFT JOIN types y ON y.type_id = b.type_id"
# Metadata rows (m) with their interned entries (v).
_MD_COLS = (
    "v.field_name, v.value, v.is_json, m.ts_epoch, v.type FROM metadata m "
    "JOIN metadata_values v ON v.value_id = m.value_id"
)


def _sha_key(sha: str) -> bytes:
    """The 20-byte ``blobs.sha`` of a hex sha (b'' when malformed: matches nothing)."""
    try:
        return bytes.fromhex(sha)
    except (TypeError, ValueError):
        return b""


# The latest *done* attempt of task t (Metaflow's ``attempt-done``), or the given one.
_DONE_ATTEMPT = "coalesce(:attempt, (SELECT max(attempt) FROM attempts WHERE task_pk = t.task_pk AND ended_at IS NOT NULL))"


def compile_artifact_lookup(
    flow_id: str, run_number: str, step_name: str, task_id: str, name: str, attempt: int | None
) -> tuple[str, Params]:
    """One artifact of the latest done attempt (or of ``attempt``), as ``ARTIFACT_COLUMNS``."""
    return (
        "SELECT r.run_pk, r.tagset_id, t.task_pk, a.attempt, lower(hex(b.sha)), y.name, a.ts_epoch FROM runs r "
        "JOIN tasks t ON t.run_pk = r.run_pk AND t.step_name = :step AND t.task_id = :task "
        f"JOIN artifacts a ON a.task_pk = t.task_pk AND a.attempt = {_DONE_ATTEMPT} AND a.name = :name "
        f"{_BLOB_JOIN} WHERE r.flow_id = :flow AND r.run_number = :run",
        {
            "flow": flow_id,
            "run": run_number,
            "step": step_name,
            "task": task_id,
            "name": name,
            "attempt": attempt,
        },
    )


def compile_steps(run_pk: int) -> tuple[str, Params]:
    """Steps of a run, newest first (ties: name descending)."""
    return (
        "SELECT step_name, ts_epoch FROM steps WHERE run_pk = :run ORDER BY ts_epoch DESC, step_name DESC",
        {"run": run_pk},
    )


def compile_step(run_pk: int, step_name: str) -> tuple[str, Params]:
    """``ts_epoch`` of one step of a run."""
    return "SELECT ts_epoch FROM steps WHERE run_pk = :run AND step_name = :step", {
        "run": run_pk,
        "step": step_name,
    }


#: Columns of a task row (after the run's run_pk and tagset_id).
_TASK_COLS = "task_pk, ts_epoch, origin_task_pk, task_id"


def compile_tasks(run_pk: int, step_name: str) -> tuple[str, Params]:
    """Tasks of a step, newest first (ties: highest task id first)."""
    return (
        f"SELECT {_TASK_COLS} FROM tasks WHERE run_pk = :run AND step_name = :step "
        "ORDER BY ts_epoch DESC, CAST(task_id AS INTEGER) DESC, task_id DESC",
        {"run": run_pk, "step": step_name},
    )


def compile_task(run_pk: int, step_name: str, task_id: str) -> tuple[str, Params]:
    """One task of a step."""
    return (
        f"SELECT {_TASK_COLS} FROM tasks WHERE run_pk = :run AND step_name = :step AND task_id = :task",
        {"run": run_pk, "step": step_name, "task": task_id},
    )


def compile_done_attempt(task_pk: int) -> tuple[str, Params]:
    """The latest attempt of a task that ended (NULL if none)."""
    return (
        "SELECT max(attempt) FROM attempts WHERE task_pk = :task AND ended_at IS NOT NULL",
        {"task": task_pk},
    )


def compile_attempt(task_pk: int, attempt: int | None) -> tuple[str, Params]:
    """``(attempt, started_at, ended_at, task_ok, success)`` of one attempt, or the latest *done* one."""
    if attempt is None:
        return (
            "SELECT attempt, started_at, ended_at, task_ok, success FROM attempts "
            "WHERE task_pk = :task AND ended_at IS NOT NULL ORDER BY attempt DESC LIMIT 1",
            {"task": task_pk},
        )
    return (
        "SELECT attempt, started_at, ended_at, task_ok, success FROM attempts WHERE task_pk = :task AND attempt = :attempt",
        {"task": task_pk, "attempt": attempt},
    )


def compile_started_attempt(task_pk: int) -> tuple[str, Params]:
    """The latest *started* attempt of a task (NULL if none)."""
    return "SELECT max(attempt) FROM attempts WHERE task_pk = :task", {"task": task_pk}


def compile_artifacts(task_pk: int, attempt: int) -> tuple[str, Params]:
    """``(name, sha, type, ts_epoch)`` of an attempt's artifacts, newest first (ties: by name)."""
    return (
        f"SELECT a.name, lower(hex(b.sha)), y.name, a.ts_epoch FROM artifacts a {_BLOB_JOIN} "
        "WHERE a.task_pk = :task AND a.attempt = :attempt ORDER BY a.ts_epoch DESC, a.name",
        {"task": task_pk, "attempt": attempt},
    )


def compile_artifact(task_pk: int, attempt: int, name: str) -> tuple[str, Params]:
    """``(sha, type, ts_epoch)`` of one artifact."""
    return (
        f"SELECT lower(hex(b.sha)), y.name, a.ts_epoch FROM artifacts a {_BLOB_JOIN} "
        "WHERE a.task_pk = :task AND a.attempt = :attempt AND a.name = :name",
        {"task": task_pk, "attempt": attempt, "name": name},
    )


def compile_metadata(task_pk: int, attempt: int | None) -> tuple[str, Params]:
    """``(field_name, value, is_json, ts_epoch, type)`` of a task's metadata (all attempts, or one)."""
    if attempt is None:
        return (
            f"SELECT {_MD_COLS} WHERE m.task_pk = :task AND v.type != 'mfstore-file' "
            "ORDER BY m.metadata_pk",
            {"task": task_pk},
        )
    return (
        f"SELECT {_MD_COLS} WHERE m.task_pk = :task AND m.attempt = :attempt "
        "AND v.type != 'mfstore-file' ORDER BY m.metadata_pk",
        {"task": task_pk, "attempt": attempt},
    )


def compile_artifact_refs(task_pk: int, attempt: int) -> tuple[str, Params]:
    """``(name, sha, type, value_json)`` of an attempt's artifacts (resume clones them)."""
    return (
        f"SELECT a.name, lower(hex(b.sha)), y.name, b.value_json FROM artifacts a {_BLOB_JOIN} "
        "WHERE a.task_pk = :task AND a.attempt = :attempt",
        {"task": task_pk, "attempt": attempt},
    )


def compile_task_metadata_value(task_pk: int, field_name: str) -> tuple[str, Params]:
    """The newest value of one metadata field of a task (NULL if none)."""
    return (
        "SELECT v.value FROM metadata m JOIN metadata_values v ON v.value_id = m.value_id "
        "WHERE m.task_pk = :task AND v.field_name = :field ORDER BY m.ts_epoch DESC, m.metadata_pk DESC LIMIT 1",
        {"task": task_pk, "field": field_name},
    )


def compile_log_lines(task_pk: int, attempt: int, stream: str) -> tuple[str, Params]:
    """``(ts_us, line)`` of one log stream of one attempt, merged over sources by time."""
    return (
        "SELECT ts_us, line FROM log_lines WHERE task_pk = :task AND attempt = :attempt AND stream = :stream "
        "ORDER BY ts_us, line_pk",
        {"task": task_pk, "attempt": attempt, "stream": stream},
    )


def compile_log_size(task_pk: int, attempt: int, stream: str) -> tuple[str, Params]:
    """Bytes of the log text (UTF-8, one newline per line)."""
    return (
        "SELECT coalesce(sum(length(CAST(line AS BLOB)) + 1), 0) FROM log_lines "
        "WHERE task_pk = :task AND attempt = :attempt AND stream = :stream",
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
    """``(tag, is_system)`` of one tag set."""
    return "SELECT tag, is_system FROM tagset_tags WHERE tagset_id = :ts", {"ts": tagset_id}


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
    return "SELECT size FROM blobs WHERE sha = :sha", {"sha": _sha_key(sha)}


#: How many of the newest runs the first page of a run query examines.
LATEST_WINDOW = 64


def compile_window_bound(
    flow_id: str, *, successful: bool = False, window: int = LATEST_WINDOW
) -> tuple[str, Params]:
    """``(ts_epoch, run_number)`` of the ``window``-th newest run (no row: fewer runs)."""
    ok = " AND status = 'successful'" if successful else ""
    return (
        f"SELECT ts_epoch, run_number FROM runs WHERE flow_id = :flow{ok} "
        "ORDER BY ts_epoch DESC, run_number DESC LIMIT 1 OFFSET :skip",
        {"flow": flow_id, "skip": window - 1},
    )


def compile_window(
    flow_id: str,
    tags: Sequence[str],
    *,
    successful: bool = False,
    bound: tuple[int, str] | None = None,
    first: bool = False,
) -> tuple[str, Params]:
    """Runs carrying all ``tags`` among the newest runs (those at or after ``bound``), newest first.

    Walks ``runs_by_time`` (``runs_ok_by_time``) backwards from the newest run, one
    primary-key seek per tag per run, never past ``bound`` (``compile_window_bound``):
    a common filter is answered after a few rows. The runs older than ``bound`` come
    from ``compile_runs(..., before=bound)``, one seek per matching tag set - few
    exactly when the filter is rare.
    """
    params: Params = {"flow": flow_id}
    clauses = ["r.flow_id = :flow"]
    if successful:
        clauses.append("r.status = 'successful'")
    if bound is not None:
        params["bts"], params["brn"] = bound
        clauses.append("r.ts_epoch >= :bts AND (r.ts_epoch > :bts OR r.run_number >= :brn)")
    for i, tag in enumerate(tags):
        params[f"p{i}"] = tag
        clauses.append(
            f"EXISTS (SELECT 1 FROM tagset_tags t{i} WHERE t{i}.flow_id = :flow AND t{i}.tag = :p{i} "
            f"AND t{i}.tagset_id = r.tagset_id)"
        )
    sql = "SELECT {} FROM runs r WHERE {} {}".format(_RUN_COLS, " AND ".join(clauses), _ORDER)
    return (sql + " LIMIT 1" if first else sql), params


# -- the web UI (mfstore/ui): one statement per page part, never a scan of all runs ------


def compile_flow_names() -> tuple[str, Params]:
    """Every flow name, sorted."""
    return "SELECT flow_id FROM flows ORDER BY flow_id", {}


def compile_flow_run_count(flow_id: str) -> tuple[str, Params]:
    """Number of runs of a flow (walks the flow's part of ``runs_by_time``; cache it)."""
    return "SELECT count(*) FROM runs WHERE flow_id = :flow", {"flow": flow_id}


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
    params: Params = {f"p{i}": pk for i, pk in enumerate(run_pks)}
    names = ", ".join(":" + k for k in params) or "NULL"
    return (
        "SELECT t.run_pk, a.name, y.name, b.value_json FROM tasks t "
        f"JOIN artifacts a ON a.task_pk = t.task_pk {_BLOB_JOIN} "
        f"WHERE t.run_pk IN ({names}) AND t.step_name = '_parameters' AND substr(a.name, 1, 1) != '_' "
        "AND a.name != 'name' "
        "ORDER BY t.run_pk, a.name",
        params,
    )


def compile_run_task_attempts(
    run_pk: int, step_name: str | None = None, task_id: str | None = None, *, limit: int = 5000
) -> tuple[str, Params]:
    """``(step_name, task_id, task_pk, ts_epoch, origin_task_pk, attempt, started_at,
    ended_at, task_ok, success)``: every task of a run (or of one step, or one task) with
    each of its attempts (NULLs for a task without one), in scheduling order."""
    params: Params = {"run": run_pk, "lim": limit}
    where = "t.run_pk = :run"
    if step_name is not None:
        params["step"] = step_name
        where += " AND t.step_name = :step"
    if task_id is not None:
        params["task"] = task_id
        where += " AND t.task_id = :task"
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
    for i, step in enumerate(steps):
        params[f"s{i}"] = step
    names = ", ".join(f":s{i}" for i in range(len(steps))) or "NULL"
    return (
        "SELECT b.value_json FROM tasks t JOIN artifacts a ON a.task_pk = t.task_pk AND a.name = :name "
        f"JOIN blobs b ON b.blob_id = a.blob_id WHERE t.run_pk = :run AND t.step_name IN ({names}) ORDER BY t.task_pk, a.attempt DESC LIMIT 1",
        params,
    )


def compile_attempt_artifacts(task_pk: int, attempt: int) -> tuple[str, Params]:
    """``(name, type, sha, size, value_json)`` of one attempt's artifacts, by name."""
    return (
        "SELECT a.name, y.name, lower(hex(b.sha)), b.size, b.value_json FROM artifacts a "
        f"{_BLOB_JOIN} WHERE a.task_pk = :task AND a.attempt = :attempt "
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
        "SELECT ts_us, line_pk, source, line FROM log_lines WHERE task_pk = :task AND attempt = :attempt "
        f"AND stream = :stream{keyset} ORDER BY ts_us, line_pk LIMIT :lim",
        params,
    )


def compile_log_count(task_pk: int, attempt: int, stream: str) -> tuple[str, Params]:
    """Number of log lines of one stream of one attempt."""
    return (
        "SELECT count(*) FROM log_lines WHERE task_pk = :task AND attempt = :attempt AND stream = :stream",
        {"task": task_pk, "attempt": attempt, "stream": stream},
    )


def compile_window_end(
    flow_id: str, *, before: tuple[int, str] | None, scan: int
) -> tuple[str, Params]:
    """``(ts_epoch, run_number)`` of the ``scan``-th newest run older than ``before``
    (no row: fewer runs are left), where a bounded search continues."""
    params: Params = {"flow": flow_id, "skip": scan - 1}
    keyset = ""
    if before is not None:
        params["bts"], params["brn"] = before
        keyset = " AND (ts_epoch < :bts OR (ts_epoch = :bts AND run_number < :brn))"
    return (
        f"SELECT ts_epoch, run_number FROM runs WHERE flow_id = :flow{keyset} "
        "ORDER BY ts_epoch DESC, run_number DESC LIMIT 1 OFFSET :skip",
        params,
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
        keyset = " AND (ts_epoch < :bts OR (ts_epoch = :bts AND run_number < :brn))"
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
        "SELECT m.metadata_pk, m.attempt, v.field_name FROM metadata m "
        "JOIN metadata_values v ON v.value_id = m.value_id WHERE m.task_pk = :task "
        "AND v.type = 'mfstore-file' AND v.field_name LIKE '%.html' ORDER BY m.metadata_pk",
        {"task": task_pk},
    )


def compile_card(metadata_pk: int) -> tuple[str, Params]:
    """``(field_name, value)`` of one card file (``value``: JSON ``{"text"|"sha": ...}``)."""
    return (
        "SELECT v.field_name, v.value FROM metadata m JOIN metadata_values v ON v.value_id = m.value_id "
        "WHERE m.metadata_pk = :pk AND v.type = 'mfstore-file' AND v.field_name LIKE '%.html'",
        {"pk": metadata_pk},
    )


# -- command-line listings (mfstore runs / show) --------------------------------------


def compile_run_count(flow_id: str, tags: Sequence[str] = ()) -> tuple[str, Params]:
    """Number of runs of ``flow_id`` carrying all ``tags``: an index-only count (the
    flow's ``runs_by_time`` range, or one ``runs_by_tagset`` range per matching tag set)."""
    if not tags:
        return "SELECT count(*) FROM runs WHERE flow_id = :flow", {"flow": flow_id}
    params: Params = {"flow": flow_id}
    matching = _matching_tagsets(tags, params)
    return (
        f"WITH m(tagset_id) AS ({matching}) SELECT count(*) FROM m CROSS JOIN runs r "
        "ON r.flow_id = :flow AND r.tagset_id = m.tagset_id",
        params,
    )


def _iso(column: str) -> str:
    return f"strftime('%Y-%m-%dT%H:%M:%fZ', {column} / 1000.0, 'unixepoch')"


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
        f"SELECT q.run_number, q.status, q.user_name, {_iso('q.ts_epoch')}, {_iso('q.finished_at')}, "
        f"(q.finished_at - q.ts_epoch) / 1000.0, q.tagset_id FROM ({inner}) q "
        "ORDER BY q.ts_epoch DESC, q.run_number DESC",
        params,
    )


def compile_flow_summaries() -> tuple[str, Params]:
    """``(flow, created_ms, runs, last_run_ms)`` of every flow, by name (index-only counts)."""
    return (
        "SELECT f.flow_id, f.ts_epoch, (SELECT count(*) FROM runs r WHERE r.flow_id = f.flow_id), "
        "(SELECT max(r.ts_epoch) FROM runs r WHERE r.flow_id = f.flow_id) FROM flows f ORDER BY f.flow_id",
        {},
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
    params: Params = {f"t{i}": pk for i, pk in enumerate(task_pks)}
    names = ", ".join(":" + k for k in params) or "NULL"
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
    where = "r.flow_id = :flow AND r.run_number = :run"
    if step is not None:
        params["step"] = step
        where += " AND t.step_name = :step"
    if task_id is not None:
        params["task"] = task_id
        where += " AND t.task_id = :task"
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
    where = "r.flow_id = :flow AND r.run_number = :run"
    if step is not None:
        params["step"] = step
        where += " AND t.step_name = :step"
    if task_id is not None:
        params["task"] = task_id
        where += " AND t.task_id = :task"
    return (
        f"SELECT t.task_pk FROM runs r JOIN tasks t ON t.run_pk = r.run_pk WHERE {where}",
        params,
    )


# -- the Metaflow extension (Metaflow's metadata provider and datastore) ---------


def compile_task_metadata(task_pk: int) -> tuple[str, Params]:
    """``(field_name, value, is_json, ts_epoch, type, attempt)`` of a task's metadata in
    recording order, without the rows that keep task files (``compile_task_files``)."""
    return (
        "SELECT v.field_name, v.value, v.is_json, m.ts_epoch, v.type, m.attempt FROM metadata m "
        "JOIN metadata_values v ON v.value_id = m.value_id "
        "WHERE m.task_pk = :task AND v.type != 'mfstore-file' ORDER BY m.metadata_pk",
        {"task": task_pk},
    )


def compile_task_files(task_pk: int) -> tuple[str, Params]:
    """``(attempt, name, reference)`` of the Metaflow task files kept with a task."""
    return (
        "SELECT m.attempt, v.field_name, v.value FROM metadata m "
        "JOIN metadata_values v ON v.value_id = m.value_id WHERE m.task_pk = :task "
        "AND v.type = 'mfstore-file' ORDER BY m.metadata_pk",
        {"task": task_pk},
    )


def compile_task_attempts(task_pk: int) -> tuple[str, Params]:
    """``(attempt, started_at, ended_at, task_ok, success)`` of every attempt of a task."""
    return (
        "SELECT attempt, started_at, ended_at, task_ok, success FROM attempts "
        "WHERE task_pk = :task ORDER BY attempt",
        {"task": task_pk},
    )


def compile_log_source_lines(
    task_pk: int, attempt: int, stream: str, source: str
) -> tuple[str, Params]:
    """``(ts_us, line)`` of one source's log of one attempt, in order."""
    return (
        "SELECT ts_us, line FROM log_lines WHERE task_pk = :task AND attempt = :attempt "
        "AND stream = :stream AND source = :source ORDER BY ts_us, line_pk",
        {"task": task_pk, "attempt": attempt, "stream": stream, "source": source},
    )


def compile_log_sources(task_pk: int) -> tuple[str, Params]:
    """Distinct ``(attempt, stream, source)`` that have log lines for a task."""
    return (
        "SELECT DISTINCT attempt, stream, source FROM log_lines WHERE task_pk = :task",
        {"task": task_pk},
    )


def compile_artifact_by_sha(sha: str) -> tuple[str, Params]:
    """``(type, value_json)`` some artifact with blob ``sha`` was recorded with."""
    return (
        "SELECT y.name, b.value_json FROM blobs b JOIN types y ON y.type_id = b.type_id "
        "WHERE b.sha = :sha",
        {"sha": _sha_key(sha)},
    )


def compile_max_task_id(run_pk: int) -> tuple[str, Params]:
    """The largest numeric task id of a run (NULL when the run has no task)."""
    return (
        "SELECT max(CAST(task_id AS INTEGER)) FROM tasks WHERE run_pk = :run",
        {"run": run_pk},
    )


# -- batched navigation: one statement for all tasks of a step / all flows --------
# (Step.finished_at, Step.control_tasks(), [t[name] for t in step], Metaflow().flows)


def compile_flow_rows(namespace: str | None) -> tuple[str, Params]:
    """``(flow_id, ts_epoch)`` of the flows (sorted) with a run in ``namespace`` (all if None)."""
    names, params = compile_flows(namespace)
    return (
        f"SELECT f.flow_id, f.ts_epoch FROM flows f WHERE f.flow_id IN ({names}) ORDER BY f.flow_id",
        params,
    )


def compile_step_finished(run_pk: int, step_name: str) -> tuple[str, Params]:
    """``(tasks, tasks with a done attempt, latest ended_at of those attempts)`` of a step."""
    return (
        "SELECT count(*), count(d.ended_at), max(d.ended_at) FROM tasks t LEFT JOIN attempts d "
        "ON d.task_pk = t.task_pk AND d.attempt = (SELECT max(attempt) FROM attempts "
        "WHERE task_pk = t.task_pk AND ended_at IS NOT NULL) "
        "WHERE t.run_pk = :run AND t.step_name = :step",
        {"run": run_pk, "step": step_name},
    )


def _has_metadata(task: str, field_name: str, value: str) -> str:
    """SQL: task ``task`` has metadata ``field_name`` equal to ``value`` (plain or JSON)."""
    return (
        "EXISTS (SELECT 1 FROM metadata m JOIN metadata_values v ON v.value_id = m.value_id "
        f"WHERE m.task_pk = {task} AND v.field_name = {field_name} AND v.type != 'mfstore-file' "
        f"AND CASE WHEN v.is_json THEN json_valid(v.value) AND json_type(v.value) = 'text' "
        f"AND json_extract(v.value, '$') = {value} ELSE v.value = {value} END)"
    )


def compile_tasks_with_value(
    run_pk: int, step_name: str, field_name: str, value: str
) -> tuple[str, Params]:
    """Tasks of a step (``compile_tasks`` columns and order) whose metadata ``field_name``
    is ``value``; a resumed clone without the field has its origin's."""
    own = _has_metadata("t.task_pk", ":field", ":value")
    origin = _has_metadata("t.origin_task_pk", ":field", ":value")
    lacks = (
        "NOT EXISTS (SELECT 1 FROM metadata m JOIN metadata_values v ON v.value_id = m.value_id "
        "WHERE m.task_pk = t.task_pk AND v.field_name = :field AND v.type != 'mfstore-file')"
    )
    return (
        f"SELECT {_TASK_COLS} FROM tasks t WHERE t.run_pk = :run AND t.step_name = :step "
        f"AND ({own} OR (t.origin_task_pk IS NOT NULL AND {lacks} AND {origin})) "
        "ORDER BY t.ts_epoch DESC, CAST(t.task_id AS INTEGER) DESC, t.task_id DESC",
        {"run": run_pk, "step": step_name, "field": field_name, "value": value},
    )


#: Columns of ``compile_group_artifacts``.
GROUP_ARTIFACT_COLUMNS = ("task_pk", "attempt", "sha", "type", "ts_epoch", "blob_id", "stored")


def compile_group_artifacts(task_pks: Sequence[int], name: str) -> tuple[str, Params]:
    """Artifact ``name`` of the latest done attempt of each task, as ``GROUP_ARTIFACT_COLUMNS``
    (``stored``: bytes of the blob's first chunk; NULL when chunked). One row per task:
    ``attempt`` NULL when no attempt is done, ``sha`` NULL when that attempt lacks ``name``."""
    import json

    return (
        "WITH g(task_pk) AS (SELECT value FROM json_each(:pks)), "
        "d(task_pk, attempt) AS (SELECT g.task_pk, (SELECT max(attempt) FROM attempts "
        "WHERE task_pk = g.task_pk AND ended_at IS NOT NULL) FROM g) "
        "SELECT d.task_pk, d.attempt, CASE WHEN b.sha IS NOT NULL THEN lower(hex(b.sha)) END, "
        "y.name, a.ts_epoch, b.blob_id, "
        "CASE WHEN b.chunks = 1 THEN length(b.data) END FROM d "
        "LEFT JOIN artifacts a ON a.task_pk = d.task_pk AND a.attempt = d.attempt AND a.name = :name "
        "LEFT JOIN blobs b ON b.blob_id = a.blob_id LEFT JOIN types y ON y.type_id = b.type_id",
        {"pks": json.dumps([int(pk) for pk in task_pks]), "name": name},
    )


def compile_flow_run_tags(flow_id: str) -> tuple[str, Params]:
    """``(run_pk, run_number, tag, is_system)`` of every run of a flow, newest run first
    (one row per tag; ``tag`` NULL for a run without tags)."""
    return (
        "SELECT r.run_pk, r.run_number, t.tag, t.is_system FROM runs r "
        "LEFT JOIN tagset_tags t ON t.tagset_id = r.tagset_id WHERE r.flow_id = :flow "
        "ORDER BY r.ts_epoch DESC, r.run_number DESC, r.run_pk",
        {"flow": flow_id},
    )

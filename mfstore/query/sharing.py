"""Reads of the sharing commands (select, digest, copy, delete) and the importer: whole
runs with every row they own. Pure: returns SQL + parameters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

from .common import (
    ARTIFACT_TASK_RUN,
    BLOB_JOIN,
    RAW_ARTIFACT_TS,
    RAW_ARTIFACTS,
    RAW_METADATA_JOIN,
    Params,
)
from .runs import RunFields


def compile_select_runs(
    flow: str | None,
    tags: Sequence[str],
    since: int | None,
    before: int | None,
    runs: Sequence[Sequence[str]],
) -> tuple[str, Params]:
    """``run_pk`` of the runs of ``flow`` carrying every tag in ``tags``, created in
    ``[since, before)``, and (if ``runs`` is given) matching one of its ``(flow,)`` or
    ``(flow, run_number)`` keys; oldest first."""
    where: list[str] = []
    params: Params = {}
    if flow:
        where.append("r.flow_id = :flow")
        params["flow"] = flow
    for i, tag in enumerate(tags):
        where.append(
            f"EXISTS (SELECT 1 FROM tagset_tags t WHERE t.tagset_id = r.tagset_id AND t.tag = :t{i})"
        )
        params[f"t{i}"] = tag
    if since is not None:
        where.append("r.ts_epoch >= :since")
        params["since"] = since
    if before is not None:
        where.append("r.ts_epoch < :before")
        params["before"] = before
    if runs:
        ors = []
        for i, key in enumerate(runs):
            params[f"f{i}"] = key[0]
            if len(key) == 1:
                ors.append(f"r.flow_id = :f{i}")
            else:
                ors.append(f"(r.flow_id = :f{i} AND r.run_number = :r{i})")
                params[f"r{i}"] = key[1]
        where.append("(" + " OR ".join(ors) + ")")
    sql = "SELECT r.run_pk FROM runs r" + (" WHERE " + " AND ".join(where) if where else "")
    return sql + " ORDER BY r.ts_epoch, r.run_number", params


# -- content digests: one statement per part of a run ----------------------------------

# The task (step/task_id) a row of table alias ``{t}`` belongs to.
_TASK_KEY = "(SELECT step_name || '/' || task_id FROM tasks x WHERE x.task_pk = {t}.task_pk)"
_ORIGIN = (
    "(SELECT r2.flow_id || '/' || r2.run_number || '/' || o.step_name || '/' || o.task_id "
    "FROM tasks o JOIN runs r2 ON r2.run_pk = o.run_pk WHERE o.task_pk = t.origin_task_pk)"
)


def compile_run_digest_parts(run_pk: int) -> dict[str, tuple[str, Params]]:
    """One statement per part of a run's content (everything but user tags and tag
    events), rows in a fixed order; ``system_tags`` rows are ``(tag,)``."""
    run = {"run": run_pk}
    return {
        "run": (RunFields.CONTENT.by_pk, run),
        "system_tags": (
            "SELECT tt.tag FROM runs r JOIN tagset_tags tt ON tt.tagset_id = r.tagset_id "
            "WHERE r.run_pk = :run AND tt.is_system = 1 ORDER BY tt.tag",
            run,
        ),
        "steps": (
            "SELECT step_name, ts_epoch FROM steps WHERE run_pk = :run ORDER BY step_name",
            run,
        ),
        "tasks": (
            f"SELECT t.step_name, t.task_id, t.ts_epoch, {_ORIGIN} FROM tasks t WHERE t.run_pk = :run "
            "ORDER BY t.step_name, t.task_id",
            run,
        ),
        "attempts": (
            f"SELECT {_TASK_KEY.format(t='a')}, a.attempt, a.started_at, a.ended_at, a.task_ok, "
            "a.success FROM attempts a JOIN tasks t ON t.task_pk = a.task_pk WHERE t.run_pk = :run "
            "ORDER BY 1, 2",
            run,
        ),
        "artifacts": (
            f"SELECT {_TASK_KEY.format(t='a')}, a.attempt, an.name, lower(hex(b.sha)), y.name, "
            f"{RAW_ARTIFACT_TS} FROM {RAW_ARTIFACTS} JOIN tasks t ON t.task_pk = a.task_pk {BLOB_JOIN} "
            "WHERE t.run_pk = :run ORDER BY 1, 2, 3",
            run,
        ),
        "metadata": (
            f"SELECT {_TASK_KEY.format(t='m')}, m.attempt, vf.field_name, v.value, v.is_json, vf.type, "
            f"m.ts_epoch FROM metadata m {RAW_METADATA_JOIN} "
            "JOIN tasks t ON t.task_pk = m.task_pk WHERE t.run_pk = :run ORDER BY 1, 2, 3, 7, 4, 6",
            run,
        ),
        "logs": (
            f"SELECT {_TASK_KEY.format(t='l')}, l.attempt, l.stream, l.source, l.ts_us, l.line "
            "FROM log_lines l JOIN tasks t ON t.task_pk = l.task_pk WHERE t.run_pk = :run "
            "ORDER BY 1, 2, 3, 5, l.line_pk",
            run,
        ),
        "triggers": (
            "SELECT name, event_id, type, ts_epoch, pathspec, payload FROM trigger_events "
            "WHERE run_pk = :run ORDER BY ts_epoch, event_id",
            run,
        ),
    }


# -- copying a run row by row (copy_runs) -----------------------------------------------

#: Rows copied with their run or task: table -> (the owner's key column, the columns each
#: copied row gives, in order, and the order they are read in: "" for the table's own).
#: ``writer.copy.insert_child_rows`` writes them; ``compile_child_rows`` reads the plain ones.
CHILD_ROWS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "tag_events": ("run_pk", ("ts_epoch", "user_name", "removed", "added"), "ts_epoch, event_pk"),
    "steps": ("run_pk", ("step_name", "ts_epoch"), ""),
    "trigger_events": (
        "run_pk",
        ("name", "event_id", "type", "ts_epoch", "pathspec", "payload"),
        "trigger_pk",
    ),
    "attempts": ("task_pk", ("attempt", "started_at", "ended_at", "task_ok", "success"), "attempt"),
    # (through task_artifacts: the name interned, a time equal to the attempt's end NULL)
    "artifacts": ("task_pk", ("attempt", "name", "blob_id", "ts_epoch"), ""),
    "log_lines": ("task_pk", ("attempt", "stream", "source", "ts_us", "line"), "line_pk"),
}

#: The child tables whose rows are read as they are stored (``compile_child_rows``: a
#: run's tag events in order, a task's attempts by number ...); artifacts have their own
#: read.
PlainChild = Literal["tag_events", "steps", "trigger_events", "attempts", "log_lines"]


def _child_rows_sql(table: str) -> str:
    owner, columns, order = CHILD_ROWS[table]
    sql = f"SELECT {', '.join(columns)} FROM {table} WHERE {owner} = :owner"
    return sql + f" ORDER BY {order}" if order else sql


#: ``compile_child_rows``' statements, built once (a copy reads them for every task).
_CHILD_ROWS_SQL = {table: _child_rows_sql(table) for table in CHILD_ROWS if table != "artifacts"}


def compile_child_rows(table: PlainChild, owner_pk: int) -> tuple[str, Params]:
    """The ``CHILD_ROWS`` columns of the rows of ``table`` that belong to the run or task
    ``owner_pk``, in the table's copy order."""
    return _CHILD_ROWS_SQL[table], {"owner": owner_pk}


#: ``run_pk`` of every run, oldest first.
ALL_RUNS: Final = "SELECT run_pk FROM runs ORDER BY ts_epoch, run_number"


def compile_last_tag_event(run_pk: int) -> tuple[str, Params]:
    """``ts_epoch`` of a run's newest tag event (NULL: none)."""
    return "SELECT max(ts_epoch) FROM tag_events WHERE run_pk = :run", {"run": run_pk}


def compile_run_task_rows(run_pk: int) -> tuple[str, Params]:
    """``(task_pk, step_name, task_id, ts_epoch, origin_task_pk)`` of a run's tasks."""
    return (
        "SELECT task_pk, step_name, task_id, ts_epoch, origin_task_pk FROM tasks WHERE run_pk = :run "
        "ORDER BY task_pk",
        {"run": run_pk},
    )


def compile_artifact_rows(task_pk: int) -> tuple[str, Params]:
    """``(attempt, name, sha, ts_epoch)`` of a task's artifacts."""
    return (
        f"SELECT a.attempt, an.name, lower(hex(b.sha)), {RAW_ARTIFACT_TS} FROM {RAW_ARTIFACTS} "
        "JOIN blobs b ON b.blob_id = a.blob_id WHERE a.task_pk = :task",
        {"task": task_pk},
    )


def compile_metadata_rows(task_pk: int) -> tuple[str, Params]:
    """``(attempt, ts_epoch, field_name, type, is_json, value)`` of a task's metadata, in
    recording order."""
    return (
        "SELECT m.attempt, m.ts_epoch, vf.field_name, vf.type, v.is_json, v.value FROM metadata m "
        f"{RAW_METADATA_JOIN} WHERE m.task_pk = :task "
        "ORDER BY m.metadata_pk",
        {"task": task_pk},
    )


# -- what merge and delete check first (``mfstore.guards``) --------------------------------


def compile_run_keys_of(run_pks: Sequence[int]) -> tuple[str, Params]:
    """``(flow_id, run_number)`` of the runs ``run_pks`` (inlined integers: any number)."""
    pks = ",".join(str(int(pk)) for pk in run_pks)
    return f"SELECT flow_id, run_number FROM runs WHERE run_pk IN ({pks})", {}


def compile_run_attempt_starts(run_pk: int) -> tuple[str, Params]:
    """``(started_at,)`` of every attempt of a run's tasks."""
    return (
        "SELECT a.started_at FROM attempts a JOIN tasks t ON t.task_pk = a.task_pk "
        "WHERE t.run_pk = :run",
        {"run": run_pk},
    )


def compile_run_artifact_shas(run_pk: int) -> tuple[str, Params]:
    """``(sha or NULL when the blob is missing, step_name, task_id, name)`` of a run's
    artifacts."""
    return (
        "SELECT lower(hex(b.sha)), t.step_name, t.task_id, a.name FROM artifacts a "
        "JOIN tasks t ON t.task_pk = a.task_pk "
        "LEFT JOIN blobs b ON b.blob_id = a.blob_id WHERE t.run_pk = :run",
        {"run": run_pk},
    )


def compile_run_last_activity(run_pk: int) -> tuple[str, Params]:
    """``(newest attempt start or end, newest log line)`` of a run in epoch ms (each NULL:
    none)."""
    return (
        "SELECT (SELECT max(coalesce(a.ended_at, a.started_at)) FROM attempts a "
        "JOIN tasks t ON t.task_pk = a.task_pk WHERE t.run_pk = :run), "
        "(SELECT max(l.ts_us) / 1000 FROM log_lines l JOIN tasks t ON t.task_pk = l.task_pk "
        "WHERE t.run_pk = :run)",
        {"run": run_pk},
    )


# -- garbage collection -------------------------------------------------------------------

#: Blobs no artifact and no code package references.
UNUSED_BLOBS = (
    "blob_id NOT IN (SELECT blob_id FROM task_artifacts) "
    "AND lower(hex(sha)) NOT IN (SELECT sha FROM code_packages)"
)


#: Number of blobs no artifact or code package references.
UNUSED_BLOB_COUNT: Final = "SELECT count(*) FROM blobs WHERE " + UNUSED_BLOBS


# -- verify and stats ----------------------------------------------------------------------

#: ``(flow_id, run_number, step_name, task_id, attempt, name, blob_id)`` of artifacts
#: whose blob is missing.
ARTIFACTS_MISSING_BLOBS: Final = (
    "SELECT r.flow_id, r.run_number, t.step_name, t.task_id, a.attempt, a.name, a.blob_id "
    "FROM artifacts a JOIN tasks t ON t.task_pk = a.task_pk LEFT JOIN runs r ON r.run_pk = t.run_pk "
    "WHERE a.blob_id NOT IN (SELECT blob_id FROM blobs)"
)
#: ``(task_pk, step_name, task_id, run_pk)`` of tasks whose run is missing.
TASKS_MISSING_RUNS: Final = (
    "SELECT task_pk, step_name, task_id, run_pk FROM tasks "
    "WHERE run_pk NOT IN (SELECT run_pk FROM runs)"
)
#: ``(flow_id, run_number)`` of runs whose tag set is missing.
RUNS_MISSING_TAGSETS: Final = (
    "SELECT flow_id, run_number FROM runs WHERE tagset_id NOT IN (SELECT tagset_id FROM tagsets)"
)
#: ``(code_sha,)`` of code packages whose blob is missing.
CODE_MISSING_BLOBS: Final = (
    "SELECT code_sha FROM runs WHERE code_sha IS NOT NULL "
    "AND code_sha NOT IN (SELECT lower(hex(sha)) FROM blobs)"
)


def compile_blob_user(sha: str) -> tuple[str, Params]:
    """The pathspec of an artifact that uses blob ``sha`` (no row: none)."""
    return (
        "SELECT r.flow_id || '/' || r.run_number || '/' || t.step_name || '/' || t.task_id || '/' || a.name "
        f"FROM {ARTIFACT_TASK_RUN} WHERE a.blob_id = (SELECT blob_id FROM blobs WHERE lower(hex(sha)) = :sha) LIMIT 1",
        {"sha": sha},
    )


#: ``(flow_id, runs, successful, failed, running)`` per flow.
FLOW_RUN_STATS: Final = (
    "SELECT flow_id, count(*), sum(status = 'successful'), sum(status = 'failed'), "
    "sum(status = 'running') FROM runs GROUP BY flow_id ORDER BY flow_id"
)
#: ``(flow_id, tasks)`` per flow.
FLOW_TASK_COUNTS: Final = (
    "SELECT r.flow_id, count(*) FROM tasks t JOIN runs r ON r.run_pk = t.run_pk GROUP BY r.flow_id"
)
#: ``(flow_id, artifacts, their raw bytes)`` per flow.
FLOW_ARTIFACT_STATS: Final = (
    f"SELECT r.flow_id, count(*), coalesce(sum(b.size), 0) FROM {ARTIFACT_TASK_RUN} "
    "LEFT JOIN blobs b ON b.blob_id = a.blob_id GROUP BY r.flow_id"
)
#: ``(blobs, their raw bytes, their stored bytes, raw bytes of every artifact)`` of the
#: file (one row): an artifact's blob counts once per use in the last.
BLOB_TOTALS: Final = (
    "SELECT count(*), coalesce(sum(size), 0), coalesce(sum(stored_size), 0), "
    "(SELECT coalesce(sum(b.size), 0) FROM artifacts a JOIN blobs b ON b.blob_id = a.blob_id) "
    "FROM blobs"
)
#: Number of log lines in the file.
LOG_LINE_COUNT: Final = "SELECT count(*) FROM log_lines"

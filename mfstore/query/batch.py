"""Batched navigation reads: one statement for all tasks of a step or all
runs of a flow (``Step.finished_at``, ``Step.control_tasks()``, ``[t[name] for t in
step]``, ``python flow.py tag list``; ``Metaflow().flows`` is ``compile_flows``). Pure."""

from __future__ import annotations

import json
from collections.abc import Sequence

from .common import METADATA_JOIN, RAW_ARTIFACT_TS, Params, done_attempt

#: ``compile_tasks``' columns, for task rows read here.
_TASK_COLUMNS = "t.task_pk, t.ts_epoch, t.origin_task_pk, t.task_id"


_STEP_FINISHED = (
    "SELECT count(*), count(d.ended_at), max(d.ended_at) FROM tasks t LEFT JOIN attempts d "
    f"ON d.task_pk = t.task_pk AND d.attempt = ({done_attempt('t.task_pk')}) "
    "WHERE t.run_pk = :run AND t.step_name = :step"
)


def compile_step_finished(run_pk: int, step_name: str) -> tuple[str, Params]:
    """``(tasks, tasks with a done attempt, latest ended_at of those attempts)`` of a step."""
    return _STEP_FINISHED, {"run": run_pk, "step": step_name}


def _has_metadata(task: str) -> str:
    """SQL: task ``task`` has metadata ``:field`` equal to ``:value`` (plain or JSON)."""
    return (
        f"EXISTS (SELECT 1 FROM {METADATA_JOIN} "
        f"WHERE m.task_pk = {task} AND v.field_name = :field AND v.type != 'mfstore-file' "
        "AND CASE WHEN v.is_json THEN json_valid(v.value) AND json_type(v.value) = 'text' "
        "AND json_extract(v.value, '$') = :value ELSE v.value = :value END)"
    )


_TASKS_WITH_VALUE = (
    f"SELECT {_TASK_COLUMNS} FROM tasks t WHERE t.run_pk = :run AND t.step_name = :step "
    f"AND ({_has_metadata('t.task_pk')} OR (t.origin_task_pk IS NOT NULL "
    f"AND NOT EXISTS (SELECT 1 FROM {METADATA_JOIN} WHERE m.task_pk = t.task_pk "
    "AND v.field_name = :field AND v.type != 'mfstore-file') "
    f"AND {_has_metadata('t.origin_task_pk')})) "
    "ORDER BY t.ts_epoch DESC, CAST(t.task_id AS INTEGER) DESC, t.task_id DESC"
)


def compile_tasks_with_value(
    run_pk: int, step_name: str, field_name: str, value: str
) -> tuple[str, Params]:
    """Tasks of a step (``compile_tasks`` columns and order) whose metadata ``field_name``
    is ``value``; a resumed clone without the field has its origin's."""
    return _TASKS_WITH_VALUE, {
        "run": run_pk,
        "step": step_name,
        "field": field_name,
        "value": value,
    }


# The tasks ``:pks`` (a JSON array of ``task_pk``) as ``g``, and each one's latest done
# attempt (NULL: none) as ``d``.
_DONE_ATTEMPTS = (
    "WITH g(task_pk) AS (SELECT value FROM json_each(:pks)), "
    f"d(task_pk, attempt) AS (SELECT g.task_pk, ({done_attempt('g.task_pk')}) FROM g) "
)

#: Columns of ``compile_group_artifacts``.
GROUP_ARTIFACT_COLUMNS = ("task_pk", "attempt", "sha", "type", "ts_epoch", "blob_id", "stored")


def compile_group_artifacts(task_pks: Sequence[int], name: str) -> tuple[str, Params]:
    """Artifact ``name`` of the latest done attempt of each task, as ``GROUP_ARTIFACT_COLUMNS``
    (``stored``: bytes of the blob's first chunk; NULL when chunked). One row per task:
    ``attempt`` NULL when no attempt is done, ``sha`` NULL when that attempt lacks ``name``."""
    return (
        f"{_DONE_ATTEMPTS}SELECT d.task_pk, d.attempt, CASE WHEN b.sha IS NOT NULL THEN lower(hex(b.sha)) END, "
        f"y.name, {RAW_ARTIFACT_TS}, b.blob_id, "
        "CASE WHEN b.chunks = 1 THEN length(b.data) END FROM d "
        # Raw tables: a view of a join on the right of a LEFT JOIN is not flattened.
        "LEFT JOIN task_artifacts a ON a.task_pk = d.task_pk AND a.attempt = d.attempt "
        "AND a.name_id = (SELECT name_id FROM artifact_names WHERE name = :name) "
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


#: Columns of ``compile_group_all_artifacts``.
GROUP_ALL_ARTIFACT_COLUMNS = (
    "task_pk",
    "attempt",
    "name",
    "sha",
    "type",
    "ts_epoch",
    "blob_id",
    "stored",
)


def compile_group_all_artifacts(task_pks: Sequence[int]) -> tuple[str, Params]:
    """Every artifact of the latest done attempt of each task, as
    ``GROUP_ALL_ARTIFACT_COLUMNS``, each task's newest first (ties: by name), as
    ``compile_artifacts`` orders them. A task without a done attempt has one row with
    ``attempt`` NULL; a done attempt without artifacts one row with ``name`` NULL."""
    return (
        f"{_DONE_ATTEMPTS}SELECT d.task_pk, d.attempt, an.name, CASE WHEN b.sha IS NOT NULL "
        "THEN lower(hex(b.sha)) END, "
        f"y.name, {RAW_ARTIFACT_TS} AS ts, b.blob_id, "
        "CASE WHEN b.chunks = 1 THEN length(b.data) END FROM d "
        # Raw tables: a view of a join on the right of a LEFT JOIN is not flattened.
        "LEFT JOIN task_artifacts a ON a.task_pk = d.task_pk AND a.attempt = d.attempt "
        "LEFT JOIN artifact_names an ON an.name_id = a.name_id "
        "LEFT JOIN blobs b ON b.blob_id = a.blob_id LEFT JOIN types y ON y.type_id = b.type_id "
        "ORDER BY d.task_pk, ts DESC, an.name",
        {"pks": json.dumps([int(pk) for pk in task_pks])},
    )

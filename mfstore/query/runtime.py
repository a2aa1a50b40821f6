"""Reads of the flow runtime (``resume``, ``clone``) and the writer's own lookups. Pure:
returns SQL + parameters."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final

from .common import Params, done_attempt

_DONE_TASKS = (
    "SELECT t.task_pk, t.step_name, t.task_id, a.attempt, a.success FROM tasks t "
    f"JOIN attempts a ON a.task_pk = t.task_pk AND a.attempt = ({done_attempt('t.task_pk')}) "
    "WHERE t.run_pk = :run"
)


def compile_done_tasks(run_pk: int) -> tuple[str, Params]:
    """``(task_pk, step_name, task_id, attempt, success)`` of every task of a run with its
    latest *done* attempt (tasks with no ended attempt are left out)."""
    return _DONE_TASKS, {"run": run_pk}


def compile_latest_original_run(flow_id: str, tag: str) -> tuple[str, Params]:
    """``(run_pk, run_number)`` of the newest run of ``flow_id`` carrying ``tag`` that is
    not itself a resume (what ``resume`` continues by default)."""
    return (
        "SELECT r.run_pk, r.run_number FROM runs r WHERE r.flow_id = :flow "
        "AND r.origin_run_number IS NULL "
        "AND EXISTS (SELECT 1 FROM tagset_tags g WHERE g.tagset_id = r.tagset_id AND g.tag = :tag) "
        "ORDER BY r.ts_epoch DESC, r.run_number DESC LIMIT 1",
        {"flow": flow_id, "tag": tag},
    )


def compile_clone_origin(task_pk: int) -> tuple[str, Params]:
    """``(step_name, task_id, attempt, started_at, ended_at, task_ok, success)`` of a
    task's latest done attempt (what ``Writer.clone_task`` copies)."""
    return (
        "SELECT t.step_name, t.task_id, a.attempt, a.started_at, a.ended_at, a.task_ok, a.success "
        "FROM tasks t JOIN attempts a ON a.task_pk = t.task_pk "
        "WHERE t.task_pk = :task AND a.ended_at IS NOT NULL ORDER BY a.attempt DESC LIMIT 1",
        {"task": task_pk},
    )


# -- the writer's own lookups (ids of rows it is about to reuse or extend) --------------


def compile_metadata_value_id(
    field_name: str, type_: str, is_json: int, value: str
) -> tuple[str, Params]:
    """``value_id`` of one interned metadata entry."""
    return (
        "SELECT value_id FROM metadata_values WHERE field_name = :field AND type = :type "
        "AND is_json = :json AND value = :value",
        {"field": field_name, "type": type_, "json": is_json, "value": value},
    )


def compile_last_metadata_pk(task_pk: int) -> tuple[str, Params]:
    """The task's highest ``metadata_pk`` (NULL: none yet); one primary-key seek."""
    return "SELECT max(metadata_pk) FROM metadata WHERE task_pk = :task", {"task": task_pk}


def compile_artifact_name_ids(names: Sequence[str]) -> tuple[str, Params]:
    """``(name, name_id)`` of interned artifact names."""
    return (
        "SELECT name, name_id FROM artifact_names WHERE name IN (SELECT value FROM json_each(:names))",
        {"names": json.dumps(list(names))},
    )


def compile_tagset_by_digest(flow_id: str, digest: str) -> tuple[str, Params]:
    """``tagset_id`` of the flow's tag set with ``digest``."""
    return (
        "SELECT tagset_id FROM tagsets WHERE flow_id = :flow AND digest = :digest",
        {"flow": flow_id, "digest": digest},
    )


#: The ``task_pk`` the next task row gets.
NEXT_TASK_PK: Final = "SELECT coalesce(max(task_pk), 0) + 1 FROM tasks"
#: The ``run_pk`` the next run row gets.
NEXT_RUN_PK: Final = "SELECT coalesce(max(run_pk), 0) + 1 FROM runs"


def compile_runs_existing(keys: Sequence[tuple[str, str]]) -> tuple[str, Params]:
    """``(flow_id, run_number, run_pk)`` of those of ``keys`` (flow, run number) the file
    holds."""
    return (
        "SELECT r.flow_id, r.run_number, r.run_pk FROM json_each(:keys) k JOIN runs r "
        "ON r.flow_id = k.value ->> 0 AND r.run_number = k.value ->> 1",
        {"keys": json.dumps([list(k) for k in keys], ensure_ascii=False)},
    )

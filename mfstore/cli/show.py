"""``mfstore show PATHSPEC``: a flow (its runs, paged), a run, a step or a task.

A run or a task is several tables (the record, its steps, its tasks...): on a terminal,
one rich table each; piped, TSV blocks separated by ``# name`` lines; ``--json`` one
document. A flow or a step is one table and also takes ``--csv`` / ``--tsv``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from ..exception import CliError
from ..query import (
    SHOW_TASK_COLUMNS,
    compile_show_artifacts,
    compile_show_metadata,
    compile_show_steps,
    compile_show_task,
    compile_show_tasks,
    compile_step_lookup,
    compile_task_count,
    compile_task_lookup,
)
from .common import (
    mfdb_option,
    more_line,
    paging_options,
    reading,
    resolve_file,
)
from .output import Output, columns, output_options
from .runlist import RUN_LIST, list_runs, run_record, split_pathspec
from .stream import json_value

#: Longest artifact value preview shown by ``show`` on a terminal.
PREVIEW_CHARS = 60

TASK_COLS = columns(*SHOW_TASK_COLUMNS, task_id="id", status="status", duration_s="num")
STEP_COLS = columns(
    "step", "status", "tasks", "started_at", "finished_at", "duration_s", step="id", status="status"
)
ARTIFACT_COLS = columns("name", "type", "size", "sha", "value", name="id", size="num")
METADATA_COLS = columns("field_name", "value", "type", "attempt", "created_at")


@click.command(name="show")
@click.argument("pathspec")
@paging_options()
@mfdb_option
@output_options()
def show_command(pathspec: str, limit: int | None, mfdb: str | None, out: Output) -> None:
    """Show a flow, run, step or task.

    A flow: its runs, newest first (paged like `runs`). A run: its status, tags, steps
    and tasks. A step: its tasks. A task: its artifacts with short value previews (plain
    data only; pickles are never loaded; internal `_` artifacts with --all) and its
    metadata. --limit N / --all bound the runs and tasks listed.

    Example:

        mfstore show TeamCollabFlow
    """
    parts = split_pathspec(pathspec)
    with reading(resolve_file(mfdb)) as store, store.read():
        if len(parts) == 1:
            list_runs(out, store, parts[0], (), limit)
            return
        if len(parts) in (2, 4) and out.explicit and out.fmt in ("csv", "tsv"):
            raise click.UsageError(
                "show of a run or a task is several tables: use --json (or mfstore sql for CSV)"
            )
        {2: _show_run, 3: _show_step, 4: _show_task}[len(parts)](out, store, parts, limit)


def _run(store: Any, parts: Sequence[str]) -> tuple[int, tuple[Any, ...]]:
    found = run_record(store, parts[0], parts[1])
    if found is None:
        raise CliError("run {} does not exist in {}".format("/".join(parts[:2]), store.path))
    return found


def _tasks(
    out: Output,
    store: Any,
    run_pk: int,
    step: str | None,
    limit: int | None,
    title: str,
    *,
    section: bool = True,
) -> dict[str, Any]:
    total = int(store.scalar(*compile_task_count(run_pk, step)) or 0)
    rows = store.query(*compile_show_tasks(run_pk, step, limit))
    more = total - len(rows)
    if out.is_json:
        return {
            "tasks": [dict(zip(SHOW_TASK_COLUMNS, r, strict=True)) for r in rows],
            "tasks_total": total,
        }
    if section:
        out.section("tasks")
    label = "{}: {} task{}".format(title, f"{total:,}", "" if total == 1 else "s")
    out.rows(TASK_COLS, rows, title=label, footer=more_line(more, "tasks") if more > 0 else None)
    return {}


def _show_run(out: Output, store: Any, parts: list[str], limit: int | None) -> None:
    run_pk, row = _run(store, parts)
    record = dict(zip([c.name for c in RUN_LIST], row, strict=True))
    record = {"pathspec": "/".join(parts), **record}
    steps = store.query(*compile_show_steps(run_pk))
    if out.is_json:
        doc = {
            "run": {k: json_value(v) for k, v in record.items()},
            "steps": [dict(zip([c.name for c in STEP_COLS], s, strict=True)) for s in steps],
            **_tasks(out, store, run_pk, None, limit, "tasks"),
        }
        out.document(doc)
        return
    out.record(record, {"status": "status", "tags": "tags", "system_tags": "tags"})
    out.section("steps")
    out.rows(STEP_COLS, steps, title="steps")
    _tasks(out, store, run_pk, None, limit, "tasks")


def _show_step(out: Output, store: Any, parts: list[str], limit: int | None) -> None:
    row = store.one(*compile_step_lookup(*parts))
    if row is None:
        raise CliError("step {} does not exist in {}".format("/".join(parts), store.path))
    tasks = _tasks(out, store, int(row[0]), parts[2], limit, "/".join(parts), section=False)
    if out.is_json:
        out.document({"step": "/".join(parts), **tasks})


def preview(value_json: str | None, type_name: Any, size: Any) -> str:
    """A short text of an artifact: its JSON form, cut at ``PREVIEW_CHARS``."""
    if value_json is None:
        return f"<{type_name}, {size} bytes; not plain data>"
    text = str(value_json)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "\u2026"


def _show_task(out: Output, store: Any, parts: list[str], limit: int | None) -> None:
    found = store.one(*compile_task_lookup(*parts))
    if found is None:
        raise CliError("task {} does not exist in {}".format("/".join(parts), store.path))
    task_pk = int(found[2])
    row = store.one(*compile_show_task(task_pk))
    record = {"pathspec": "/".join(parts), **dict(zip(SHOW_TASK_COLUMNS, row or (), strict=False))}
    arts = store.query(*compile_show_artifacts(task_pk))
    hidden = 0
    if limit is not None:  # without --all, internal artifacts stay hidden
        kept = [a for a in arts if not str(a[0]).startswith("_")]
        hidden = len(arts) - len(kept)
        arts = kept
    meta = store.query(*compile_show_metadata(task_pk))
    if out.is_json:
        out.document(
            {
                "task": record,
                "artifacts": [
                    {"name": n, "type": t, "size": s, "sha": sha, "value_json": v}
                    for n, t, s, sha, v in arts
                ],
                "hidden_artifacts": hidden,
                "metadata": [
                    dict(zip([c.name for c in METADATA_COLS], m, strict=True)) for m in meta
                ],
            }
        )
        return
    out.record(record, {"status": "status"})
    out.section("artifacts")
    shown = [
        (n, t, s, str(sha)[:12] if out.is_table else sha, preview(v, t, s) if out.is_table else v)
        for n, t, s, sha, v in arts
    ]
    note = f"{hidden} internal artifact{'' if hidden == 1 else 's'} hidden (use --all)"
    out.rows(ARTIFACT_COLS, shown, title="artifacts", footer=note if hidden else None)
    out.section("metadata")
    out.rows(METADATA_COLS, meta, title="metadata")

"""Browsing commands: ``sql``, ``flows``, ``runs``, ``show``, ``logs`` (issue 5).

Every command opens the file read-only and reads it through the documented ``mf_*``
views (docs/sql.md). Artifact values are previewed from their JSON form only: a pickle
is never loaded here, so browsing an untrusted file runs none of its code.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..exception import MetaflowException, StoreReadOnlyError
from ..provider import DEFAULT_FILE_NAME, ENV_VAR, discover
from ..query import compile_runs, required_tags
from ..store import Store

#: Default ``mfstore sql --timeout`` (seconds).
SQL_TIMEOUT_SECONDS = 30.0
#: Longest artifact value preview shown by ``show``.
PREVIEW_CHARS = 60


# -- shared plumbing --------------------------------------------------------------


def mfdb_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--mfdb PATH``: the file to read (default: $MFSTORE_DB, else metaflow.mfdb here or above)."""
    return click.option(
        "--mfdb",
        "mfdb",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=f"The .mfdb file (default: ${ENV_VAR}, else {DEFAULT_FILE_NAME} in this directory or a parent).",
    )(fn)


def _resolve(mfdb: Path | None) -> Path:
    path = mfdb if mfdb is not None else discover()
    if path is None:
        raise click.ClickException(
            f"no {DEFAULT_FILE_NAME} found in this directory or its parents: pass --mfdb PATH or set {ENV_VAR}"
        )
    return path


@contextmanager
def _reading(path: Path) -> Iterator[Store]:
    """The file opened read-only; every mfstore or SQL error becomes one line."""
    try:
        store = Store(path, reader=True)  # never changes the file (docs/security.md)
    except MetaflowException as exc:
        raise click.ClickException(_one_line(exc)) from None
    try:
        yield store
    except MetaflowException as exc:
        raise click.ClickException(_one_line(exc)) from None
    finally:
        store.close()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _rows(
    store: Store, sql: str, params: Sequence[Any] | dict[str, Any] = ()
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of one query."""
    try:
        return store.table(sql, params)
    except StoreReadOnlyError:
        raise
    except MetaflowException as exc:
        raise click.ClickException(_one_line(exc)) from None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return "<%d bytes>" % len(value)
    return str(value)


def _print_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    Console(soft_wrap=False).print(table)


def _split_pathspec(pathspec: str) -> list[str]:
    parts = pathspec.strip("/").split("/")
    if not pathspec.strip("/") or len(parts) > 4 or any(not p for p in parts):
        raise click.ClickException(
            f"invalid pathspec {pathspec!r}: expected Flow, Flow/run, Flow/run/step or Flow/run/step/task"
        )
    return parts


def _preview(value_json: str | None, type_name: str, size: int) -> str:
    if value_json is None:
        return "<%s, %d bytes; not plain data>" % (type_name, size)
    text = (
        value_json
        if len(value_json) <= PREVIEW_CHARS
        else value_json[: PREVIEW_CHARS - 1] + "\u2026"
    )
    return text


def _json_ready(value: Any) -> Any:
    return "<%d bytes>" % len(value) if isinstance(value, bytes) else value


# -- commands ---------------------------------------------------------------------


@click.command(name="sql")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV with a header row.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=SQL_TIMEOUT_SECONDS,
    show_default=True,
    help="Stop the query after this many seconds (Ctrl-C stops it too).",
)
def sql_command(file: Path, query: str, as_json: bool, as_csv: bool, timeout: float) -> None:
    """Run a read-only SQL query against FILE and print the result.

    Only reading is allowed: statements that would write to FILE or to any other file
    (INSERT, CREATE, ATTACH, VACUUM INTO, PRAGMA setters ...) are refused before they
    run, and nothing is changed. The mf_* views are documented in docs/sql.md.

    Example:

        mfstore sql metaflow.mfdb "SELECT run_id, value FROM mf_artifacts
          WHERE flow='TrainFlow' AND name='accuracy' ORDER BY value DESC"
    """
    if as_json and as_csv:
        raise click.ClickException("choose one of --json and --csv")
    with _reading(file) as store, store.only_reading(), store.time_limit(timeout):
        try:
            columns, rows = _rows(store, query)
        except StoreReadOnlyError:
            raise click.ClickException(
                f"{file}: `mfstore sql` is read-only; the statement would write and was "
                "refused before it ran (nothing was changed)"
            ) from None
    if as_json:
        click.echo(
            json.dumps(
                [{c: _json_ready(v) for c, v in zip(columns, r)} for r in rows],
                indent=2,
                ensure_ascii=False,
            )
        )
    elif as_csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_cell(v) for v in r] for r in rows])
        click.echo(out.getvalue(), nl=False)
    elif columns:
        _print_table(columns, rows)


@click.command(name="flows")
@mfdb_option
def flows_command(mfdb: Path | None) -> None:
    """List the flows in the file, with their number of runs and last run.

    Example:

        mfstore flows --mfdb metaflow.mfdb
    """
    with _reading(_resolve(mfdb)) as store:
        columns, rows = _rows(
            store, "SELECT flow, runs, created_at, last_run_at FROM mf_flows ORDER BY flow"
        )
    _print_table(columns, rows)


@click.command(name="runs")
@click.argument("flow")
@click.option(
    "--namespace", "-n", default=None, help="Only runs in this namespace (a tag, e.g. user:alice)."
)
@click.option(
    "--tag",
    "-t",
    "tags",
    multiple=True,
    help="Only runs carrying this tag (repeatable: all must match).",
)
@click.option("--limit", type=int, default=None, help="Show at most this many runs (newest first).")
@mfdb_option
def runs_command(
    flow: str, namespace: str | None, tags: tuple[str, ...], limit: int | None, mfdb: Path | None
) -> None:
    """List the runs of FLOW, newest first (all namespaces unless --namespace).

    Example:

        mfstore runs TrainFlow --namespace user:alice --tag exp --tag gpu
    """
    sql, params = compile_runs(flow, required_tags(namespace, tags))
    wrapped = (
        "SELECT v.run_id, v.status, v.user, v.created_at, v.duration_s, v.tags, v.system_tags "
        f"FROM ({sql}) q JOIN mf_runs v ON v.run_pk = q.run_pk ORDER BY q.ts_epoch DESC, q.run_number DESC"
    )
    if limit is not None:
        wrapped += " LIMIT %d" % max(limit, 0)
    with _reading(_resolve(mfdb)) as store:
        if store.one("SELECT 1 FROM mf_flows WHERE flow = ?", (flow,)) is None:
            raise click.ClickException(f"flow {flow!r} is not in {store.path}")
        columns, rows = _rows(store, wrapped, params)
    _print_table(columns, rows, title="%s: %d run(s)" % (flow, len(rows)))


@click.command(name="show")
@click.argument("pathspec")
@mfdb_option
def show_command(pathspec: str, mfdb: Path | None) -> None:
    """Show a flow, run, step or task.

    A run: its status, tags, steps and tasks. A task: its artifacts with short value
    previews (plain data only; pickles are never loaded) and its metadata.

    Example:

        mfstore show TrainFlow/104
        mfstore show TrainFlow/104/end/3
    """
    parts = _split_pathspec(pathspec)
    with _reading(_resolve(mfdb)) as store:
        {1: _show_flow, 2: _show_run, 3: _show_step, 4: _show_task}[len(parts)](store, parts)


def _require(store: Store, sql: str, params: Sequence[Any], what: str) -> None:
    if store.one(sql, params) is None:
        raise click.ClickException(f"{what} does not exist in {store.path}")


def _show_flow(store: Store, parts: list[str]) -> None:
    (flow,) = parts
    _require(store, "SELECT 1 FROM mf_flows WHERE flow = ?", parts, f"flow {flow}")
    columns, rows = _rows(
        store,
        "SELECT run_id, status, user, created_at, duration_s, tags FROM mf_runs WHERE flow = ? "
        "ORDER BY created_ms DESC, run_id DESC",
        parts,
    )
    _print_table(columns, rows, title="%s: %d run(s)" % (flow, len(rows)))


def _show_run(store: Store, parts: list[str]) -> None:
    row = store.one(
        "SELECT pathspec, status, user, created_at, finished_at, duration_s, tags, system_tags "
        "FROM mf_runs WHERE flow = ? AND run_id = ?",
        parts,
    )
    if row is None:
        raise click.ClickException(
            "run {} does not exist in {}".format("/".join(parts), store.path)
        )
    labels = (
        "run",
        "status",
        "user",
        "created_at",
        "finished_at",
        "duration_s",
        "tags",
        "system_tags",
    )
    _print_table(["field", "value"], list(zip(labels, row)))
    columns, rows = _rows(
        store,
        "SELECT step, status, tasks, started_at, finished_at, duration_s FROM mf_steps "
        "WHERE flow = ? AND run_id = ? ORDER BY started_at",
        parts,
    )
    _print_table(columns, rows, title="steps")
    columns, rows = _rows(
        store,
        "SELECT step, task_id, status, attempt, foreach_index, started_at, duration_s FROM mf_tasks "
        "WHERE flow = ? AND run_id = ? ORDER BY started_at, task_pk",
        parts,
    )
    _print_table(columns, rows, title="tasks")


def _show_step(store: Store, parts: list[str]) -> None:
    _require(
        store,
        "SELECT 1 FROM mf_steps WHERE flow = ? AND run_id = ? AND step = ?",
        parts,
        "step {}".format("/".join(parts)),
    )
    columns, rows = _rows(
        store,
        "SELECT task_id, status, attempt, attempts, foreach_index, started_at, finished_at, duration_s "
        "FROM mf_tasks WHERE flow = ? AND run_id = ? AND step = ? ORDER BY task_pk",
        parts,
    )
    _print_table(columns, rows, title="/".join(parts))


def _show_task(store: Store, parts: list[str]) -> None:
    row = store.one(
        "SELECT pathspec, status, attempt, attempts, foreach_index, started_at, finished_at, duration_s "
        "FROM mf_tasks WHERE flow = ? AND run_id = ? AND step = ? AND task_id = ?",
        parts,
    )
    if row is None:
        raise click.ClickException(
            "task {} does not exist in {}".format("/".join(parts), store.path)
        )
    labels = (
        "task",
        "status",
        "attempt",
        "attempts",
        "foreach_index",
        "started_at",
        "finished_at",
        "duration_s",
    )
    _print_table(["field", "value"], list(zip(labels, row)))
    arts = store.query(
        "SELECT name, type, size, sha, value_json FROM mf_artifacts "
        "WHERE flow = ? AND run_id = ? AND step = ? AND task_id = ? ORDER BY name",
        parts,
    )
    _print_table(
        ["name", "type", "size", "sha", "value"],
        [(n, t, s, sha[:12], _preview(v, t, s)) for n, t, s, sha, v in arts],
        title="artifacts",
    )
    columns, rows = _rows(
        store,
        "SELECT field_name, value, type, attempt, created_at FROM mf_metadata "
        "WHERE flow = ? AND run_id = ? AND step = ? AND task_id = ? ORDER BY created_ms, field_name",
        parts,
    )
    _print_table(columns, rows, title="metadata")


@click.command(name="logs")
@click.argument("pathspec")
@click.option("--stderr", "stderr", is_flag=True, help="Show stderr instead of stdout.")
@click.option("--attempt", type=int, default=None, help="Attempt to show (default: the latest).")
@mfdb_option
def logs_command(pathspec: str, stderr: bool, attempt: int | None, mfdb: Path | None) -> None:
    """Print the stdout (or --stderr) of a task, or of every task of a step or run.

    Lines of a task's latest attempt are shown unless --attempt is given. With a run or
    step pathspec, each line is prefixed by its task's step/task_id.

    Example:

        mfstore logs TrainFlow/103/train/2 --stderr
    """
    parts = _split_pathspec(pathspec)
    if len(parts) < 2:
        raise click.ClickException(
            f"logs needs a run, step or task pathspec (Flow/run[/step[/task]]), not {pathspec!r}"
        )
    names = ("flow", "run_id", "step", "task_id")
    where = " AND ".join(f"t.{n} = ?" for n in names[: len(parts)])
    which = "l.attempt = ?" if attempt is not None else "l.attempt = t.attempt"
    params: list[Any] = [*parts, "stderr" if stderr else "stdout"]
    if attempt is not None:
        params.append(attempt)
    sql = (
        "SELECT t.step || '/' || t.task_id, l.line FROM mf_tasks t JOIN mf_log_lines l ON l.task_pk = t.task_pk "
        f"WHERE {where} AND l.stream = ? AND {which} ORDER BY l.ts_us, l.line_pk"
    )
    with _reading(_resolve(mfdb)) as store:
        what = {2: "run", 3: "step", 4: "task"}[len(parts)]
        view = {2: "mf_runs", 3: "mf_steps", 4: "mf_tasks"}[len(parts)]
        cond = " AND ".join(f"{n} = ?" for n in names[: len(parts)])
        _require(
            store,
            f"SELECT 1 FROM {view} WHERE {cond}",
            parts,
            "{} {}".format(what, "/".join(parts)),
        )
        rows = store.query(sql, params)
    for task, line in rows:
        click.echo(line if len(parts) == 4 else f"[{task}] {line}")


COMMANDS = (sql_command, flows_command, runs_command, show_command, logs_command)


def register(cli: click.Group) -> None:
    """Add the browsing commands to the ``mfstore`` group."""
    for command in COMMANDS:
        cli.add_command(command)

"""Browsing commands: ``flows``, ``runs``, ``logs`` (``show`` and ``sql`` live beside;
run listings in ``runlist``).

Every command opens the file read-only. Listings are newest first and paged through
indexed statements from ``mfstore.query``: the first page of a 1,000,000-run flow costs a
few index seeks, and ``--all`` streams rows in index order (flat memory). Artifact values
are previewed from their JSON form only: a pickle is never loaded here.
"""

from __future__ import annotations

from typing import Any

import click

from ..escape import escape_log
from ..exception import CliError
from ..query import (
    FLOW_SUMMARIES,
    compile_attempt_numbers,
    compile_log_listing,
    compile_task_pks,
    required_tags,
)
from .common import (
    mfdb_option,
    namespace_option,
    paging_options,
    reading,
    resolve_file,
)
from .output import Output, columns, output_options
from .runlist import iso, list_runs, split_pathspec
from .show import show_command
from .sqlcmd import sql_command

# -- commands ---------------------------------------------------------------------


@click.command(name="flows")
@mfdb_option
@output_options()
def flows_command(mfdb: str | None, out: Output) -> None:
    """List the flows in the file, with their number of runs and last run.

    Example:

        mfstore flows --mfdb metaflow.mfdb
    """
    with reading(resolve_file(mfdb)) as store:
        rows = [
            (flow, int(n or 0), iso(last), iso(created))
            for flow, created, n, last in store.query(FLOW_SUMMARIES)
        ]
    cols = columns("flow", "runs", "last_run_at", "created_at", flow="id", runs="num")
    out.rows(cols, iter(rows), title=f"{len(rows)} flow" + ("" if len(rows) == 1 else "s"))


def tag_option(fn: Any) -> Any:
    """``--tag T`` (repeatable): only runs carrying every given tag."""
    return click.option(
        "--tag",
        "-t",
        "tags",
        multiple=True,
        metavar="TAG",
        help="Only runs carrying this tag (repeatable: all must match).",
    )(fn)


@click.command(name="runs")
@click.argument("flow")
@namespace_option
@tag_option
@paging_options()
@mfdb_option
@output_options()
def runs_command(
    flow: str,
    namespace: str | None,
    tags: tuple[str, ...],
    limit: int | None,
    mfdb: str | None,
    out: Output,
) -> None:
    """List the runs of FLOW, newest first: the newest 20 (--limit N, --all) and how many
    more there are. All namespaces unless --namespace.

    Example:

        mfstore runs TeamCollabFlow --namespace user:alice --tag shared
    """
    with reading(resolve_file(mfdb)) as store:
        list_runs(out, store, flow, required_tags(namespace, tags), limit)


@click.command(name="logs")
@click.argument("pathspec")
@click.option("--stderr", "stderr", is_flag=True, help="Show stderr instead of stdout.")
@click.option(
    "--attempt",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Attempt to show (default: each task's latest).",
)
@mfdb_option
@output_options(tabular=True)
def logs_command(
    pathspec: str, stderr: bool, attempt: int | None, mfdb: str | None, out: Output
) -> None:
    """Print the stdout (or --stderr) of a task, or of every task of a step or run.

    Lines of each task's latest attempt are shown unless --attempt is given. With a run or
    step pathspec, each line is prefixed by its task's step/task_id. Control characters in
    a line are shown escaped (\\x1b); --json gives the lines exactly.

    Example:

        mfstore logs TeamCollabFlow/RUN_ID/start/1
    """
    parts = split_pathspec(pathspec)
    if len(parts) < 2:
        raise CliError(
            f"logs needs a run, step or task pathspec (Flow/run[/step[/task]]), not {pathspec!r}"
        )
    flow, run = parts[0], parts[1]
    step = parts[2] if len(parts) > 2 else None
    task = parts[3] if len(parts) > 3 else None
    stream = "stderr" if stderr else "stdout"
    with reading(resolve_file(mfdb)) as store, store.read():
        pks = [pk for (pk,) in store.query(*compile_task_pks(flow, run, step, task))]
        if not pks:
            what = {2: "run", 3: "step", 4: "task"}[len(parts)]
            raise CliError(f"{what} {'/'.join(parts)} does not exist in {store.path}")
        if attempt is not None:
            attempts = [a for (a,) in store.query(*compile_attempt_numbers(pks))]
            if attempt not in attempts:
                have = ", ".join(str(a) for a in attempts) or "none"
                raise CliError(f"{'/'.join(parts)} has no attempt {attempt} (attempts: {have})")
        cursor = store.execute(*compile_log_listing(flow, run, step, task, stream, attempt))
        if out.fmt == "table" or (out.fmt == "tsv" and not out.explicit):
            _plain_lines(cursor, prefix=len(parts) < 4)
            return
        cols = columns("task", "attempt", "ts_us", "line", task="id")
        out.rows(cols, (tuple(r) for r in cursor))


def _plain_lines(cursor: Any, *, prefix: bool) -> None:
    import sys

    write = sys.stdout.write
    for task, _attempt, _ts, line in cursor:
        text = escape_log(str(line))
        write(f"[{task}] {text}\n" if prefix else text + "\n")
    sys.stdout.flush()


COMMANDS = (sql_command, flows_command, runs_command, show_command, logs_command)


def register(cli: click.Group) -> None:
    """Add the browsing commands to the ``mfstore`` group."""
    for command in COMMANDS:
        cli.add_command(command)

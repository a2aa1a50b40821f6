"""Browsing commands: ``flows``, ``runs``, ``logs`` (``show`` and ``sql`` live beside).

Every command opens the file read-only. Listings are newest first and paged through
indexed statements from ``mfstore.query``: the first page of a 1,000,000-run flow costs a
few index seeks, and ``--all`` streams rows in index order (flat memory). Artifact values
are previewed from their JSON form only: a pickle is never loaded here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

import click

from ..query import (
    RUN_COLUMNS,
    RUN_LISTING_COLUMNS,
    compile_attempt_numbers,
    compile_flow_lookup,
    compile_flow_summaries,
    compile_log_listing,
    compile_run_count,
    compile_run_listing,
    compile_run_lookup,
    compile_tagset,
    compile_task_pks,
    required_tags,
)
from .common import (
    CliError,
    mfdb_option,
    more_line,
    namespace_option,
    paging_options,
    reading,
    resolve_file,
)
from .escape import escape_log
from .output import Output, columns, output_options
from .stream import BLOCK_ROWS, Blocks, Row, Tags

#: Columns of a run listing (``runs``, ``show FLOW``), in every format.
RUN_LIST = columns(
    *RUN_LISTING_COLUMNS[:-1],  # the tag set id becomes the two tag lists
    "tags",
    "system_tags",
    run_id="id",
    status="status",
    duration_s="num",
    tags="tags",
    system_tags="tags",
)
#: The columns a terminal table shows (the others are in --json/--csv/--tsv).
RUN_TABLE = ("run_id", "status", "user", "created_at", "duration_s", "tags")


def iso(ms: Any) -> str | None:
    """Milliseconds since the epoch as ISO 8601 UTC text with milliseconds (like the views)."""
    if ms is None:
        return None
    try:
        seconds, millis = divmod(int(ms), 1000)
        t = time.gmtime(seconds)
    except (ValueError, OverflowError, OSError, TypeError):
        return str(ms)
    return f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}T{t[3]:02d}:{t[4]:02d}:{t[5]:02d}.{millis:03d}Z"


def split_pathspec(pathspec: str) -> list[str]:
    """``Flow[/run[/step[/task]]]`` -> its parts (exit 1 with a one-line error if malformed)."""
    parts = pathspec.strip("/").split("/")
    if not pathspec.strip("/") or len(parts) > 4 or any(not p for p in parts):
        raise CliError(
            f"invalid pathspec {pathspec!r}: expected Flow, Flow/run, Flow/run/step or Flow/run/step/task"
        )
    return parts


class TagSets(dict[int, tuple[Tags, Tags]]):
    """``tagset_id -> (user tags, system tags)``, read once per tag set (bounded cache)."""

    MAX = 4096

    def __init__(self, store: Any) -> None:
        super().__init__()
        self.store = store

    def __missing__(self, tagset_id: int) -> tuple[Tags, Tags]:
        if len(self) >= self.MAX:
            self.clear()
        rows = self.store.query(*compile_tagset(tagset_id))
        user = Tags(sorted(str(t) for t, system in rows if not system))
        system = Tags(sorted(str(t) for t, system in rows if system))
        self[tagset_id] = (user, system)
        return user, system


def run_rows(store: Any, flow: str, tags: Sequence[str], limit: int | None) -> Blocks:
    """Runs of ``flow`` carrying all ``tags`` as ``RUN_LIST`` rows, newest first, in
    blocks: the newest ``limit`` (index seeks), or every run streamed in index order
    (``limit=None``)."""
    tagsets = TagSets(store)
    cursor = store.execute(*compile_run_listing(flow, tags, limit))

    def cut() -> Iterator[list[Row]]:
        while raw := list(islice(cursor, BLOCK_ROWS)):
            yield [r[:6] + tagsets[r[6]] for r in raw]

    return Blocks(cut())


def run_record(store: Any, flow: str, run_number: str) -> tuple[int, tuple[Any, ...]] | None:
    """``(run_pk, RUN_LIST row)`` of one run, or None."""
    row = store.one(*compile_run_lookup(flow, run_number))
    if row is None:
        return None
    r = dict(zip(RUN_COLUMNS, row))
    user, system = TagSets(store)[r["tagset_id"]]
    start, end = r["ts_epoch"], r["finished_at"]
    try:
        duration = None if end is None else (int(end) - int(start)) / 1000.0
    except (TypeError, ValueError):
        duration = None
    record = (r["run_number"], r["status"], r["user_name"], iso(start), iso(end), duration)
    return int(r["run_pk"]), (*record, user, system)


def list_runs(out: Output, store: Any, flow: str, tags: Sequence[str], limit: int | None) -> None:
    """Print a run listing: a header with the total, the newest ``limit`` runs, and a line
    saying how many more there are."""
    with store.read():
        if store.one(*compile_flow_lookup(flow)) is None:
            raise CliError(f"flow {flow!r} is not in {store.path}")
        total = int(store.scalar(*compile_run_count(flow, tags)) or 0)
        rows: Iterable[Any] = run_rows(store, flow, tags, limit)
        cols = RUN_LIST
        if out.is_table:
            keep = [i for i, c in enumerate(RUN_LIST) if c.name in RUN_TABLE]
            cols = [RUN_LIST[i] for i in keep]
            rows = (tuple(r[i] for i in keep) for block in rows for r in block)
        shown = total if limit is None else min(limit, total)
        title = "{}: {} run{}".format(flow, f"{total:,}", "" if total == 1 else "s")
        if tags:
            title += " with " + ", ".join(tags)
        more = total - shown
        out.rows(cols, rows, title=title, footer=more_line(more, "runs") if more > 0 else None)


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
            for flow, created, n, last in store.query(*compile_flow_summaries())
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


# show and sql import this module's helpers, so they come last.
from .show import show_command  # noqa: E402
from .sqlcmd import sql_command  # noqa: E402

COMMANDS = (sql_command, flows_command, runs_command, show_command, logs_command)


def register(cli: click.Group) -> None:
    """Add the browsing commands to the ``mfstore`` group."""
    for command in COMMANDS:
        cli.add_command(command)

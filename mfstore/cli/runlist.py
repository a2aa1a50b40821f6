"""Run listings shared by ``runs`` and ``show FLOW``/``show FLOW/RUN``: the columns, the
rows (paged or streamed, tag sets read once), one run's record, and pathspec parsing."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from ..exception import CliError
from ..query import (
    RUN_COLUMNS,
    RUN_LISTING_COLUMNS,
    compile_flow_lookup,
    compile_run_count,
    compile_run_listing,
    compile_run_lookup,
    compile_tagset,
)
from .common import more_line
from .output import Output, columns
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
    r = dict(zip(RUN_COLUMNS, row, strict=True))
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

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

import enum
from collections.abc import Mapping, Sequence
from typing import Any

from .common import Params, bound_list

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


def older_than(run: str = "") -> str:
    """SQL: the run (its columns prefixed with ``run``, e.g. ``"r."``) comes after the
    bound ``(:bts, :brn)`` (``(ts_epoch, run_number)``, see ``page_after``) in newest-first
    order."""
    return f"({run}ts_epoch < :bts OR ({run}ts_epoch = :bts AND {run}run_number < :brn))"


_OLDER = " AND " + older_than()
_OLDER_R = " AND " + older_than("r.")


def required_tags(namespace: str | None, tags: Sequence[str]) -> list[str]:
    """The tags a run must carry: the user's filter tags plus the namespace (if any)."""
    wanted = list(dict.fromkeys(tags))
    if namespace is not None and namespace not in wanted:
        wanted.append(namespace)
    return wanted


def matching_tagsets(tags: Sequence[str], params: Params) -> str:
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
        ok += _OLDER
        ok_r += _OLDER_R
    if not tags:
        sql = f"SELECT {_RUN_COLS} FROM runs r WHERE r.flow_id = :flow{ok_r} {_ORDER}"
        if limit is not None:
            params["lim"] = limit
            sql += " LIMIT :lim"
        return sql, params
    matching = matching_tagsets(tags, params)
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


def compile_flows(namespace: str | None, *, created: bool = False) -> tuple[str, Params]:
    """Flow names (sorted) having at least one run in ``namespace`` (all if None);
    ``created``: ``(flow_id, ts_epoch)`` rows (what ``Metaflow().flows`` lists)."""
    columns = "flow_id, ts_epoch" if created else "flow_id"
    if namespace is None:
        return f"SELECT {columns} FROM flows ORDER BY flow_id", {}
    return (
        f"SELECT {columns} FROM flows f WHERE EXISTS ("
        "SELECT 1 FROM tagset_tags t CROSS JOIN runs r ON r.flow_id = t.flow_id AND r.tagset_id = t.tagset_id "
        "WHERE t.flow_id = f.flow_id AND t.tag = :tag) ORDER BY f.flow_id",
        {"tag": namespace},
    )


def compile_tag_counts(flow_id: str, tags: Sequence[str]) -> tuple[str, Params]:
    """Number of the flow's tag sets holding each tag (to drive the filter from the rarest)."""
    params: Params = {"flow": flow_id}
    names = bound_list(params, "p", tags)
    return (
        f"SELECT tag, count(DISTINCT tagset_id) FROM tagset_tags WHERE flow_id = :flow AND tag IN ({names}) "
        "GROUP BY tag",
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


_TASK_LOOKUP_COLUMNS = "r.run_pk, r.tagset_id, t.task_pk, t.ts_epoch, t.origin_task_pk"


def compile_task_lookup(
    flow_id: str, run_number: str, step_name: str, task_id: str, *, pk_only: bool = False
) -> tuple[str, Params]:
    """``(run_pk, tagset_id, task_pk, ts_epoch, origin_task_pk)`` of one task; ``pk_only``:
    ``(task_pk,)`` alone, read from the two indexes without the tables' rows."""
    columns = "t.task_pk" if pk_only else _TASK_LOOKUP_COLUMNS
    return (
        f"SELECT {columns} FROM runs r JOIN tasks t "
        "ON t.run_pk = r.run_pk AND t.step_name = :step AND t.task_id = :task "
        "WHERE r.flow_id = :flow AND r.run_number = :run",
        {"flow": flow_id, "run": run_number, "step": step_name, "task": task_id},
    )


#: Columns of an artifact row: the task's run, the task, then the artifact record.
#: How many of the newest runs the first page of a run query examines.
LATEST_WINDOW = 64


def compile_window_bound(
    flow_id: str,
    *,
    successful: bool = False,
    before: tuple[int, str] | None = None,
    window: int = LATEST_WINDOW,
) -> tuple[str, Params]:
    """``(ts_epoch, run_number)`` of the ``window``-th newest run (older than ``before``
    when given): where a bounded walk of the newest runs ends (no row: fewer runs)."""
    params: Params = {"flow": flow_id, "skip": window - 1}
    ok = " AND status = 'successful'" if successful else ""
    if before is not None:
        params["bts"], params["brn"] = before
        ok += _OLDER
    return (
        f"SELECT ts_epoch, run_number FROM runs WHERE flow_id = :flow{ok} "
        "ORDER BY ts_epoch DESC, run_number DESC LIMIT 1 OFFSET :skip",
        params,
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


# -- command-line listings (mfstore runs / show) --------------------------------------


def compile_run_count(flow_id: str, tags: Sequence[str] = ()) -> tuple[str, Params]:
    """Number of runs of ``flow_id`` carrying all ``tags``: an index-only count (the
    flow's ``runs_by_time`` range, or one ``runs_by_tagset`` range per matching tag set)."""
    if not tags:
        return "SELECT count(*) FROM runs WHERE flow_id = :flow", {"flow": flow_id}
    params: Params = {"flow": flow_id}
    matching = matching_tagsets(tags, params)
    return (
        f"WITH m(tagset_id) AS ({matching}) SELECT count(*) FROM m CROSS JOIN runs r "
        "ON r.flow_id = :flow AND r.tagset_id = m.tagset_id",
        params,
    )


def compile_flow_has_runs(flow_id: str) -> tuple[str, Params]:
    """A row when ``flow_id`` has a run."""
    return "SELECT 1 FROM runs WHERE flow_id = :flow LIMIT 1", {"flow": flow_id}


class RunFields(enum.Enum):
    """Which columns of one ``runs`` row a point read returns, in this order: the same
    statement for every reader that wants part of a run, by row id (``compile_run_fields``)
    or by pathspec (``compile_run_by_key``, the ``runs`` unique key)."""

    #: ``1``: a row when the run exists.
    EXISTS = ("1",)
    #: The pathspec.
    KEY = ("flow_id", "run_number")
    KEY_AND_USER = ("flow_id", "run_number", "user_name")
    TAGSET = ("tagset_id",)
    #: NULL: no code package.
    CODE = ("code_sha",)
    FLOW_AND_TAGSET = ("flow_id", "tagset_id")
    #: What a merge checks of a run before copying it.
    TO_CHECK = ("flow_id", "run_number", "ts_epoch", "finished_at", "status", "code_sha")
    #: Every column but the row id (what a copy writes again).
    RECORD = RUN_COLUMNS[1:]
    #: Those but the tag set: the run's content, equal in any file holding it (user tags
    #: and the tag set's id are not content).
    CONTENT = tuple(c for c in RUN_COLUMNS[1:] if c != "tagset_id")
    PK_AND_NUMBER = ("run_pk", "run_number")
    PK_TAGSET_AND_TIME = ("run_pk", "tagset_id", "ts_epoch")
    PK_STATUS_AND_TAGSET = ("run_pk", "status", "tagset_id")

    def __init__(self, *columns: str) -> None:
        select = f"SELECT {', '.join(columns)} FROM runs WHERE "
        #: The statement by row id (``:run``).
        self.by_pk = select + "run_pk = :run"
        #: The statement by pathspec (``:flow``, ``:run``).
        self.by_key = select + "flow_id = :flow AND run_number = :run"


def compile_run_fields(run_pk: int | None, fields: RunFields) -> tuple[str, Params]:
    """``fields`` of the run with row id ``run_pk`` (no row: there is none, or ``run_pk``
    is None)."""
    return fields.by_pk, {"run": run_pk}


def compile_run_by_key(flow_id: str, run_number: str, fields: RunFields) -> tuple[str, Params]:
    """``fields`` of the run ``flow_id/run_number`` (no row: there is none)."""
    return fields.by_key, {"flow": flow_id, "run": run_number}


# -- the run-filter planner (Flow.runs, latest_run): which statements, in what pages -----

#: Page sizes for runs older than the first window (then all the rest at once).
RUN_PAGES = (1, 32, 1024)
#: A filter whose rarest tag is on at most this many tag sets is answered by one index
#: seek per matching tag set; above, the newest runs are walked first.
SEEK_TAGSETS = 48


def rarest_first(wanted: Sequence[str], counts: Mapping[str, int]) -> tuple[list[str], int] | None:
    """The required tags rarest first and how many tag sets hold the rarest one (0
    without tags), given ``counts`` (tag -> tag sets, ``compile_tag_counts``); None
    if some tag is on no tag set (no run can match)."""
    if not wanted:
        return [], 0
    if len(counts) < len(wanted):
        return None
    ordered = sorted(wanted, key=counts.__getitem__)
    return ordered, counts[ordered[0]]


def seek_per_tagset(wanted: Sequence[str], fewest: int, *, latest: bool = False) -> bool:
    """Answer by one index seek per matching tag set (True) or walk the newest runs first
    (False). ``latest``: only the newest run is wanted (then no tag at all seeks too)."""
    if not wanted:
        return latest
    return fewest <= SEEK_TAGSETS


def page_after(row: Sequence[Any]) -> tuple[int, str]:
    """The ``before`` bound of the page that follows run row ``row`` (``RUN_COLUMNS``)."""
    return (row[5], row[2])

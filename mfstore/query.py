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
        params["p%d" % i] = tag
        clauses.append(
            "EXISTS (SELECT 1 FROM tagset_tags t%d WHERE t%d.flow_id = :flow AND t%d.tag = :p%d "
            "AND t%d.tagset_id = t0.tagset_id)" % (i, i, i, i, i)
        )
    where = " AND ".join(["t0.flow_id = :flow", "t0.tag = :p0", *clauses])
    return "SELECT DISTINCT t0.tagset_id FROM tagset_tags t0 WHERE " + where


def compile_runs(
    flow_id: str,
    tags: Sequence[str] = (),
    *,
    successful: bool = False,
    latest: bool = False,
) -> tuple[str, Params]:
    """Runs of ``flow_id`` carrying all ``tags`` (user or system), newest first.

    ``successful`` keeps only successful runs; ``latest`` returns at most one row and
    costs one index seek per matching tag set.
    """
    params: Params = {"flow": flow_id}
    ok = " AND status = 'successful'" if successful else ""
    ok_r = " AND r.status = 'successful'" if successful else ""
    if not tags:
        sql = "SELECT %s FROM runs r WHERE r.flow_id = :flow%s %s" % (_RUN_COLS, ok_r, _ORDER)
        return (sql + " LIMIT 1" if latest else sql), params
    matching = _matching_tagsets(tags, params)
    if latest:
        sql = (
            "WITH m(tagset_id) AS (%s) "
            "SELECT %s FROM m JOIN runs r ON r.run_pk = ("
            "SELECT run_pk FROM runs WHERE flow_id = :flow AND tagset_id = m.tagset_id%s "
            "ORDER BY ts_epoch DESC, run_number DESC LIMIT 1) %s LIMIT 1"
        ) % (matching, _RUN_COLS, ok, _ORDER)
        return sql, params
    # CROSS JOIN pins the join order: matching tag sets first, then an index range
    # per tag set, instead of a scan of the flow's runs filtered by tag set.
    sql = (
        "WITH m(tagset_id) AS (%s) "
        "SELECT %s FROM m CROSS JOIN runs r ON r.flow_id = :flow AND r.tagset_id = m.tagset_id%s %s"
    ) % (matching, _RUN_COLS, ok_r, _ORDER)
    return sql, params


def compile_run_lookup(flow_id: str, run_number: str) -> tuple[str, Params]:
    """One run by pathspec (unique index seek)."""
    return (
        "SELECT %s FROM runs r WHERE r.flow_id = :flow AND r.run_number = :run" % _RUN_COLS,
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
        params["p%d" % i] = tag
        names.append(":p%d" % i)
    return (
        "SELECT tag, count(DISTINCT tagset_id) FROM tagset_tags WHERE flow_id = :flow AND tag IN (%s) GROUP BY tag"
        % ", ".join(names),
        params,
    )


def compile_tagset_has(tagset_id: int, tag: str) -> tuple[str, Params]:
    """1 if the tag set holds ``tag`` (as a user or system tag)."""
    return (
        "SELECT 1 FROM tagset_tags WHERE tagset_id = :ts AND tag = :tag LIMIT 1",
        {"ts": tagset_id, "tag": tag},
    )

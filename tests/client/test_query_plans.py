"""The filter queries are index searches: no scan of runs whatever the history size."""

from __future__ import annotations

import pytest

from mfstore import query


def _plan(store, sql, params):
    return [row[-1] for row in store.query("EXPLAIN QUERY PLAN " + sql, params)]


@pytest.mark.parametrize(
    "sql_params",
    [
        query.compile_runs("HelloFlow", ["user:alice"], latest=True),
        query.compile_runs("HelloFlow", ["user:alice", "a", "b"], latest=True),
        query.compile_runs("HelloFlow", ["user:alice", "a"], successful=True, latest=True),
        query.compile_runs("HelloFlow", ["user:alice", "a"]),
        query.compile_runs("HelloFlow", [], latest=True),
        query.compile_runs("HelloFlow", [], successful=True, latest=True),
        query.compile_run_lookup("HelloFlow", "1"),
        query.compile_flow_in_namespace("HelloFlow", "user:alice"),
        query.compile_flows("user:alice"),
        query.compile_tag_counts("HelloFlow", ["a", "b"]),
        query.compile_step_lookup("HelloFlow", "1", "start"),
        query.compile_task_lookup("HelloFlow", "1", "start", "1"),
        query.compile_artifact_lookup("HelloFlow", "1", "start", "1", "x", None),
        query.compile_steps(1),
        query.compile_tasks(1, "start"),
        query.compile_log_lines(1, 0, "stdout"),
        query.compile_metadata(1, None),
    ],
)
def test_plans_use_indexes(history, sql_params):
    for i in range(30):
        history.run(user=("alice", "bob")[i % 2], tags=[("a", "b", "c")[i % 3]])
    plan = _plan(history.store, *sql_params)
    text = " | ".join(plan)
    assert not any(
        step.startswith(
            (
                "SCAN r",
                "SCAN runs",
                "SCAN t ",
                "SCAN tasks",
                "SCAN a ",
                "SCAN artifacts",
                "SCAN metadata",
                "SCAN log_lines",
            )
        )
        for step in plan
    ), text
    assert "USING" in text or "PRIMARY KEY" in text, text


def test_flow_listing_without_namespace_reads_flows_only(history):
    history.run()
    for created in (False, True):
        plan = _plan(history.store, *query.compile_flows(None, created=created))
        assert plan == ["SCAN flows"], created

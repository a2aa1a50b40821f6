"""Statement counts through the public tracer: navigating N or 4N objects issues the
same number of SQL statements (no query per task, run or flow)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mfstore import provider
from mfstore.artifacts import prepare_artifacts
from mfstore.client import Metaflow, Step, Task, namespace
from mfstore.writer import MetadataEntry
from tests.client.conftest import History
from tests.flowfiles import start_end_flow

N = 3


def fan_out(history: History, tasks: int, *, control: int = 1) -> str:
    """A run whose ``fan`` step has ``tasks`` finished tasks (``control`` of them control
    tasks: one by tag-less metadata) with an artifact ``x``; returns the step pathspec."""
    run = history.run("FanFlow")
    w = history.writer
    for i in range(tasks):
        ts = history.tick()
        md = [MetadataEntry("attempt", "0", "attempt", 0, ts)]
        if i < control:
            md.append(MetadataEntry("internal_task_type", "control_task", "internal", 0, ts))
        task = w.add_task(run, "fan", ts_epoch=ts)
        w.begin_attempt(task, 0, ts_epoch=ts, metadata=md)
        w.end_attempt(
            task,
            0,
            artifacts=prepare_artifacts({"x": i, "_task_ok": True}),
            task_ok=True,
            success=True,
            ts_epoch=ts + 5,
        )
    history.last_run = run
    return f"FanFlow/{run.run_number}/fan"


def count(action: Callable[[], Any]) -> tuple[int, Any]:
    """(statements the current store ran, result) of ``action()``."""
    seen: list[str] = []
    with provider.current_store().tracer(lambda sql, params: seen.append(sql)):
        result = action()
    return len(seen), result


@pytest.fixture
def histories(tmp_path: Path) -> Callable[[str], History]:
    """New histories, each in its own file and selected with ``metadata()``."""
    made: list[History] = []

    def make(name: str) -> History:
        if made:
            made[-1].store.close()
            provider.reset()
        h = History(tmp_path / f"{name}.mfdb")
        provider.metadata(str(h.path))
        made.append(h)
        return h

    yield make
    for h in made:
        h.store.close()


def _list_then_read(task: Task) -> Any:
    """Iterate the task's artifacts (names and shas), then read one value."""
    assert "x" in [artifact.id for artifact in task]
    return task["x"].data


READS = {
    "t[name].data": lambda p: sorted(t["x"].data for t in Step(p)),
    "t.data.name": lambda p: sorted(t.data.x for t in Step(p)),
    "list(t)": lambda p: sorted(_list_then_read(t) for t in Step(p)),
}


@pytest.mark.parametrize("ns", [None, "user:alice"])
@pytest.mark.parametrize("read", sorted(READS))
def test_reading_an_artifact_of_every_task(histories, ns: str | None, read: str) -> None:
    results = []
    for size in (N, 4 * N):
        pathspec = fan_out(histories(f"fan{size}"), size)
        namespace(ns)
        results.append(count(lambda p=pathspec: READS[read](p)))
    (few, values_few), (many, values_many) = results
    assert values_few == list(range(N)) and values_many == list(range(4 * N))
    assert many == few


def test_step_finished_at(histories) -> None:
    results = []
    for size in (N, 4 * N):
        pathspec = fan_out(histories(f"fan{size}"), size)
        results.append(count(lambda p=pathspec: Step(p).finished_at))
        expected = max(t.finished_at for t in Step(pathspec))
        assert results[-1][1] == expected is not None
    assert results[0][0] == results[1][0]


def test_step_finished_at_is_none_while_a_task_runs(histories) -> None:
    h = histories("running")
    pathspec = fan_out(h, N)
    assert Step(pathspec).finished_at is not None
    h.writer.begin_attempt(h.writer.add_task(h.last_run, "fan"), 0)
    assert Step(pathspec).finished_at is None


def test_step_control_tasks(histories) -> None:
    results = []
    for size in (N, 4 * N):
        pathspec = fan_out(histories(f"fan{size}"), size, control=size // 3)
        results.append(count(lambda p=pathspec: sorted(t.id for t in Step(p).control_tasks())))
        by_metadata = sorted(
            t.id
            for t in Step(pathspec)
            if t.metadata_dict.get("internal_task_type") == "control_task"
        )
        assert results[-1][1] == by_metadata and len(by_metadata) == size // 3
    assert results[0][0] == results[1][0]


@pytest.mark.parametrize("ns", [None, "user:alice"])
def test_listing_flows(histories, ns: str | None) -> None:
    results = []
    for size in (N, 4 * N):
        h = histories(f"flows{size}")
        for i in range(size):
            h.run(f"Flow{i:03d}")
        h.run("BobFlow", user="bob")
        namespace(ns)
        results.append(count(lambda: [f.id for f in Metaflow().flows]))
        expected = [f"Flow{i:03d}" for i in range(size)]
        if ns is None:
            expected = ["BobFlow", *expected]
        assert results[-1][1] == expected
    assert results[0][0] == results[1][0]


#: The flow whose runs ``History.run`` writes (named like it; its steps never run here).
HelloFlow = start_end_flow("HelloFlow")


@pytest.mark.parametrize("options", [["--all"], ["--all", "--json"], ["--my-runs"]])
def test_flow_tag_list(histories, options: list[str]) -> None:
    from click.testing import CliRunner

    from mfstore.runtime.cli import make_cli
    from mfstore.runtime.cli_common import State
    from mfstore.runtime.graph import FlowGraph

    results = []
    for size in (N, 4 * N):
        h = histories(f"tags{size}")
        for i in range(size):
            h.run(tags=[f"t{i}"])
        h.run(user="bob", tags=["bobs"])
        state = State(HelloFlow, FlowGraph(HelloFlow))
        state.mfdb = str(h.path)
        seen: list[str] = []
        with state.store().tracer(lambda sql, params, seen=seen: seen.append(sql)):
            out = CliRunner().invoke(make_cli(HelloFlow), ["tag", "list", *options], obj=state)
        assert out.exit_code == 0, out.output
        shown = out.output
        assert all(f"t{i}" in shown for i in range(size))
        assert ("bobs" in shown) == (options != ["--my-runs"])
        results.append(len(seen))
        state.store().close()
    assert results[0] == results[1]


def test_tasks_of_one_iteration_find_what_a_task_alone_finds(histories) -> None:
    h = histories("alone")
    pathspec = fan_out(h, N)
    running = h.writer.add_task(h.last_run, "fan")
    h.writer.begin_attempt(running, 0)
    for t in Step(pathspec):
        alone = Task(t.pathspec)
        assert [a.id for a in t] == [a.id for a in alone]
        if t.finished:
            assert t.data.x == alone.data.x
        for name in ("x", "missing", "_task_ok"):
            assert (name in t) == (name in alone)
            if name in alone:
                assert t[name].data == alone[name].data and t[name].sha == alone[name].sha
            else:
                with pytest.raises(KeyError):
                    t[name]
    # the running task's artifacts appear once its attempt ends
    tasks = {t.id: t for t in Step(pathspec)}
    h.writer.end_attempt(
        running, 0, artifacts=prepare_artifacts({"x": 99}), task_ok=True, success=True
    )
    assert tasks[running.task_id]["x"].data == 99


@pytest.mark.parametrize("by_id", [False, True])
def test_flow_tag_list_reads_without_a_writer(histories, monkeypatch, by_id: bool) -> None:
    """``tag list`` reads through mfstore.query and the store: no ``Writer`` is made."""
    from click.testing import CliRunner

    from mfstore.runtime.cli import make_cli
    from mfstore.runtime.cli_common import State
    from mfstore.runtime.graph import FlowGraph
    from mfstore.writer import Writer

    h = histories("tags_read")
    run = h.run(tags=["mine"])
    state = State(HelloFlow, FlowGraph(HelloFlow))
    state.mfdb = str(h.path)

    def no_writer(*args: object, **kwargs: object) -> None:
        raise AssertionError("tag list made a Writer")

    monkeypatch.setattr(Writer, "__init__", no_writer)
    options = ["--run-id", run.run_number] if by_id else ["--all"]
    out = CliRunner().invoke(make_cli(HelloFlow), ["tag", "list", *options], obj=state)
    state.store().close()
    assert out.exit_code == 0, out.output
    assert "mine" in out.output

"""Graph parsing and checks, in process (no runs)."""

from __future__ import annotations

import pytest

from mfstore.exception import FlowGraphError, UnsupportedFeature
from mfstore.runtime import FlowSpec, retry, step
from mfstore.runtime.graph import FlowGraph


class NestedFlow(FlowSpec):
    """A doc."""

    @step
    def start(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.fe, foreach="xs")

    @step
    def fe(self):
        self.next(self.fe_join)

    @step
    def fe_join(self, inputs):
        self.next(self.join)

    @retry(times=2)
    @step
    def b(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class CustomEndpoints(FlowSpec):
    @step(start=True)
    def begin(self):
        self.next(self.finish)

    @step(end=True)
    def finish(self):
        pass


class LoopFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.a)

    @step
    def a(self):
        self.next(self.b)

    @step
    def b(self):
        self.next(self.a)

    @step
    def end(self):
        pass


class JoinNoSplit(FlowSpec):
    @step
    def start(self):
        self.next(self.j)

    @step
    def j(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class OpenSplit(FlowSpec):
    @step
    def start(self):
        self.next(self.a, self.end)

    @step
    def a(self):
        self.next(self.end)

    @step
    def end(self):
        pass


def test_types_and_matching_joins() -> None:
    g = FlowGraph(NestedFlow)
    g.check()
    assert {n.name: n.info_type for n in g} == {
        "start": "split-static",
        "a": "split-foreach",
        "fe": "linear",
        "fe_join": "join",
        "b": "linear",
        "join": "join",
        "end": "end",
    }
    assert g["start"].matching_join == "join" and g["a"].matching_join == "fe_join"
    assert g["join"].in_funcs == ["b", "fe_join"]


def test_graph_info() -> None:
    info = FlowGraph(NestedFlow).graph_info([], [])
    assert info["graph_structure"] == ["start", [["a", [["fe"]], "fe_join"], ["b"]], "join", "end"]
    assert info["steps"]["a"]["foreach_artifact"] == "xs"
    assert info["steps"]["b"]["decorators"] == [
        {
            "name": "retry",
            "attributes": {"times": 2, "minutes_between_retries": "2"},
            "statically_defined": True,
            "inserted_by": None,
        }
    ]
    assert info["doc"] == "A doc." and info["start_step"] == "start" and info["end_step"] == "end"


def test_custom_endpoints() -> None:
    g = FlowGraph(CustomEndpoints)
    g.check()
    assert (g.start_step, g.end_step) == ("begin", "finish")
    assert g["begin"].type == "start" and g["finish"].type == "end"


@pytest.mark.parametrize(
    "cls, message",
    [
        (LoopFlow, "There is a loop in your flow: *b->a->b*"),
        (
            JoinNoSplit,
            "Step *j* seems like a join step (it takes an extra input argument) but it is not preceded by a split.",
        ),
        (
            OpenSplit,
            "The terminal step *end* was reached before a split started at step(s) *a, end* were joined.",
        ),
    ],
)
def test_check_errors(cls, message) -> None:
    with pytest.raises(FlowGraphError) as exc:
        FlowGraph(cls).check()
    assert message in str(exc.value)
    assert "test_graph.py line" in str(exc.value)


@pytest.mark.parametrize(
    ("name", "feature"),
    [
        ("FlowMutator", "mutating a flow"),
        ("StepMutator", "mutating a step"),
        ("UserStepDecorator", "user-defined step decorators"),
    ],
)
def test_metaflow_mutator_names_import_and_refuse_use(name: str, feature: str) -> None:
    import mfstore.runtime

    base = getattr(mfstore.runtime, name)

    class Mine(base):  # a flow subclasses them: allowed
        pass

    with pytest.raises(UnsupportedFeature, match=f"^Mine: {feature} .*not supported"):
        Mine()
    with pytest.raises(UnsupportedFeature):
        mfstore.runtime.user_step_decorator(lambda step_name, flow, inputs: None)

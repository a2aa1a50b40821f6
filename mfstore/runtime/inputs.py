"""What a step's code sees of its flow object beyond its own artifacts: ``Inputs`` (the
parent flows of a join step) and the attributes that are never artifacts (``EPHEMERAL``).

Apart from ``flowspec`` so that the task process (``runtime/task.py``) needs only these,
not ``FlowSpec``'s module, which runs the command line and so imports the runtime above
(nothing in the runtime imports ``flowspec``: the flow objects are the user's classes).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: Attributes of a flow object that are never persisted as artifacts.
EPHEMERAL = frozenset(
    {
        "_datastore",
        "_cached_input",
        "_graph",
        "_passdown",
        "_steps",
        "_input_refs",
        "_loaded_refs",
        "_step_funcs",
    }
)


class Inputs:
    """The inputs of a join step: iterate them, index them, or get one by step name
    (``inputs.a``). Each is the flow object (a ``FlowSpec``) of one parent task, whose
    attributes are that task's artifacts."""

    def __init__(self, flows: list[Any]) -> None:
        self.flows = flows
        for flow in flows:
            step = flow.__dict__.get("_current_step")
            if step:
                setattr(self, step, flow)

    def __getitem__(self, idx: int) -> Any:
        return self.flows[idx]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.flows)

    def __len__(self) -> int:
        return len(self.flows)

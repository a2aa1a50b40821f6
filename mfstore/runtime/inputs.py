"""What a step's code sees of its flow object beyond its own artifacts: ``Inputs`` (the
parent flows of a join step) and the attributes that are never artifacts (``EPHEMERAL``).

Apart from ``flowspec`` so that the task process (``runtime/task.py``) needs only these,
not ``FlowSpec``'s module, which runs the command line and so imports the runtime above.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .flowspec import FlowSpec

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
    (``inputs.a``)."""

    def __init__(self, flows: list[FlowSpec]) -> None:
        self.flows = flows
        for flow in flows:
            step = flow.__dict__.get("_current_step")
            if step:
                setattr(self, step, flow)

    def __getitem__(self, idx: int) -> FlowSpec:
        return self.flows[idx]

    def __iter__(self) -> Iterator[FlowSpec]:
        return iter(self.flows)

    def __len__(self) -> int:
        return len(self.flows)

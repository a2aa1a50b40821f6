"""Running flows: FlowSpec, steps, decorators, parameters and ``current``; every run is
recorded into the .mfdb by the runtime process (see ``scheduler``)."""

from .current import current
from .decorators import catch, dask, retry, step
from .events import trigger, trigger_on_finish
from .flowspec import FlowSpec
from .parameters import JSONType, Parameter

__all__ = [
    "FlowSpec",
    "JSONType",
    "Parameter",
    "catch",
    "current",
    "dask",
    "retry",
    "step",
    "trigger",
    "trigger_on_finish",
]

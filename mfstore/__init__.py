"""mfstore: Metaflow's runs, artifacts and Client API in one SQLite file.

Example::

    from mfstore import Flow, namespace
    run = Flow("TeamCollabFlow").latest_successful_run
    print(run.id, run.data.choice)

The runtime names (``FlowSpec``, ``step``, ``current``, ``Parameter``, ``retry``,
``catch``, ``JSONType``, ``trigger``, ``trigger_on_finish``) are imported from ``mfstore.runtime`` on first use, so
``import mfstore`` stays light.
"""

from __future__ import annotations

from typing import Any

from .client import (
    DataArtifact,
    Flow,
    Metadata,
    Metaflow,
    MetaflowArtifacts,
    MetaflowCode,
    MetaflowData,
    MetaflowEvent,
    MetaflowTrigger,
    Run,
    Step,
    Task,
    default_metadata,
    default_namespace,
    get_metadata,
    get_namespace,
    metadata,
    namespace,
)

#: Names served lazily from ``mfstore.runtime`` (they pull in cloudpickle and friends).
_RUNTIME_NAMES = frozenset(
    {
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
    }
)

__all__ = [
    "DataArtifact",
    "Flow",
    "FlowSpec",
    "JSONType",
    "Metadata",
    "Metaflow",
    "MetaflowArtifacts",
    "MetaflowCode",
    "MetaflowData",
    "MetaflowEvent",
    "MetaflowTrigger",
    "Parameter",
    "Run",
    "Step",
    "Task",
    "catch",
    "current",
    "dask",
    "default_metadata",
    "default_namespace",
    "get_metadata",
    "get_namespace",
    "metadata",
    "namespace",
    "retry",
    "step",
    "trigger",
    "trigger_on_finish",
]


def __getattr__(name: str) -> Any:
    if name in _RUNTIME_NAMES:
        import importlib

        runtime = importlib.import_module(".runtime", __name__)
        value = getattr(runtime, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _RUNTIME_NAMES)

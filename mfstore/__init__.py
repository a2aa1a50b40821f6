"""mfstore: Metaflow's runs, artifacts and Client API in one SQLite file.

Example::

    from mfstore import Flow, namespace
    run = Flow("TeamCollabFlow").latest_successful_run
    print(run.id, run.data.choice)

The runtime names (``FlowSpec``, ``step``, ``current``, ``Parameter``, ``retry``,
``catch``, ``JSONType``, ``trigger``, ``trigger_on_finish``) are imported from ``mfstore.runtime``, and
the Client's (``Flow``, ``Run``, ``namespace`` ...) from ``mfstore.client``, on first use, so
``import mfstore`` stays light.

The package's namespace holds exactly ``__all__``: submodules (``mfstore.store``,
``mfstore.query`` ...) are reached as attributes or imports as usual, but are not
listed among its public names.
"""

import sys as _sys
import types as _types
from typing import TYPE_CHECKING as _TYPE_CHECKING


class _Package(_types.ModuleType):
    """The ``mfstore`` module: a submodule bound by the import system is kept aside
    (served by ``__getattr__``) instead of joining the public names."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, _types.ModuleType) and value.__name__ == f"{self.__name__}.{name}":
            _submodules[name] = value
            return
        super().__setattr__(name, value)


_submodules: dict[str, _types.ModuleType] = {}
_sys.modules[__name__].__class__ = _Package

#: Names served lazily from ``mfstore.client`` (it opens SQLite and compiles its
#: queries: Metaflow imports mfstore's plugin modules in every process it starts).
_CLIENT_NAMES = frozenset(
    {
        "DataArtifact",
        "Flow",
        "Metadata",
        "Metaflow",
        "MetaflowArtifacts",
        "MetaflowCode",
        "MetaflowData",
        "MetaflowEvent",
        "MetaflowTrigger",
        "Run",
        "Step",
        "Task",
        "default_metadata",
        "default_namespace",
        "get_metadata",
        "get_namespace",
        "metadata",
        "namespace",
    }
)

if _TYPE_CHECKING:  # type checkers see the Client's names where they live
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
        "Config",
        "ConfigValue",
        "config_expr",
        "FlowMutator",
        "FlowSpec",
        "IncludeFile",
        "JSONType",
        "Parameter",
        "StepMutator",
        "UserStepDecorator",
        "batch",
        "card",
        "catch",
        "conda",
        "conda_base",
        "current",
        "environment",
        "kubernetes",
        "parallel",
        "project",
        "pypi",
        "pypi_base",
        "resources",
        "dask",
        "retry",
        "schedule",
        "secrets",
        "step",
        "timeout",
        "trigger",
        "trigger_on_finish",
        "user_step_decorator",
    }
)

__all__ = [
    "Config",
    "ConfigValue",
    "DataArtifact",
    "Flow",
    "FlowMutator",
    "FlowSpec",
    "IncludeFile",
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
    "StepMutator",
    "Task",
    "UserStepDecorator",
    "batch",
    "card",
    "catch",
    "conda",
    "conda_base",
    "config_expr",
    "current",
    "dask",
    "default_metadata",
    "default_namespace",
    "environment",
    "get_metadata",
    "get_namespace",
    "kubernetes",
    "metadata",
    "namespace",
    "parallel",
    "project",
    "pypi",
    "pypi_base",
    "resources",
    "retry",
    "schedule",
    "secrets",
    "step",
    "timeout",
    "trigger",
    "trigger_on_finish",
    "user_step_decorator",
]


def __getattr__(name: str) -> object:
    if name in _submodules:
        return _submodules[name]
    if name in _RUNTIME_NAMES or name in _CLIENT_NAMES:
        import importlib

        home = importlib.import_module(
            ".runtime" if name in _RUNTIME_NAMES else ".client", __name__
        )
        value = getattr(home, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({n for n in globals() if not n.startswith("_")} | _RUNTIME_NAMES | _CLIENT_NAMES)

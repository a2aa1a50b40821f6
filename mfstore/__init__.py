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

#: Where each public name lives; it is imported from there on first use, so
#: ``import mfstore`` stays light: the Client opens SQLite and compiles its queries, the
#: runtime pulls in cloudpickle and friends, and Metaflow imports mfstore's plugin modules
#: in every process it starts.
_HOMES: dict[str, str] = {
    "Config": "runtime",
    "ConfigValue": "runtime",
    "DataArtifact": "client",
    "Flow": "client",
    "FlowMutator": "runtime",
    "FlowSpec": "runtime",
    "IncludeFile": "runtime",
    "JSONType": "runtime",
    "Metadata": "client",
    "Metaflow": "client",
    "MetaflowArtifacts": "client",
    "MetaflowCode": "client",
    "MetaflowData": "client",
    "MetaflowEvent": "client",
    "MetaflowTrigger": "client",
    "Parameter": "runtime",
    "Run": "client",
    "Step": "client",
    "StepMutator": "runtime",
    "Task": "client",
    "UserStepDecorator": "runtime",
    "batch": "runtime",
    "card": "runtime",
    "catch": "runtime",
    "conda": "runtime",
    "conda_base": "runtime",
    "config_expr": "runtime",
    "current": "runtime",
    "dask": "runtime",
    "default_metadata": "client",
    "default_namespace": "client",
    "environment": "runtime",
    "get_metadata": "client",
    "get_namespace": "client",
    "kubernetes": "runtime",
    "metadata": "client",
    "namespace": "client",
    "parallel": "runtime",
    "project": "runtime",
    "pypi": "runtime",
    "pypi_base": "runtime",
    "resources": "runtime",
    "retry": "runtime",
    "schedule": "runtime",
    "secrets": "runtime",
    "step": "runtime",
    "timeout": "runtime",
    "trigger": "runtime",
    "trigger_on_finish": "runtime",
    "user_step_decorator": "runtime",
}

if _TYPE_CHECKING:  # type checkers see the Client's names where they live (re-exported)
    from .client import (
        DataArtifact as DataArtifact,
        Flow as Flow,
        Metadata as Metadata,
        Metaflow as Metaflow,
        MetaflowArtifacts as MetaflowArtifacts,
        MetaflowCode as MetaflowCode,
        MetaflowData as MetaflowData,
        MetaflowEvent as MetaflowEvent,
        MetaflowTrigger as MetaflowTrigger,
        Run as Run,
        Step as Step,
        Task as Task,
        default_metadata as default_metadata,
        default_namespace as default_namespace,
        get_metadata as get_metadata,
        get_namespace as get_namespace,
        metadata as metadata,
        namespace as namespace,
    )

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> object:
    if name in _submodules:
        return _submodules[name]
    home = _HOMES.get(name)
    if home is not None:
        import importlib

        value = getattr(importlib.import_module(f".{home}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({n for n in globals() if not n.startswith("_")} | set(_HOMES))

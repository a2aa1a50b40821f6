"""Executors: what runs a task attempt for the scheduler loop.

The loop (``mfstore.runtime.scheduler``) decides *what* runs and records every result in
the .mfdb; an executor decides *where*. It gets a ``TaskSpec`` (plain data) and reports
back, through ``poll``, the attempt's output lines while it runs and then its
``TaskResult`` (artifacts already pickled, hashed and compressed). Executors never
write the .mfdb.

Two implementations: ``LocalExecutor`` (a forked process per attempt on this machine)
and ``DaskExecutor`` (a task per attempt on a Dask cluster; ``--with dask`` or
``@dask``). Another engine (Ray, ...) is one more subclass of ``Executor``.
"""

from __future__ import annotations

from typing import Any

from .base import Executor, TaskDone, TaskLines

__all__ = ["Executor", "TaskDone", "TaskLines", "check_executors", "make_executor"]


def check_executors(graph: Any) -> None:
    """Before a run starts: the engines its steps' executor decorators name are installed."""
    from ..decorators import EXECUTOR_DECORATORS, get_decorator

    kinds = {k for node in graph for k in EXECUTOR_DECORATORS if get_decorator(node.func, k)}
    if "dask" in kinds:
        from .dask_executor import import_dask

        import_dask()


def make_executor(kind: str, options: dict[str, Any], context: dict[str, Any]) -> Executor:
    """The executor for a decorator name (``dask``) and its options."""
    if kind == "dask":
        from .dask_executor import DaskExecutor

        return DaskExecutor(options, context)
    from mfstore.exception import CommandException

    raise CommandException(f"Unknown executor {kind!r}: use dask")

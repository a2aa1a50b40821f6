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

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..task import TaskResult, TaskSpec

__all__ = ["Executor", "TaskDone", "TaskLines", "check_executors", "make_executor"]


@dataclass
class TaskLines:
    """Output lines of a running attempt: ``[(epoch microseconds, text), ...]``."""

    key: int
    stream: str
    lines: list[tuple[int, str]]
    label: str | None = None
    """A newer console label for the attempt (e.g. once a remote worker reports a pid)."""


@dataclass
class TaskDone:
    """An attempt ended: its ``result``, or None with ``why`` it left no result."""

    key: int
    result: TaskResult | None
    why: str = ""
    label: str | None = None


Event = TaskLines | TaskDone


class Executor(ABC):
    """Runs task attempts somewhere and reports their lines and results.

    The scheduler calls ``submit`` for each attempt (at most ``--max-workers`` in
    flight over all executors) and ``poll`` in a loop; each submitted key gets any
    number of ``TaskLines`` followed by exactly one ``TaskDone``.
    """

    #: Shown in the task prefix instead of a pid until the executor knows one.
    name = "executor"

    @abstractmethod
    def submit(self, key: int, spec: TaskSpec) -> str:
        """Start one attempt; return a label for the console prefix (e.g. ``pid 42``)."""

    @abstractmethod
    def poll(self, timeout: float) -> list[TaskLines | TaskDone]:
        """Wait up to ``timeout`` seconds for events of submitted attempts."""

    @abstractmethod
    def cancel_all(self) -> list[TaskLines | TaskDone]:
        """Stop every attempt in flight (bounded wait); return their last lines."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release what the executor holds (connections, clusters, temp dirs)."""

    @property
    def in_flight(self) -> int:
        """How many submitted attempts have not reported ``TaskDone`` yet."""
        return 0


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

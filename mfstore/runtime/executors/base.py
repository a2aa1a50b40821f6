"""What every executor is and reports: the ``Executor`` interface and its events
(``TaskLines``, ``TaskDone``); see the package docstring."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..task import TaskResult, TaskSpec

__all__ = ["Event", "Executor", "TaskDone", "TaskLines"]


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

"""``Step``: the tasks that executed one step of a run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .. import query
from ._object import MetaflowObject, ms_to_datetime
from .lineage import checked_graph_info, previous_steps

if TYPE_CHECKING:
    from datetime import datetime

    from .task import Task

#: Metaflow's ``CONTROL_TASK_TAG`` (parallel / unbounded foreach control tasks).
CONTROL_TASK_TAG = "control_task"


class Step(MetaflowObject["Task"]):
    """
    A `Step` represents a user-defined step, that is, a method annotated with the `@step` decorator.

    It contains `Task` objects associated with the step, that is, all executions of the
    `Step`. The step may contain multiple `Task`s in the case of a foreach step.

    Attributes
    ----------
    task : Task
        The first `Task` object in this step. This is a shortcut for retrieving the only
        task contained in a non-foreach step.
    finished_at : datetime
        Time when the latest `Task` of this step finished. Note that in the case of foreaches,
        this time may change during execution of the step.
    environment_info : Dict[str, Any]
        Information about the execution environment.
    """

    _NAME = "step"
    _DEPTH = 3
    _EXPECTS = "Expects Step('FlowName/RunID/StepName')"

    def _lookup(self, ids: list[str]) -> tuple[Any, ...] | None:
        return self._store.one(*query.compile_step_lookup(ids[0], ids[1], ids[2]))

    def _init_row(self, row: tuple[Any, ...]) -> None:
        self._run_pk, self._tagset_id, self._ts = row

    def _child_rows(self) -> list[tuple[Any, ...]]:
        rows = self._store.query(*query.compile_tasks(self._run_pk, self.id))  # type: ignore[arg-type]
        return [(r[3], self._run_pk, self._tagset_id, r[0], r[1], r[2]) for r in rows]

    def _child_row(self, id: str) -> tuple[Any, ...] | None:
        r = self._store.one(*query.compile_tasks(self._run_pk, self.id, id))  # type: ignore[arg-type]
        return None if r is None else (self._run_pk, self._tagset_id, r[0], r[1], r[2])

    @property
    def task(self) -> Task | None:
        """
        Returns a Task object belonging to this step: the most recently created one.

        This is useful when the step only contains one task (a linear step for example).

        Returns
        -------
        Task
            A task in the step
        """
        for t in self:
            return t
        return None

    def tasks(self, *tags: str) -> Iterator[Task]:
        """
        [Legacy function - do not use] An alias of iterating the step:
        ``list(Step(...)) == list(Step(...).tasks())``, as ``Run.steps`` is for runs.
        ``tags`` are ignored (legacy functionality).

        Yields
        ------
        Task
            `Task` objects in this step.
        """
        return self._filtered_children(*tags)

    @property
    def control_task(self) -> Task | None:
        """
        [Unpublished API - use with caution!]

        Returns a Control Task object belonging to this step.
        This is useful when the step only contains one control task.

        Returns
        -------
        Task
            A control task in the step
        """
        return next(self.control_tasks(), None)

    def control_tasks(self, *tags: str) -> Iterator[Task]:
        """
        [Unpublished API - use with caution!]

        Returns an iterator over all the control tasks in the step.
        An optional filter is available that allows you to filter on tags. The
        control tasks returned if the filter is specified will contain all the
        tags specified.

        Parameters
        ----------
        tags : str
            Tags to match

        Yields
        ------
        Task
            Control Task objects for this step
        """
        mine = self.tags  # a task carries its run's tags
        if not all(tag in mine for tag in tags):
            return
        if CONTROL_TASK_TAG in mine:
            yield from self
            return
        rows = self._store.query(
            *query.compile_tasks_with_value(
                self._run_pk,  # type: ignore[arg-type]
                self.id,
                "internal_task_type",
                CONTROL_TASK_TAG,
            )
        )
        yield from self._make_tasks(
            [(r[3], self._run_pk, self._tagset_id, r[0], r[1], r[2]) for r in rows]
        )

    def _make_tasks(self, rows: list[tuple[Any, ...]]) -> Iterator[Task]:
        """Tasks from ``_child_rows``-shaped rows, sharing one ``TaskGroup``."""
        from .task import Task, read_together

        return iter(read_together([Task._from_row(self, row[0], row[1:]) for row in rows]))

    def __iter__(self) -> Iterator[Task]:
        """
        Iterate over all children Task of this Step (newest first)

        Yields
        ------
        Task
            A Task in this Step

        The tasks of one iteration read their artifacts together: the first
        ``task[name]`` reads artifact ``name`` of all of them in one statement (and
        ``.data`` their small values). A task that had finished then keeps showing
        that attempt; make ``Task(pathspec)`` again to see a later retry.
        """
        return self._make_tasks(self._child_rows())

    @property
    def finished_at(self) -> datetime | None:
        """
        Returns the datetime object of when the step finished (successfully or not).

        A step is considered finished when all the tasks that belong to it have
        finished. This call will return None if the step has not finished

        Returns
        -------
        datetime
            Datetime of when the step finished
        """
        row = self._store.one(
            *query.compile_step_finished(self._run_pk, self.id)  # type: ignore[arg-type]
        )
        tasks, done, latest = row if row is not None else (0, 0, None)
        if not tasks or done < tasks:
            return None
        return ms_to_datetime(latest)

    @property
    def environment_info(self) -> dict[str, Any] | None:
        """
        Returns information about the environment that was used to execute this step. As an
        example, if the Conda environment is selected, this will return information about the
        dependencies that were used in the environment.

        This environment information is only available for steps that have tasks
        for which the code package has been saved.

        Returns
        -------
        Dict[str, Any], optional
            Dictionary describing the environment
        """
        for t in self:
            return t.environment_info
        return None

    @property
    def parent_steps(self) -> Iterator[Step]:
        """
        Yields parent steps for the current step.

        Yields
        ------
        Step
            Parent step
        """
        graph_info = self._graph_info()
        if self.id != graph_info.get("start_step", "start"):
            for name in previous_steps(graph_info, self.id):
                yield self._sibling(name)

    @property
    def child_steps(self) -> Iterator[Step]:
        """The steps this step's ``self.next()`` goes to (none for the end step):
        the counterpart of ``parent_steps``."""
        graph_info = self._graph_info()
        end_step = graph_info.get("end_step", "end")
        if self.id != end_step:
            for next_step in graph_info["steps"][self.id]["next"]:
                yield self._sibling(next_step)

    def _graph_info(self) -> dict[str, Any]:
        """The run's graph, read from a task of this step."""
        task = self.task
        assert task is not None
        info = task["_graph_info"].navigation_value()  # KeyError when absent, as Metaflow
        return checked_graph_info(info, task.pathspec, self._store.path)

    def _sibling(self, name: str) -> Step:
        from ._object import metadata_str

        flow, run, _ = self._components
        return Step(
            f"{flow}/{run}/{name}",
            _namespace_check=False,
            _current_metadata=metadata_str(self._store),
        )

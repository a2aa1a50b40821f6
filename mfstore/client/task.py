"""``Task``: one execution of a step: artifacts, attempts, metadata, logs, lineage."""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import query
from ._batch import UNKNOWN
from ._object import MetaflowObject, ms_to_datetime
from .data import Metadata, MetaflowArtifacts, MetaflowData
from .lineage import TaskLineage, checked_graph_info
from .task_logs import TaskLogs

if TYPE_CHECKING:
    from ._batch import TaskGroup
    from .artifact import DataArtifact
    from .code import MetaflowCode


class Task(TaskLogs, TaskLineage, MetaflowObject["DataArtifact"]):
    """
    A `Task` represents an execution of a `Step`.

    It contains all `DataArtifact` objects produced by the task as
    well as metadata related to execution.

    Note that the `@retry` decorator may cause multiple attempts of
    the task to be present. Usually you want the latest attempt, which
    is what instantiating a `Task` object returns by default. If
    you need to e.g. retrieve logs from a failed attempt, you can
    explicitly get information about a specific attempt by using the
    following syntax when creating a task:

    `Task('flow/run/step/task', attempt=<attempt>)`

    where `attempt=0` corresponds to the first attempt etc.

    Attributes
    ----------
    metadata : List[Metadata]
        List of all metadata events associated with the task.
    metadata_dict : Dict[str, str]
        A condensed version of `metadata`: A dictionary where keys
        are names of metadata events and values the latest corresponding event.
    data : MetaflowData
        Container of all data artifacts produced by this task. Note that this
        call downloads all data locally, so it can be slower than accessing
        artifacts individually. See `MetaflowData` for more information.
    artifacts : MetaflowArtifacts
        Container of `DataArtifact` objects produced by this task.
    successful : bool
        True if the task completed successfully.
    finished : bool
        True if the task completed (successfully or not).
    exception : object
        Exception raised by this task if there was one.
    finished_at : datetime
        Time this task finished.
    runtime_name : str
        Runtime this task was executed on.
    stdout : str
        Standard output for the task execution.
    stderr : str
        Standard error output for the task execution.
    code : MetaflowCode
        Code package for this task (if present). See `MetaflowCode`.
    environment_info : Dict[str, str]
        Information about the execution environment.
    """

    _NAME = "task"
    _DEPTH = 4
    _EXPECTS = "Expects Task('FlowName/RunID/StepName/TaskID')"

    _task_pk: int
    _origin_task_pk: int | None
    #: Set on the tasks one iteration of a Step yields (reads shared by all of them).
    _group: TaskGroup | None = None

    def _lookup(self, ids: list[str]) -> tuple[Any, ...] | None:
        return self._store.one(*query.compile_task_lookup(ids[0], ids[1], ids[2], ids[3]))

    def _shared_value(self, sha: str) -> bytes | None:
        return None if self._group is None else self._group.value(sha)

    def _init_row(self, row: tuple[Any, ...]) -> None:
        self._run_pk, self._tagset_id, self._task_pk, self._ts, self._origin_task_pk = row

    # -- attempts -------------------------------------------------------------------

    def _done_attempt(self) -> int | None:
        """The attempt whose artifacts this task shows: ``attempt=`` or the latest done one."""
        if self._attempt is not None:
            return self._attempt
        return self._store.scalar(*query.compile_done_attempt(self._task_pk))  # type: ignore[no-any-return]

    def _attempt_row(self) -> tuple[Any, ...] | None:
        """``(attempt, started_at, ended_at, task_ok, success)`` of the attempt shown."""
        return self._store.one(*query.compile_attempt(self._task_pk, self._attempt))

    @property
    def current_attempt(self) -> int:
        """
        Get the relevant attempt for this Task.

        Returns the specific attempt used when
        initializing the instance, or the latest *started* attempt for the Task.

        Returns
        -------
        int
            attempt id for this task object
        """
        if self._attempt is not None:
            return self._attempt
        started = self._store.scalar(*query.compile_started_attempt(self._task_pk))
        return 0 if started is None else int(started)

    # -- artifacts ------------------------------------------------------------------

    def _child_rows(self) -> list[tuple[Any, ...]]:
        if self._group is not None and self._attempt is None:
            found = self._group.artifacts(self._task_pk)
            if found is not UNKNOWN:
                return [
                    (name, self._run_pk, self._tagset_id, self._task_pk, attempt, sha, typ, ts)
                    for name, attempt, sha, typ, ts in found
                ]
        attempt = self._done_attempt()
        if attempt is None:
            return []
        rows = self._store.query(*query.compile_artifacts(self._task_pk, attempt))
        return [
            (name, self._run_pk, self._tagset_id, self._task_pk, attempt, sha, typ, ts)
            for name, sha, typ, ts in rows
        ]

    def _child_row(self, id: str) -> tuple[Any, ...] | None:
        if self._group is not None and self._attempt is None:
            found = self._group.artifact(self._task_pk, id)
            if found is not UNKNOWN:
                return (
                    None
                    if found is None
                    else (self._run_pk, self._tagset_id, self._task_pk, *found)
                )
        attempt = self._done_attempt()
        if attempt is None:
            return None
        r = self._store.one(*query.compile_artifacts(self._task_pk, attempt, id))
        return (
            None if r is None else (self._run_pk, self._tagset_id, self._task_pk, attempt, *r[1:])
        )

    def _iter_filter(self, child_id: str) -> bool:
        # exclude private data artifacts
        return not child_id.startswith("_")

    def __iter__(self) -> Iterator[DataArtifact]:
        """
        Iterate over all children DataArtifact of this Task (private ``_`` names hidden)

        Yields
        ------
        DataArtifact
            A DataArtifact in this Step
        """
        return super().__iter__()

    def _value(self, name: str, default: Any) -> Any:
        """One of the runtime's own artifacts, read for navigation: JSON or the
        restricted loader, never the full unpickler (docs/security.md)."""
        try:
            art = self[name]
        except KeyError:
            return default
        return art.navigation_value()

    def _graph_info(self) -> dict[str, Any]:
        # KeyError when the artifact is absent, as Metaflow.
        info = self["_graph_info"].navigation_value()
        return checked_graph_info(info, self.pathspec, self._store.path)

    @property
    def data(self) -> MetaflowData:
        """
        Returns a container of data artifacts produced by this task.

        You can access data produced by this task as follows:
        ```
        print(task.data.my_var)
        ```

        Returns
        -------
        MetaflowData
            Container of all artifacts produced by this task
        """
        return MetaflowData(self)

    @property
    def artifacts(self) -> MetaflowArtifacts:
        """
        Returns a container of DataArtifacts produced by this task.

        You can access each DataArtifact by name like so:
        ```
        print(task.artifacts.my_var)
        ```
        This method differs from data() because it returns DataArtifact objects
        (which contain additional metadata) as opposed to just the data.

        Returns
        -------
        MetaflowArtifacts
            Container of all DataArtifacts produced by this task
        """
        arts = list(self)
        obj = namedtuple("MetaflowArtifacts", [art.id for art in arts])  # type: ignore[misc]
        return obj._make(arts)

    @property
    def successful(self) -> bool:
        """
        Indicates whether or not the task completed successfully.

        This information is always about the latest task to have completed (in case
        of retries).

        Returns
        -------
        bool
            True if the task completed successfully and False otherwise
        """
        row = self._attempt_row()
        return bool(row is not None and row[2] is not None and row[4])

    @property
    def finished(self) -> bool:
        """
        Indicates whether or not the task completed.

        True once the task has ended, whether or not it was successful. This
        information is always about the latest task to have completed (in case of
        retries).

        Returns
        -------
        bool
            True if the task completed and False otherwise
        """
        row = self._attempt_row()
        return bool(row is not None and row[2] is not None)

    @property
    def exception(self) -> Any | None:
        """
        Returns the exception that caused the task to fail, if any.

        This information is always about the latest task to have completed (in case
        of retries). If successful() returns False and finished() returns True,
        this method can help determine what went wrong.

        Returns
        -------
        object
            Exception raised by the task or None if not applicable
        """
        return self._value("_exception", None)

    @property
    def finished_at(self) -> datetime | None:
        """
        Returns the datetime object of when the task finished (successfully or not).

        This information is always about the latest task to have completed (in case
        of retries). This call will return None if the task is not finished.

        Returns
        -------
        datetime
            Datetime of when the task finished
        """
        row = self._attempt_row()
        return None if row is None else ms_to_datetime(row[2])

    @property
    def index(self) -> int | None:
        """
        Returns the index of the innermost foreach loop if this task is run inside at least
        one foreach.

        The index is what distinguishes the various tasks inside a given step.
        This call returns None if this task was not run in a foreach loop.

        Returns
        -------
        int, optional
            Index in the innermost loop for this task
        """
        stack = self._value("_foreach_stack", None)
        if not stack:
            return None
        frame = stack[-1]
        # JSON: [step, var, num_splits, index, value]; restricted loader: a ForeachFrame.
        index = frame[3] if isinstance(frame, (list, tuple)) and len(frame) > 3 else None
        if isinstance(index, bool) or not isinstance(index, int):
            from ..exception import MetaflowDataCorruption

            raise MetaflowDataCorruption(
                f"task {self.pathspec} has a damaged foreach stack in {self._store.path}"
            )
        return index

    @property
    def runtime_name(self) -> str | None:
        """
        Returns the name of the runtime this task executed on.

        Returns
        -------
        str
            Name of the runtime this task executed on
        """
        for t in self.tags:
            if t.startswith("runtime:"):
                return t.split(":")[1]
        return None

    # -- metadata -------------------------------------------------------------------

    def _metadata_rows(self, task_pk: int, attempt: int | None) -> list[Metadata]:
        return [
            Metadata(name, json.loads(value) if is_json else value, ts, typ, self)
            for name, value, is_json, ts, typ, _attempt in self._store.query(
                *query.compile_metadata(task_pk, attempt)
            )
        ]

    @property
    def metadata(self) -> list[Metadata]:
        """
        Metadata events produced by this task across all attempts of the task
        *except* if you selected a specific task attempt.

        Note that Metadata is different from tags.

        Returns
        -------
        List[Metadata]
            Metadata produced by this task
        """
        result = self._metadata_rows(self._task_pk, self._attempt)
        if self._origin_task_pk is not None:
            # A clone (resume) has the metadata of its origin for names it lacks.
            existing = {m.name for m in result}
            latest = {
                m.name: m
                for m in sorted(
                    self._metadata_rows(self._origin_task_pk, None), key=lambda m: m.created_at
                )
            }
            for m in latest.values():
                if m.name not in existing:
                    result.append(m._replace(task=self))
        return result

    @property
    def metadata_dict(self) -> dict[str, Any]:
        """
        Dictionary mapping metadata names (keys) and their associated values.

        Note that unlike the metadata() method, this call will only return the latest
        metadata for a given name. For example, if a task executes multiple times (retries),
        the same metadata name will be generated multiple times (one for each execution of the
        task). The metadata() method returns all those metadata elements whereas this call will
        return the metadata associated with the latest execution of the task.

        Returns
        -------
        Dict[str, str]
            Dictionary mapping metadata name with value
        """
        return {m.name: m.value for m in sorted(self.metadata, key=lambda m: m.created_at)}

    # -- code -----------------------------------------------------------------------

    @property
    def code(self) -> MetaflowCode | None:
        """
        Returns the MetaflowCode object for this task, if present (the run's code package).

        Returns
        -------
        MetaflowCode
            Code package for this task
        """
        sha = self._store.scalar(*query.compile_run_fields(self._run_pk, query.RunFields.CODE))
        if sha is None:
            return None
        from .code import MetaflowCode

        return MetaflowCode(self._store, sha, flow_name=self._components[0])

    @property
    def environment_info(self) -> dict[str, Any] | None:
        """
        Returns information about the environment that was used to execute this task. As an
        example, if the Conda environment is selected, this will return information about the
        dependencies that were used in the environment.

        This environment information is only available for tasks that have a code package.

        Returns
        -------
        Dict
            Dictionary describing the environment
        """
        code = self.code
        if code is None:
            return None
        env = code.info.get("environment_info")
        return env if isinstance(env, dict) else None

    # -- lineage --------------------------------------------------------------------

    @property
    def origin_pathspec(self) -> str | None:
        """
        The pathspec of the task this task was cloned from (resume); None otherwise.

        Returns:
            str, optional
                pathspec of the origin task.
        """
        if self._origin_task_pk is None:
            return None
        row = self._store.one(*query.compile_task_pathspec(self._origin_task_pk))
        return None if row is None else "/".join(row)


__all__ = ["Task"]


def read_together(tasks: list[Task]) -> list[Task]:
    """``tasks`` (of one step, read together) sharing one ``TaskGroup``: the artifacts of
    all of them are read with a few statements when the first is asked for."""
    from ._batch import TaskGroup

    if tasks:
        group = TaskGroup(tasks[0]._store, [t._task_pk for t in tasks])
        for t in tasks:
            t._group = group
    return tasks

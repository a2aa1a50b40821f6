"""A task's lineage: the pathspecs and tasks before and after it in the run's graph
(``Task.parent_tasks``, ``Task.child_tasks`` and their pathspecs)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Self, cast

from .. import query
from ..exception import MetaflowDataCorruption
from ..store import Store
from ._guard import guard_class
from ._object import metadata_str

#: Metadata naming the foreach splits a task runs in (``step:index,...``).
_PATH_KEY = "foreach-execution-path"
_SPLITS = ("split-foreach", "split-parallel")


class TaskLineage:
    """The lineage part of ``Task`` (a mixin: reads the task's ``_store``, ``_run_pk``,
    ``_components``, ``metadata_dict`` and graph)."""

    _store: Store
    _run_pk: int | None
    _components: list[str]

    if TYPE_CHECKING:

        @property
        def metadata_dict(self) -> dict[str, Any]: ...

        def _graph_info(self) -> dict[str, Any]: ...

    def _get_matching_pathspecs(
        self, steps: list[str], metadata_key: str, metadata_pattern: str
    ) -> Iterator[str]:
        flow_id, run_id, _, _ = self._components
        regex = re.compile(metadata_pattern)
        for step in steps:
            if metadata_pattern == ".*":
                rows = self._store.query(*query.compile_task_ids(self._run_pk, step))  # type: ignore[arg-type]
                ids = [r[0] for r in rows]
            else:
                ids = []
                rows = self._store.query(
                    *query.compile_tasks_with_metadata(self._run_pk, step, metadata_key)  # type: ignore[arg-type]
                )
                for task_id, value in rows:
                    if task_id not in ids and regex.fullmatch(value):
                        ids.append(task_id)
            for task_id in ids:
                yield f"{flow_id}/{run_id}/{step}/{task_id}"

    def _neighbour_pathspecs(self, parents: bool) -> Iterator[str]:
        """Pathspecs of the parent (or child) tasks: the tasks of the previous (next)
        steps whose foreach execution path matches this task's (Metaflow's rules)."""
        step_name = self._components[2]
        current_path = self.metadata_dict.get(_PATH_KEY)
        graph_info = self._graph_info()
        graph = graph_info["steps"]
        steps = previous_steps(graph_info, step_name) if parents else list(graph[step_name]["next"])
        if not steps:
            return
        if len(steps) > 1 or not current_path:
            pattern = current_path or ".*"
        else:
            node_type, other_type = graph[step_name]["type"], graph[steps[0]]["type"]
            if parents:
                # a join's parents run one foreach deeper; a split's children one shallower
                deeper, shallower = node_type == "join", other_type in _SPLITS
            else:
                if len(previous_steps(graph_info, steps[0])) > 1:
                    other_type = "static-join"
                deeper, shallower = node_type in _SPLITS, other_type == "join"
            pattern = _path_pattern(current_path, deeper=deeper, shallower=shallower)
        yield from self._get_matching_pathspecs(steps, _PATH_KEY, pattern)

    @property
    def parent_task_pathspecs(self) -> Iterator[str]:
        """
        Yields pathspecs of all parent tasks of the current task.

        Yields
        ------
        str
            Pathspec of the parent task of the current task
        """
        return self._neighbour_pathspecs(parents=True)

    @property
    def child_task_pathspecs(self) -> Iterator[str]:
        """Pathspecs (str) of the tasks of the next steps that this task's output
        flows into: the counterpart of ``parent_task_pathspecs``."""
        return self._neighbour_pathspecs(parents=False)

    def _tasks(self, pathspecs: Iterator[str]) -> Iterator[Self]:
        # This mixin is part of Task: its own class makes the tasks (no import of
        # client.task back, which imports this module).
        task = cast("Callable[..., Self]", type(self))
        md = metadata_str(self._store)
        for pathspec in pathspecs:
            yield task(pathspec, _namespace_check=False, _current_metadata=md)

    @property
    def parent_tasks(self) -> Iterator[Self]:
        """
        Yields all parent tasks of the current task if one exists.

        Yields
        ------
        Task
            Parent task of the current task
        """
        return self._tasks(self.parent_task_pathspecs)

    @property
    def child_tasks(self) -> Iterator[Self]:
        """The ``Task`` of each of ``child_task_pathspecs``, in the same order."""
        return self._tasks(self.child_task_pathspecs)


def previous_steps(graph_info: dict[str, Any], step_name: str) -> list[str]:
    """The steps whose ``next`` names ``step_name`` (its parents in the graph), in the
    graph's order."""
    return [name for name, attrs in graph_info["steps"].items() if step_name in attrs["next"]]


def _path_pattern(path: str, *, deeper: bool, shallower: bool) -> str:
    """The foreach execution path (a regular expression) of the neighbour tasks of a
    task at ``path``: one level deeper, one shallower, or the same."""
    if deeper:
        return f"{path},.*"
    frames = path.split(",")
    if shallower:
        return ".*" if len(frames) == 1 else ",".join(frames[:-1])
    return path


guard_class(TaskLineage)


def checked_graph_info(info: Any, pathspec: str, path: object) -> dict[str, Any]:
    """A task's ``_graph_info`` value ``info``, checked to have the shape navigation
    needs (``pathspec`` and the file's ``path`` name the task in the error)."""
    steps = info.get("steps") if isinstance(info, dict) else None
    if not isinstance(steps, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("next", []), list) for v in steps.values()
    ):
        raise MetaflowDataCorruption(f"task {pathspec} has no usable graph information in {path}")
    checked: dict[str, Any] = info
    return checked

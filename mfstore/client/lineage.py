"""A task's lineage: the pathspecs and tasks before and after it in the run's graph
(``Task.parent_tasks``, ``Task.child_tasks`` and their pathspecs)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .. import query
from ..store import Store
from ._guard import guard_class
from ._object import metadata_str

if TYPE_CHECKING:
    from .task import Task


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

    @staticmethod
    def _get_previous_steps(graph_info: dict[str, Any], step_name: str) -> list[str]:
        return [name for name, attrs in graph_info["steps"].items() if step_name in attrs["next"]]

    @property
    def parent_task_pathspecs(self) -> Iterator[str]:
        """
        Yields pathspecs of all parent tasks of the current task.

        Yields
        ------
        str
            Pathspec of the parent task of the current task
        """
        step_name = self._components[2]
        metadata_dict = self.metadata_dict
        graph_info = self._graph_info()
        steps = self._get_previous_steps(graph_info, step_name)
        node_type = graph_info["steps"][step_name]["type"]
        metadata_key = "foreach-execution-path"
        current_path = metadata_dict.get(metadata_key)
        if len(steps) > 1:
            pattern = current_path or ".*"
        else:
            if not steps:
                return
            if not current_path:
                pattern = ".*"
            else:
                current_depth = len(current_path.split(","))
                if node_type == "join":
                    pattern = f"{current_path},.*"
                else:
                    parent_step_type = graph_info["steps"][steps[0]]["type"]
                    target_depth = current_depth
                    if (
                        parent_step_type in ("split-foreach", "split-parallel")
                        and current_depth == 1
                    ):
                        pattern = ".*"
                    else:
                        if parent_step_type in ("split-foreach", "split-parallel"):
                            target_depth = current_depth - 1
                        pattern = ",".join(current_path.split(",")[:target_depth])
        yield from self._get_matching_pathspecs(steps, metadata_key, pattern)

    @property
    def child_task_pathspecs(self) -> Iterator[str]:
        """
        Yields pathspecs of all child tasks of the current task.

        Yields
        ------
        str
            Pathspec of the child task of the current task
        """
        step_name = self._components[2]
        metadata_dict = self.metadata_dict
        graph_info = self._graph_info()
        steps = list(graph_info["steps"][step_name]["next"])
        node_type = graph_info["steps"][step_name]["type"]
        metadata_key = "foreach-execution-path"
        current_path = metadata_dict.get(metadata_key)
        if len(steps) > 1:
            pattern = current_path or ".*"
        else:
            if not steps:
                return
            if not current_path:
                pattern = ".*"
            else:
                current_depth = len(current_path.split(","))
                if node_type in ("split-foreach", "split-parallel"):
                    pattern = f"{current_path},.*"
                else:
                    child_step_type = graph_info["steps"][steps[0]]["type"]
                    if len(self._get_previous_steps(graph_info, steps[0])) > 1:
                        child_step_type = "static-join"
                    target_depth = current_depth
                    if child_step_type == "join" and current_depth == 1:
                        pattern = ".*"
                    else:
                        if child_step_type == "join":
                            target_depth = current_depth - 1
                        pattern = ",".join(current_path.split(",")[:target_depth])
        yield from self._get_matching_pathspecs(steps, metadata_key, pattern)

    @property
    def parent_tasks(self) -> Iterator[Any]:
        """
        Yields all parent tasks of the current task if one exists.

        Yields
        ------
        Task
            Parent task of the current task
        """
        md = metadata_str(self._store)
        for pathspec in self.parent_task_pathspecs:
            yield type(self)(pathspec, _namespace_check=False, _current_metadata=md)

    @property
    def child_tasks(self) -> Iterator[Any]:
        """
        Yields all child tasks of the current task if one exists.

        Yields
        ------
        Task
            Child task of the current task
        """
        md = metadata_str(self._store)
        for pathspec in self.child_task_pathspecs:
            yield type(self)(pathspec, _namespace_check=False, _current_metadata=md)


guard_class(TaskLineage)


def graph_info_of(task: Task) -> dict[str, Any]:
    """``_graph_info`` of a task, checked to have the shape navigation needs."""
    from ..exception import MetaflowDataCorruption

    info = task["_graph_info"].navigation_value()  # KeyError when absent, as Metaflow
    steps = info.get("steps") if isinstance(info, dict) else None
    if not isinstance(steps, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("next", []), list) for v in steps.values()
    ):
        raise MetaflowDataCorruption(
            f"task {task.pathspec} has no usable graph information in {task._store.path}"
        )
    checked: dict[str, Any] = info
    return checked

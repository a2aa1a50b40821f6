"""The ``current`` singleton: identity of the running task (Metaflow's ``metaflow_current``)."""

from __future__ import annotations

from typing import Any

_FIELDS = (
    "flow_name",
    "run_id",
    "step_name",
    "task_id",
    "retry_count",
    "origin_run_id",
    "namespace",
    "username",
    "tags",
    "parameter_names",
    "graph",
    "is_production",
    "project_name",
    "branch_name",
    "is_user_branch",
    "project_flow_name",
    "card",
    "parallel",
)


class Current:
    """Facts about the running task (Metaflow's ``current``).

    Outside a flow every value is None (``is_running_flow`` and ``is_production`` False).

    Example::

        from mfstore import current
        print(current.flow_name, current.run_id, current.pathspec)
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        for name in _FIELDS:
            object.__setattr__(self, "_" + name, None)
        self._is_running = False
        self._is_production = False

    def _set_env(self, *, is_running: bool = True, **values: Any) -> None:
        for name, value in values.items():
            if name not in _FIELDS:
                raise AttributeError(name)
            object.__setattr__(self, "_" + name, value)
        self._is_running = is_running

    def _update_env(self, **values: Any) -> None:
        self._set_env(is_running=self._is_running, **values)

    def __contains__(self, name: str) -> bool:
        return name in _FIELDS or name in ("pathspec", "is_running_flow", "trigger")

    @property
    def is_running_flow(self) -> bool:
        """True inside a step of a running flow."""
        return self._is_running

    @property
    def flow_name(self) -> str | None:
        """The name of the running flow (its class name)."""
        return self._flow_name  # type: ignore[attr-defined,no-any-return]

    @property
    def run_id(self) -> str | None:
        """The id of the running run."""
        return self._run_id  # type: ignore[attr-defined,no-any-return]

    @property
    def step_name(self) -> str | None:
        """The name of the running step."""
        return self._step_name  # type: ignore[attr-defined,no-any-return]

    @property
    def task_id(self) -> str | None:
        """The id of the running task."""
        return self._task_id  # type: ignore[attr-defined,no-any-return]

    @property
    def retry_count(self) -> int | None:
        """The attempt number of this task (0 for the first attempt)."""
        return self._retry_count  # type: ignore[attr-defined,no-any-return]

    @property
    def origin_run_id(self) -> str | None:
        """The run a ``resume`` continues (None for a fresh run)."""
        return self._origin_run_id  # type: ignore[attr-defined,no-any-return]

    @property
    def pathspec(self) -> str | None:
        """``flow/run/step/task`` of the running task."""
        if not self._is_running or self.task_id is None:
            return None
        return "/".join(
            (self.flow_name or "", self.run_id or "", self.step_name or "", self.task_id)
        )

    @property
    def namespace(self) -> str | None:
        """The namespace of the run (``user:NAME`` or ``production:TOKEN``)."""
        return self._namespace  # type: ignore[attr-defined,no-any-return]

    @property
    def username(self) -> str | None:
        """The user running the flow."""
        return self._username  # type: ignore[attr-defined,no-any-return]

    @property
    def tags(self) -> set[str] | None:
        """The user tags of the run."""
        return self._tags  # type: ignore[attr-defined,no-any-return]

    @property
    def parameter_names(self) -> list[str] | None:
        """The names of the flow's Parameters."""
        return self._parameter_names  # type: ignore[attr-defined,no-any-return]

    @property
    def graph(self) -> dict[str, Any] | None:
        """The flow's graph, as in the ``_graph_info`` artifact."""
        return self._graph  # type: ignore[attr-defined,no-any-return]

    @property
    def is_production(self) -> bool:
        """True when the run is a production run (``production trigger``)."""
        return bool(self._is_production)

    @property
    def project_name(self) -> str | None:
        """The ``@project`` name of the flow (None without ``@project``)."""
        return self._project_name  # type: ignore[attr-defined,no-any-return]

    @property
    def branch_name(self) -> str | None:
        """The project branch (``user.NAME``, ``test.B``, ``prod``, ``prod.B``)."""
        return self._branch_name  # type: ignore[attr-defined,no-any-return]

    @property
    def is_user_branch(self) -> bool | None:
        """True on the default ``user.NAME`` branch of a project."""
        return self._is_user_branch  # type: ignore[attr-defined,no-any-return]

    @property
    def project_flow_name(self) -> str | None:
        """``project.branch.FlowName``."""
        return self._project_flow_name  # type: ignore[attr-defined,no-any-return]

    @property
    def card(self) -> Any:
        """The cards of the running task (``current.card.append(Markdown(...))``)."""
        return self._card  # type: ignore[attr-defined]

    @property
    def parallel(self) -> Any:
        """``num_nodes``, ``node_index``, ``main_ip``, ``control_task_id`` in a ``@parallel`` step."""
        return self._parallel  # type: ignore[attr-defined]

    @property
    def trigger(self) -> Any:
        """``MetaflowTrigger`` of the running run if a production trigger started it, else None."""
        if not self._is_running or self.run_id is None:
            return None
        return self.run.trigger

    @property
    def tempdir(self) -> str | None:
        """A directory for temporary files of the task (the working directory)."""
        return "." if self._is_running else None

    @property
    def run(self) -> Any:
        """The running ``Run`` (Client API object)."""
        if not self._is_running:
            return None
        from mfstore.client import Run

        return Run(f"{self.flow_name}/{self.run_id}", _namespace_check=False)

    @property
    def task(self) -> Any:
        """The running ``Task`` (Client API object)."""
        if not self._is_running:
            return None
        from mfstore.client import Task

        return Task(self.pathspec, _namespace_check=False)

    def __repr__(self) -> str:
        return "<current %s>" % (self.pathspec or "(not running)")


current = Current()

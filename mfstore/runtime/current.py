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
)


class Current:
    """Values are None (``is_running_flow`` / ``is_production`` False) outside a flow."""

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
        return self._is_running

    @property
    def flow_name(self) -> str | None:
        return self._flow_name  # type: ignore[attr-defined,no-any-return]

    @property
    def run_id(self) -> str | None:
        return self._run_id  # type: ignore[attr-defined,no-any-return]

    @property
    def step_name(self) -> str | None:
        return self._step_name  # type: ignore[attr-defined,no-any-return]

    @property
    def task_id(self) -> str | None:
        return self._task_id  # type: ignore[attr-defined,no-any-return]

    @property
    def retry_count(self) -> int | None:
        return self._retry_count  # type: ignore[attr-defined,no-any-return]

    @property
    def origin_run_id(self) -> str | None:
        return self._origin_run_id  # type: ignore[attr-defined,no-any-return]

    @property
    def pathspec(self) -> str | None:
        if not self._is_running or self.task_id is None:
            return None
        return "/".join(
            (self.flow_name or "", self.run_id or "", self.step_name or "", self.task_id)
        )

    @property
    def namespace(self) -> str | None:
        return self._namespace  # type: ignore[attr-defined,no-any-return]

    @property
    def username(self) -> str | None:
        return self._username  # type: ignore[attr-defined,no-any-return]

    @property
    def tags(self) -> set[str] | None:
        return self._tags  # type: ignore[attr-defined,no-any-return]

    @property
    def parameter_names(self) -> list[str] | None:
        return self._parameter_names  # type: ignore[attr-defined,no-any-return]

    @property
    def graph(self) -> dict[str, Any] | None:
        return self._graph  # type: ignore[attr-defined,no-any-return]

    @property
    def is_production(self) -> bool:
        return bool(self._is_production)

    @property
    def trigger(self) -> Any:
        """``MetaflowTrigger`` of the running run if a production trigger started it, else None."""
        if not self._is_running or self.run_id is None:
            return None
        return self.run.trigger

    @property
    def tempdir(self) -> str | None:
        return "." if self._is_running else None

    @property
    def run(self) -> Any:
        if not self._is_running:
            return None
        from mfstore.client import Run

        return Run(f"{self.flow_name}/{self.run_id}", _namespace_check=False)

    @property
    def task(self) -> Any:
        if not self._is_running:
            return None
        from mfstore.client import Task

        return Task(self.pathspec, _namespace_check=False)

    def __repr__(self) -> str:
        return "<current %s>" % (self.pathspec or "(not running)")


current = Current()

"""The ``current`` singleton: identity of the running task (Metaflow's ``metaflow_current``)."""

from __future__ import annotations

from typing import Any, Generic, Never, NoReturn, TypeVar, overload

_T = TypeVar("_T")


class _Fact(Generic[_T]):
    """A read-only fact of ``current`` (typed by its parameter): the value the runtime
    last set for it with ``set_env``/``update_env``, None outside a flow."""

    def __init__(self, doc: str) -> None:
        self.__doc__ = doc
        self._name = ""
        self._slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name
        self._slot = "_" + name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _Fact[_T]: ...
    @overload
    def __get__(self, obj: Current, owner: type | None = None) -> _T: ...
    def __get__(self, obj: Current | None, owner: type | None = None) -> _Fact[_T] | _T:
        if obj is None:
            return self
        value: _T = obj.__dict__[self._slot]
        return value

    def __set__(self, obj: Current, value: Never) -> NoReturn:
        # Read-only, as Metaflow's (a property without a setter); ``Never``: type checkers
        # refuse an assignment too.
        raise AttributeError(f"property '{self._name}' of 'Current' object has no setter")


class Current:
    """Facts about the running task (Metaflow's ``current``).

    Outside a flow every value is None (``is_running_flow`` and ``is_production`` False).

    Example::

        from mfstore import current
        print(current.flow_name, current.run_id, current.pathspec)
    """

    flow_name = _Fact[str | None]("The name of the running flow (its class name).")
    run_id = _Fact[str | None]("The id of the running run.")
    step_name = _Fact[str | None]("The name of the running step.")
    task_id = _Fact[str | None]("The id of the running task.")
    retry_count = _Fact[int | None]("The attempt number of this task (0 for the first attempt).")
    origin_run_id = _Fact[str | None]("The run a ``resume`` continues (None for a fresh run).")
    namespace = _Fact[str | None](
        "The namespace of the run (``user:NAME`` or ``production:TOKEN``)."
    )
    username = _Fact[str | None]("The user running the flow.")
    tags = _Fact[set[str] | None]("The user tags of the run.")
    parameter_names = _Fact[list[str] | None]("The names of the flow's Parameters.")
    graph = _Fact[dict[str, Any] | None]("The flow's graph, as in the ``_graph_info`` artifact.")
    project_name = _Fact[str | None](
        "The ``@project`` name of the flow (None without ``@project``)."
    )
    branch_name = _Fact[str | None](
        "The project branch (``user.NAME``, ``test.B``, ``prod``, ``prod.B``)."
    )
    is_user_branch = _Fact[bool | None]("True on the default ``user.NAME`` branch of a project.")
    project_flow_name = _Fact[str | None]("``project.branch.FlowName``.")
    card = _Fact[Any]("The cards of the running task (``current.card.append(Markdown(...))``).")
    parallel = _Fact[Any](
        "``num_nodes``, ``node_index``, ``main_ip``, ``control_task_id`` in a ``@parallel`` step."
    )

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        for name in _FIELDS:
            object.__setattr__(self, "_" + name, None)
        self._is_running = False
        self._is_production = False

    def __contains__(self, name: str) -> bool:
        """``"project_name" in current``: whether ``name`` is one of ``current``'s facts."""
        return name in _FIELDS or name in ("pathspec", "is_running_flow", "trigger")

    @property
    def is_running_flow(self) -> bool:
        """True inside a step of a running flow."""
        return self._is_running

    @property
    def pathspec(self) -> str | None:
        """``flow/run/step/task`` of the running task."""
        if not self._is_running or self.task_id is None:
            return None
        return "/".join(
            (self.flow_name or "", self.run_id or "", self.step_name or "", self.task_id)
        )

    @property
    def is_production(self) -> bool:
        """True when the run is a production run (``production trigger``)."""
        return bool(self._is_production)

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


#: What ``set_env`` may set: the facts above, and ``is_production``.
_FIELDS = frozenset(
    [name for name, attr in vars(Current).items() if isinstance(attr, _Fact)] + ["is_production"]
)

current = Current()


def set_env(*, is_running: bool = True, **values: Any) -> None:
    """The runtime's call (Metaflow's ``current._set_env``): set the named facts of
    ``current`` (its read-only properties, and ``is_production``) and whether a flow is
    running; facts not named keep their value. An unknown name is an ``AttributeError``."""
    for name, value in values.items():
        if name not in _FIELDS:
            raise AttributeError(name)
        object.__setattr__(current, "_" + name, value)
    current._is_running = is_running


def update_env(**values: Any) -> None:
    """``set_env`` that leaves ``current.is_running_flow`` as it is (Metaflow's
    ``current._update_env``): ``@project``'s names, ``current.card``, ``current.parallel``."""
    set_env(is_running=current.is_running_flow, **values)

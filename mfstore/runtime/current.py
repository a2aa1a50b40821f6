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
    """Facts about the running task (Metaflow's ``current``), read as ``current.NAME``.

    The runtime sets them in each task process before the step function runs; they are
    read-only (assigning one is an ``AttributeError``, as in Metaflow). Outside a flow
    every value is None (``is_running_flow`` and ``is_production`` False).
    ``"NAME" in current`` tells whether ``NAME`` is one of them.

    Attributes
    ----------
    is_running_flow : bool
        True inside a step of a running flow.
    flow_name, run_id, step_name, task_id : str
        The running task's identity (ids are text, as in pathspecs).
    pathspec : str
        ``flow_name/run_id/step_name/task_id``, as the Client's ``Task(pathspec)`` takes.
    retry_count : int
        The attempt: 0 first, then 1, 2 ... for ``@retry``'s retries.
    origin_run_id : str or None
        The id of the run a ``resume`` continues (its steps before the resumed one are
        cloned from it); None in a fresh run.
    namespace : str
        ``user:NAME``, or ``production:TOKEN`` in a production run: the Client's default
        namespace in the task.
    username : str
        The user running the flow (as Metaflow finds it).
    tags : set of str
        The user tags the run started with (``run --tag``); later tag edits not included.
    parameter_names : list of str
        The names of the artifacts holding the Parameters' (and Configs') values.
    graph : dict
        The flow's graph as the run's ``_graph_info`` artifact has it (steps, their
        types, transitions and decorators).
    is_production : bool
        A production run (``production trigger``, or triggered by an event or a flow).
    trigger : MetaflowTrigger or None
        What triggered the run (an event, an upstream run), as ``Run.trigger``.
    run, task : Run, Task
        The Client's objects of the running run and task (namespace not checked).
    tempdir : str
        A directory for the task's temporary files (the working directory).
    project_name, branch_name, project_flow_name : str
        With ``@project``: its name; the branch (``user.NAME`` by default, ``test.B``
        with ``--branch B``, ``prod`` with ``--production``, ``prod.B`` with both); and
        ``PROJECT.BRANCH.FlowName``. None without ``@project``.
    is_user_branch : bool
        With ``@project``: True on the default ``user.NAME`` branch.
    card : CardComponentCollector
        With ``@card``: ``current.card.append(component)`` adds to the step's default
        card, ``current.card[ID]`` to the card ``@card(id=ID)``.
    parallel : Parallel
        In a ``@parallel`` step: ``num_nodes`` (the gang's size), ``node_index`` (this
        task's; 0 for the control task), ``main_ip`` (``127.0.0.1``: mfstore runs the
        gang on this machine) and ``control_task_id`` (None in mfstore).

    Example
    -------
    ::

        from mfstore import current
        print(current.flow_name, current.run_id, current.pathspec)
    """

    flow_name = _Fact[str | None]("The name of the running flow (its class name).")
    run_id = _Fact[str | None]("The id of the running run (its number, as text).")
    step_name = _Fact[str | None]("The name of the running step (its method's name).")
    task_id = _Fact[str | None]("The id of the running task (unique in the run, as text).")
    retry_count = _Fact[int | None]("The attempt of this task: 0 first, 1 at the first retry ...")
    origin_run_id = _Fact[str | None]("The run a ``resume`` continues (None for a fresh run).")
    namespace = _Fact[str | None](
        "The namespace of the run (``user:NAME``, or ``production:TOKEN`` in a production run)."
    )
    username = _Fact[str | None]("The user running the flow (NAME of ``user:NAME``).")
    tags = _Fact[set[str] | None]("The user tags the run started with (``run --tag``).")
    parameter_names = _Fact[list[str] | None]("The flow's Parameters' (and Configs') names.")
    graph = _Fact[dict[str, Any] | None]("The flow's graph, as in the ``_graph_info`` artifact.")
    project_name = _Fact[str | None]("``@project``'s name (None without ``@project``).")
    branch_name = _Fact[str | None](
        "The ``@project`` branch: ``user.NAME``, ``test.B``, ``prod`` or ``prod.B`` (or None)."
    )
    is_user_branch = _Fact[bool | None]("True on a ``@project``'s default ``user.NAME`` branch.")
    project_flow_name = _Fact[str | None]("``PROJECT.BRANCH.FlowName`` (with ``@project``).")
    card = _Fact[Any]("``@card``'s components: ``current.card.append(...)``, ``current.card[ID]``.")
    parallel = _Fact[Any](
        "In a ``@parallel`` step: ``num_nodes``, ``node_index``, ``main_ip``, ``control_task_id``."
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
        """True in a production run (started by ``production trigger``, or triggered by an
        event or an upstream flow), in its deployment's ``production:`` namespace."""
        return bool(self._is_production)

    @property
    def trigger(self) -> Any:
        """The ``MetaflowTrigger`` of the running run when an event (``@trigger``) or an
        upstream run (``@trigger_on_finish``) started it, else None (as ``Run.trigger``)."""
        if not self._is_running or self.run_id is None:
            return None
        return self.run.trigger

    @property
    def tempdir(self) -> str | None:
        """A directory for the task's temporary files: in mfstore the working directory
        (``"."``); None outside a flow."""
        return "." if self._is_running else None

    @property
    def run(self) -> Any:
        """The running run as a Client ``Run`` (namespace not checked); None outside a
        flow."""
        if not self._is_running:
            return None
        from mfstore.client import Run

        return Run(f"{self.flow_name}/{self.run_id}", _namespace_check=False)

    @property
    def task(self) -> Any:
        """The running task as a Client ``Task`` (namespace not checked); None outside a
        flow."""
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

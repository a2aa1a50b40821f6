"""``@step`` and the step decorators (``@retry``, ``@catch``, ...).

Step decorators are registered by name (:func:`register_step_decorator`), which is how
``python flow.py --with NAME[:k=v,...] run`` finds them: ``--with retry:times=2`` attaches
``@retry(times=2)`` to every step that does not have its own ``@retry``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from mfstore.exception import (
    CommandException,
    InvalidDecoratorAttribute,
    MetaflowException,
    UnsupportedFeature,
)

from .delayed import UNPACK_KEY

#: Largest ``@retry(times=)`` (attempts are 0..times and Metaflow caps attempts at 6).
MAX_ATTEMPTS = 6


class StepDecorator:
    """A decorator attached to a step; ``attributes`` as in Metaflow's ``_graph_info``.

    Subclass it with a ``name`` and ``defaults`` and register it with
    :func:`register_step_decorator` to make ``@name`` and ``--with name`` available.
    """

    name = "step_decorator"
    defaults: ClassVar[dict[str, Any]] = {}
    #: Whether a step may carry this decorator more than once (``@card`` may).
    allow_multiple = False
    #: Whether it takes attributes that ``defaults`` does not name (a refused decorator does).
    takes_any_attribute = False

    def __init__(self, **attributes: Any) -> None:
        # ``**cfg`` of a Config gives one placeholder key, resolved when the command starts
        for key in attributes:
            known = self.takes_any_attribute or key in self.defaults
            if not known and not key.startswith(UNPACK_KEY):
                raise InvalidDecoratorAttribute(self.name, key, self.defaults)
        self.attributes = {**self.defaults, **attributes}
        self.statically_defined = True
        self.inserted_by = None

    def runtime_init(self, flow_name: str, step_name: str) -> None:
        """Called by the runtime before the run starts (raise to refuse the run)."""

    def task_pre_step(self, step_name: str, task_id: str) -> None:
        """Called in the task process right before the step function runs."""

    def task_post_step(self) -> None:
        """Called in the task process right after the step function returns or raises."""

    def to_info(self) -> dict[str, Any]:
        """The decorator as recorded in ``_graph_info``."""
        return {
            "name": self.name,
            "attributes": dict(self.attributes),
            "statically_defined": self.statically_defined,
            "inserted_by": self.inserted_by,
        }


class RefusedAtRun(StepDecorator):
    """A decorator that needs what mfstore does not run (a cloud, a scheduler, a package
    environment): it takes any attributes at import and refuses the run when it starts,
    saying ``refusal`` (formatted with the flow, step and decorator names and ``needs``)."""

    needs = "a remote service"
    refusal = "{flow}: @{name} needs {needs}"
    takes_any_attribute = True

    def runtime_init(self, flow_name: str, step_name: str) -> None:
        """Refuse the run: it would need ``needs``."""
        raise UnsupportedFeature(
            self.refusal.format(flow=flow_name, step=step_name, name=self.name, needs=self.needs)
        )


#: Step decorator classes by name (``@name`` and ``--with name``).
STEP_DECORATORS: dict[str, type[StepDecorator]] = {}


def register_step_decorator(cls: type[StepDecorator]) -> type[StepDecorator]:
    """Make ``cls`` available to ``--with cls.name`` (usable as a class decorator)."""
    STEP_DECORATORS[cls.name] = cls
    return cls


def parse_decospec(spec: str) -> StepDecorator:
    """``NAME[:k=v,k2=v2]`` (Metaflow's ``--with`` syntax) -> a decorator instance."""
    name, _, rest = spec.partition(":")
    cls = STEP_DECORATORS.get(name.strip())
    if cls is None:
        raise CommandException(
            f"Unknown decorator *{name}* in --with {spec}: the available ones are "
            + ", ".join(sorted(STEP_DECORATORS))
        )
    attrs: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq:
            raise CommandException(
                f"Invalid --with {spec}: attributes are given as key=value, separated by commas"
            )
        attrs[key.strip()] = value.strip()
    try:
        deco = cls(**attrs)
    except InvalidDecoratorAttribute:
        raise  # Metaflow's own error, as Metaflow reports it for --with too
    except MetaflowException as exc:
        raise CommandException(f"Invalid --with {spec}: {exc}") from None
    deco.statically_defined = False
    return deco


def attach_decospecs(nodes: Any, specs: list[str]) -> None:
    """Add ``--with`` decorators to every step (``nodes``: the graph's nodes) lacking one."""
    for spec in specs:
        for node in nodes:
            deco = parse_decospec(spec)
            if get_decorator(node.func, deco.name) is None:
                node.func.decorators.append(deco)
                node.decorators.append(deco)


@register_step_decorator
class RetryDecorator(StepDecorator):
    """Re-run a step whose task fails.

    When an attempt raises (or its process dies), the runtime starts a new attempt of the
    same task, up to ``times`` more attempts; ``current.retry_count`` tells the step which
    attempt it is (0 first). Only when the last attempt fails too does the task fail (or,
    with ``@catch``, hand its exception over). The Client sees every attempt
    (``Task(..., attempt=N)``); the task's data is the latest attempt's.

    In mfstore a retry starts as soon as the failed attempt has ended:
    ``minutes_between_retries`` is recorded with the decorator (in the run's
    ``_graph_info``) but not waited for, unlike Metaflow. As in Metaflow, a task has at
    most 6 attempts, so ``times`` above 5 counts as 5.

    Parameters
    ----------
    times : int, default 3
        How many times to retry the task after a failed attempt (attempts ``0..times``).
        ``--with retry:times=N`` gives it as text; it is read as an int.
    minutes_between_retries : int, default 2
        Metaflow's pause before each retry; recorded, not waited for (see above).

    Example
    -------
    ::

        @retry(times=2)
        @step
        def fetch(self):
            self.page = download(URL)  # a flaky call: tried at most 3 times
            self.next(self.end)

    or ``python flow.py run --with retry`` for every step that has no ``@retry`` of its own.
    """

    name = "retry"
    defaults: ClassVar[dict[str, Any]] = {"times": "3", "minutes_between_retries": "2"}

    @property
    def times(self) -> int:
        return int(self.attributes["times"])


@register_step_decorator
class CatchDecorator(StepDecorator):
    """Let the run go on when a step fails: the exception becomes an artifact.

    When the task's last attempt (after any ``@retry``) raises, the task does not fail:
    it ends successfully, its transition is the one the graph gives the step, and the
    exception is stored in the artifact ``var`` (if given) so that a later step can look
    at it. When the last attempt fails without raising (its process was killed or
    crashed), the runtime makes one more attempt that does not run the step and stores a
    ``FailureHandledByCatch`` exception in ``var`` instead, as Metaflow does.

    Parameters
    ----------
    var : str, optional, default None
        The name of the artifact that holds the caught exception: a
        ``MetaflowExceptionWrapper`` (``type``, ``exception`` the message, ``stacktrace``
        the user's part of the traceback), as Metaflow stores it. Set to None when the step
        succeeds. Without ``var`` the exception is only printed (see ``print_exception``).
    print_exception : bool, default True
        Print ``@catch caught an exception from <flow>`` and the traceback in the task's
        output (stdout), where the Client's ``Task.stdout`` finds it.

    Example
    -------
    ::

        @catch(var="compute_failed")
        @step
        def compute(self):
            self.x = 1 / 0
            self.next(self.end)

        @step
        def end(self):
            if self.compute_failed:
                print("compute failed:", self.compute_failed)
    """

    name = "catch"
    defaults: ClassVar[dict[str, Any]] = {"var": None, "print_exception": True}


@register_step_decorator
class DaskDecorator(StepDecorator):
    """Run the step's tasks on a Dask cluster (mfstore's own; Metaflow has no ``@dask``).

    Each attempt of each task of the step becomes a Dask task on the cluster: the
    scheduler ships the flow's code package and the input artifacts' bytes to the worker
    and gets back the attempt's output lines and its artifacts (pickled, hashed and
    compressed). The runtime process stays the only writer of the .mfdb: workers never
    open it. Steps without ``@dask`` run as local processes as usual. The run refuses to
    start when ``dask.distributed`` is not installed, and the flow must be in a file (its
    code is what the workers run). See docs/distributed.md.

    Parameters
    ----------
    scheduler : str, optional, default None
        The address of a running Dask scheduler (``tcp://host:8786``). None: the run
        starts a ``LocalCluster`` on this machine and closes it at the end.
    workers : int, optional, default None
        The number of worker processes of that ``LocalCluster`` (2 when None); ignored
        when ``scheduler`` is given.

    Example
    -------
    ::

        @dask(scheduler="tcp://10.0.0.5:8786")
        @step
        def train(self):
            ...

    or ``python flow.py run --with dask:workers=4`` for every step.
    """

    name = "dask"
    defaults: ClassVar[dict[str, Any]] = {"scheduler": None, "workers": None}


#: Step decorators that choose where a step's tasks run (see ``runtime.executors``).
EXECUTOR_DECORATORS = ("dask",)


def _attach(func: Callable[..., Any], deco: StepDecorator) -> Callable[..., Any]:
    if not hasattr(func, "is_step"):
        raise MetaflowException(
            "@{} must be placed above @step (the @step decorator is missing on {})".format(
                deco.name, getattr(func, "__name__", func)
            )
        )
    if not deco.allow_multiple and any(d.name == deco.name for d in func.decorators):  # type: ignore[attr-defined]
        raise MetaflowException(f"Step *{func.__name__}* already has a decorator @{deco.name}")
    func.decorators.append(deco)  # type: ignore[attr-defined]
    return func


def make_step_decorator(cls: type[StepDecorator]) -> Callable[..., Any]:
    """The ``@name`` / ``@name(k=v)`` function of a step decorator class."""

    def decorator(f: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        if f is not None and callable(f):
            return _attach(f, cls())
        return lambda func: _attach(func, cls(**kwargs))

    decorator.__name__ = cls.name
    decorator.__doc__ = cls.__doc__
    return decorator


retry = make_step_decorator(RetryDecorator)
catch = make_step_decorator(CatchDecorator)
dask = make_step_decorator(DaskDecorator)


def step(f: Callable[..., Any] | None = None, *, start: bool = False, end: bool = False) -> Any:
    """Mark a method of a FlowSpec as a step (Metaflow's ``@step``).

    A step is a method taking ``self`` (a join step: ``self, inputs``) that ends with
    ``self.next(...)`` (all but the last step). Every step decorator (``@retry``,
    ``@catch``, ``@card`` ...) goes above ``@step``. The first step is ``start`` and the
    last ``end``, unless one step is marked ``start=True`` / ``end=True``.

    Parameters
    ----------
    f : function
        The method (``@step`` without parentheses).
    start : bool, default False
        This step is the flow's first step (instead of the one named ``start``).
    end : bool, default False
        This step is the flow's last step (instead of the one named ``end``).

    Example
    -------
    ::

        class HelloFlow(FlowSpec):
            @step
            def start(self):
                self.x = 1
                self.next(self.end)
    """

    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        func.is_step = True  # type: ignore[attr-defined]
        func.name = func.__name__  # type: ignore[attr-defined]
        func.decorators = []  # type: ignore[attr-defined]
        func.is_start_step = start  # type: ignore[attr-defined]
        func.is_end_step = end  # type: ignore[attr-defined]
        return func

    if f is not None:
        return mark(f)
    return mark


def get_decorator(func: Any, name: str) -> StepDecorator | None:
    """The decorator ``name`` attached to step function ``func``, or None."""
    for deco in getattr(func, "decorators", ()):
        if deco.name == name:
            return deco  # type: ignore[no-any-return]
    return None


def max_retries_of(func: Any) -> int:
    """How many retries a step gets (``@retry(times=)``, capped so attempts stay < 6)."""
    deco = get_decorator(func, "retry")
    if not isinstance(deco, RetryDecorator):
        return 0
    return min(deco.times, MAX_ATTEMPTS - 1)

"""``@step``, ``@retry`` and ``@catch``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mfstore.exception import MetaflowException

#: Largest ``@retry(times=)`` (attempts are 0..times and Metaflow caps attempts at 6).
MAX_ATTEMPTS = 6


class StepDecorator:
    """A decorator attached to a step; ``attributes`` as in Metaflow's ``_graph_info``."""

    name = "step_decorator"
    defaults: dict[str, Any] = {}

    def __init__(self, **attributes: Any) -> None:
        unknown = set(attributes) - set(self.defaults)
        if unknown:
            raise MetaflowException(
                "Decorator @{} does not accept the argument(s) {}".format(
                    self.name, ", ".join(sorted(unknown))
                )
            )
        self.attributes = {**self.defaults, **attributes}
        self.statically_defined = True
        self.inserted_by = None

    def to_info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "attributes": dict(self.attributes),
            "statically_defined": self.statically_defined,
            "inserted_by": self.inserted_by,
        }


class RetryDecorator(StepDecorator):
    name = "retry"
    defaults = {"times": "3", "minutes_between_retries": "2"}

    @property
    def times(self) -> int:
        return int(self.attributes["times"])


class CatchDecorator(StepDecorator):
    name = "catch"
    defaults = {"var": None, "print_exception": True}


class DaskDecorator(StepDecorator):
    """Run the step's tasks on a Dask cluster (``scheduler=tcp://host:8786``), or on a
    ``LocalCluster`` of ``workers`` processes started for the run when no scheduler is
    given. See docs/distributed.md."""

    name = "dask"
    defaults = {"scheduler": None, "workers": None}


#: Step decorators that choose where a step's tasks run (see ``runtime.executors``).
EXECUTOR_DECORATORS = ("dask",)


def _attach(func: Callable[..., Any], deco: StepDecorator) -> Callable[..., Any]:
    if not hasattr(func, "is_step"):
        raise MetaflowException(
            "@{} must be placed above @step (the @step decorator is missing on {})".format(
                deco.name, getattr(func, "__name__", func)
            )
        )
    if any(d.name == deco.name for d in func.decorators):  # type: ignore[attr-defined]
        raise MetaflowException(f"Step *{func.__name__}* already has a decorator @{deco.name}")
    func.decorators.append(deco)  # type: ignore[attr-defined]
    return func


def _make(cls: type[StepDecorator]) -> Callable[..., Any]:
    def decorator(f: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        if f is not None and callable(f):
            return _attach(f, cls())
        return lambda func: _attach(func, cls(**kwargs))

    decorator.__name__ = cls.name
    decorator.__doc__ = cls.__doc__
    return decorator


retry = _make(RetryDecorator)
retry.__doc__ = "Retry the step ``times`` times (attempts 0..times) when it fails."
catch = _make(CatchDecorator)
catch.__doc__ = "Store the step's exception in artifact ``var`` and let the run continue."
dask = _make(DaskDecorator)
dask.__doc__ = (
    "Run this step's tasks on a Dask cluster: ``@dask`` (a LocalCluster) or "
    "``@dask(scheduler='tcp://host:8786')``; the runtime stays the only writer of the .mfdb."
)


def step(f: Callable[..., Any] | None = None, *, start: bool = False, end: bool = False) -> Any:
    """Mark a method of a FlowSpec as a step."""

    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        func.is_step = True  # type: ignore[attr-defined]
        func.decorators = []  # type: ignore[attr-defined]
        func.is_start_step = start  # type: ignore[attr-defined]
        func.is_end_step = end  # type: ignore[attr-defined]
        return func

    if f is not None:
        return mark(f)
    return mark


def get_decorator(func: Any, name: str) -> StepDecorator | None:
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


#: Decorators ``--with NAME[:k=v,...]`` can attach to every step.
WITH_DECORATORS: dict[str, type[StepDecorator]] = {
    "dask": DaskDecorator,
    "retry": RetryDecorator,
    "catch": CatchDecorator,
}


def parse_with(spec: str) -> StepDecorator:
    """``dask:scheduler=tcp://h:8786,workers=2`` -> a decorator (``--with`` syntax)."""
    name, _, rest = spec.partition(":")
    cls = WITH_DECORATORS.get(name.strip())
    if cls is None:
        raise MetaflowException(
            "Unknown decorator in --with {}: use one of {}".format(
                spec, ", ".join(sorted(WITH_DECORATORS))
            )
        )
    attrs: dict[str, Any] = {}
    for item in filter(None, (x.strip() for x in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise MetaflowException(f"Bad --with {spec}: options are written key=value,key=value")
        attrs[key.strip()] = value.strip()
    deco = cls(**attrs)
    deco.statically_defined = False
    return deco


def attach_everywhere(graph: Any, spec: str) -> None:
    """``--with``: attach the decorator ``spec`` names to every step that lacks it."""
    for node in graph:
        if get_decorator(node.func, spec.partition(":")[0].strip()) is None:
            deco = parse_with(spec)
            node.func.decorators.append(deco)
            node.decorators.append(deco)

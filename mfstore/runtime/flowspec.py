"""``FlowSpec``: the base class of flows (``self.next``, ``inputs``, ``merge_artifacts``,
``index``/``input``/``foreach_stack``). Artifacts are whatever ``self.x = ...`` a step assigns;
values inherited from the parent task are loaded lazily from an ``InputDatastore`` (``runtime/task.py``)."""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from mfstore.exception import (
    InvalidNextException,
    MetaflowException,
    MissingInMergeArtifactsException,
    UnhandledInMergeArtifactsException,
)

from .inputs import EPHEMERAL, Inputs

#: Longest foreach value kept in a ForeachFrame (Metaflow's MAXIMUM_FOREACH_VALUE_CHARS).
MAX_FOREACH_VALUE_CHARS = 30

#: Internal artifacts ``merge_artifacts`` never merges.
INTERNAL_ARTIFACTS = frozenset({"_foreach_values", "_unbounded_foreach", "_control_mapper_tasks"})


def foreach_item_value(item: Any) -> str:
    """Metaflow's ``_get_foreach_item_value``: primitives as str, others via reprlib."""
    value = item if isinstance(item, (str, int, float, bool)) else reprlib.Repr().repr(item)
    return str(value)[:MAX_FOREACH_VALUE_CHARS]


class FlowSpec:
    """Base class of a flow. Subclass it, decorate methods with ``@step``, and end the
    file with ``if __name__ == '__main__': MyFlow()``: instantiating the class runs the
    command line (``python flow.py run``)."""

    def __init__(self, use_cli: bool = True) -> None:
        self._datastore: Any = None
        self._cached_input: dict[int, Any] = {}
        self._passdown: dict[str, Any] = {}
        if use_cli:
            from .cli import main

            main(self.__class__)

    # -- artifacts -------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: load an artifact of the parent task.
        if name == "_graph":  # Metaflow's flow._graph (a FlowGraph of the class), built once
            from .graph import FlowGraph

            graph = self.__dict__["_graph"] = FlowGraph(type(self))
            return graph
        if name.startswith("__") or name in EPHEMERAL:
            raise AttributeError(name)
        ds = self.__dict__.get("_datastore")
        merged = self.__dict__.get("_passdown") or {}
        if name in merged:
            ds = merged[name][0]
        if ds is not None and name in ds:
            value = ds.load(name)
            self.__dict__[name] = value
            self.__dict__.setdefault("_loaded_refs", {})[name] = (value, ds.ref(name))
            return value
        raise AttributeError(f"Flow {type(self).__name__} has no attribute '{name}'")

    @property
    def name(self) -> str:
        """The flow's name: its class name (Metaflow's ``FlowSpec.name``), the same as
        ``current.flow_name`` in a step and the name the Client API finds its runs by
        (``Flow(name)``, the first part of every pathspec)."""
        return type(self).__name__

    def __str__(self) -> str:
        step = self.__dict__.get("_current_step")
        return f"<flow {self.name} step {step}>" if step else f"<flow {self.name}>"

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        """The flow's steps (bound methods with a ``name``), in graph order (Metaflow's
        legacy ``for step in flow``)."""
        from .graph import FlowGraph

        graph = self.__dict__.get("_graph") or FlowGraph(type(self))
        return iter([getattr(self, node.name) for node in graph])

    # -- foreach ---------------------------------------------------------------

    @property
    def index(self) -> int | None:
        """The zero-based index of this foreach task, or None outside a foreach."""
        stack = self._foreach_stack_value()
        return stack[-1].index if stack else None

    @property
    def input(self) -> Any:
        """The element of the foreach list this task processes, or None."""
        return self._find_input()

    def foreach_stack(self) -> list[tuple[int, int, Any]] | None:
        """``[(index, num_splits, value), ...]`` for each enclosing foreach."""
        stack = self._foreach_stack_value()
        return [(f.index, f.num_splits, self._find_input(i)) for i, f in enumerate(stack)]

    def _foreach_stack_value(self) -> list[Any]:
        try:
            return list(self._foreach_stack or [])
        except AttributeError:
            return []

    def _find_input(self, stack_index: int | None = None) -> Any:
        stack = self._foreach_stack_value()
        if stack_index is None:
            stack_index = len(stack) - 1
        cache = self.__dict__.setdefault("_cached_input", {})
        if stack_index in cache:
            return cache[stack_index]
        if not stack:
            return None
        frame = stack[stack_index]
        try:
            var = getattr(self, frame.var)
        except AttributeError:
            cache[stack_index] = None
        else:
            try:
                cache[stack_index] = var[frame.index]
            except TypeError:
                cache[stack_index] = next(islice(var, frame.index, frame.index + 1))
        return cache[stack_index]

    # -- transitions -------------------------------------------------------------

    def next(self, *dsts: Callable[..., Any], **kwargs: Any) -> None:
        """Name the step(s) that run after this one; the last statement of every step
        except ``end``.

        - ``self.next(self.a)``: a linear transition;
        - ``self.next(self.a, self.b)``: a static split (``a`` and ``b`` run in parallel
          and meet in a join step taking ``inputs``);
        - ``self.next(self.a, foreach="items")``: one ``a`` task per element of
          ``self.items`` (``self.input`` is the element, ``self.index`` its position);
        - ``self.next({"x": self.a, "y": self.b}, condition="attr")``: a switch: only the
          step keyed by the value of ``self.attr`` runs (a step may switch to itself: a loop).

        Raises ``InvalidNextException`` when the transition does not match the graph.
        """
        step = self.__dict__.get("_current_step", "?")
        foreach = kwargs.pop("foreach", None)
        num_parallel = kwargs.pop("num_parallel", None)
        condition = kwargs.pop("condition", None)
        if kwargs:
            raise InvalidNextException(
                f"Step *{step}* passes an unknown keyword argument '{next(iter(kwargs))}' to self.next()."
            )
        if self.__dict__.get("_transition") is not None:
            raise InvalidNextException(
                f"Multiple self.next() calls detected in step *{step}*. Call self.next() only once."
            )
        if condition is not None:
            if foreach is not None or num_parallel is not None:
                raise InvalidNextException(
                    f"Step *{step}* has an invalid self.next() transition. Switch statements cannot "
                    "be combined with foreach or num_parallel."
                )
            chosen = _switch_target(self, step, dsts, condition)
            graph = self.__dict__.get("_graph")
            if graph is not None and step in graph and chosen not in graph[step].out_funcs:
                raise InvalidNextException(
                    f"Switch step *{step}* transitioned to unexpected step *{chosen}*. Expected "
                    f"one of: {', '.join(graph[step].out_funcs)}"
                )
            self._transition = ([chosen], None)
            return
        if len(dsts) == 1 and isinstance(dsts[0], dict):
            raise InvalidNextException(
                f"Step *{step}* has an invalid self.next() transition. Dictionary argument requires "
                "'condition' parameter."
            )
        if num_parallel is not None:
            if not isinstance(num_parallel, int) or num_parallel < 1:
                raise InvalidNextException(
                    f"Step *{step}*: num_parallel must be a positive integer, got {num_parallel!r}."
                )
            from .graph import PARALLEL_VAR

            self.__dict__[PARALLEL_VAR] = list(range(num_parallel))
            foreach = PARALLEL_VAR
        funcs = []
        for i, dst in enumerate(dsts):
            func = getattr(dst, "__func__", dst)
            if not getattr(func, "is_step", False):
                raise InvalidNextException(
                    f"In step *{step}* the {i + 1}. argument in self.next() is not a function. Make sure all "
                    "arguments in self.next() are methods of the Flow class."
                )
            funcs.append(func.__name__)
        if foreach is not None:
            if not isinstance(foreach, str):
                raise InvalidNextException(
                    f"Step *{step}* has an invalid self.next() transition. The argument to 'foreach' must "
                    "be a string."
                )
            if len(dsts) != 1:
                raise InvalidNextException(
                    f"Step *{step}* has an invalid self.next() transition. Specify exactly one target for "
                    "'foreach'."
                )
            try:
                foreach_iter = getattr(self, foreach)
            except AttributeError:
                raise InvalidNextException(
                    f"Foreach variable *self.{foreach}* in step *{step}* does not exist. Check your variable."
                ) from None
            try:
                values = [foreach_item_value(item) for item in foreach_iter]
            except Exception as e:
                raise InvalidNextException(
                    f"Foreach variable *self.{foreach}* in step *{step}* is not iterable. Please check details: {e}"
                ) from None
            if not values:
                raise InvalidNextException(
                    f"Foreach iterator over *{foreach}* in step *{step}* produced zero splits. Check your variable."
                )
            self._foreach_var = foreach
            self._foreach_values = values
            self._foreach_num_splits = len(values)
        graph = self.__dict__.get("_graph")
        if graph is not None and step in graph:
            expected = graph[step].out_funcs
            if funcs != expected:
                raise InvalidNextException(
                    "Step *{}* specified a transition to {} at runtime, but the graph (from the source "
                    "code) says it goes to {}.".format(step, ", ".join(funcs), ", ".join(expected))
                )
        self._transition = (funcs, foreach)

    # -- joins -------------------------------------------------------------------

    def merge_artifacts(
        self, inputs: Inputs, exclude: list[str] | None = None, include: list[str] | None = None
    ) -> None:
        """Copy the artifacts of the join's inputs that are not set yet and agree (same sha)
        across inputs; raise on conflicts (``UnhandledInMergeArtifactsException``)."""
        include = include or []
        exclude = exclude or []
        step = self.__dict__.get("_current_step")
        graph = self.__dict__.get("_graph")
        if graph is not None and graph[step].type != "join":
            raise MetaflowException(
                f"merge_artifacts can only be called in a join and step *{step}* is not a join"
            )
        if exclude and include:
            raise MetaflowException(
                "`exclude` and `include` are mutually exclusive in merge_artifacts"
            )

        def is_set(var: str) -> bool:
            return var in self.__dict__ or var in self.__dict__.get("_passdown", {})

        to_merge: dict[str, tuple[Any, Any]] = {}
        unresolved: list[str] = []
        for inp in inputs:
            ds = inp._datastore
            for var in ds.names():
                if include:
                    if var not in include or is_set(var):
                        continue
                elif var in exclude or is_set(var) or var in INTERNAL_ARTIFACTS:
                    continue
                ref = ds.ref(var)
                _, prev = to_merge.setdefault(var, (ds, ref))
                if prev.sha != ref.sha and var not in unresolved:
                    unresolved.append(var)
        missing = [v for v in include if v not in to_merge and not is_set(v)]
        if unresolved:
            raise UnhandledInMergeArtifactsException(
                "Step *{}* cannot merge the following artifacts due to them having conflicting values:\n"
                "[{}].\nTo remedy this issue, be sure to explicitly set those artifacts (using "
                "self.<artifact_name> = ...) prior to calling merge_artifacts.".format(
                    step, ", ".join(unresolved)
                ),
                unresolved,
            )
        if missing:
            raise MissingInMergeArtifactsException(
                "Step *{}* specifies that [{}] should be merged but [{}] are not present.\nTo remedy this "
                "issue, make sure that the values specified in only come from at least one branch".format(
                    step, ", ".join(include), ", ".join(missing)
                ),
                missing,
            )
        passdown = self.__dict__.setdefault("_passdown", {})
        for var, (ds, ref) in to_merge.items():
            passdown[var] = (ds, ref)


def _switch_target(flow: Any, step: str, dsts: tuple[Any, ...], condition: Any) -> str:
    """The step a switch ``self.next({...}, condition=...)`` goes to (Metaflow's checks and
    messages)."""
    if len(dsts) != 1 or not isinstance(dsts[0], dict) or not dsts[0]:
        raise InvalidNextException(
            f"Step *{step}* has an invalid self.next() transition. When using 'condition', the "
            "transition must be to a single, non-empty dictionary mapping condition values to "
            "step methods."
        )
    if not isinstance(condition, str):
        raise InvalidNextException(
            f"Step *{step}* has an invalid self.next() transition. The argument to 'condition' "
            "must be a string."
        )
    cases = dsts[0]
    try:
        value = getattr(flow, condition)
    except AttributeError:
        raise InvalidNextException(
            f"Condition variable *self.{condition}* in step *{step}* does not exist. Make sure "
            f"you set self.{condition} in this step."
        ) from None
    if value not in cases:
        raise RuntimeError(
            f"Switch condition variable '{condition}' has value '{value}' which is not in the "
            f"available cases: {list(cases.keys())}"
        )
    func = getattr(cases[value], "__func__", None)
    if func is None or not getattr(func, "is_step", False):
        raise InvalidNextException(
            f"Step *{step}* specifies a switch transition that is not a function. Make sure the "
            "value in the dictionary is a method of the Flow class."
        )
    return str(func.__name__)

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
    """The base class of a flow (Metaflow's ``FlowSpec``).

    Subclass it, make each step a method decorated with ``@step`` (``start`` first,
    ``end`` last, each but ``end`` ending with ``self.next(...)``), and end the file with
    ``if __name__ == "__main__": MyFlow()``: making an instance runs the command line
    (``python flow.py run``, ``resume``, ``show``, ``card``, ``tag``, ``production`` ...),
    which records every run in the .mfdb (``--mfdb PATH`` or ``MFSTORE_DB``).

    In a step, ``self.x = value`` makes ``x`` an artifact of the task (stored when the
    step ends; the Client reads it as ``Task["x"].data`` / ``Run.data.x``), and ``self.x``
    reads an artifact of the task before, loaded on first use. Parameters, Configs and
    class-level constants are read-only artifacts. The class's docstring and each step's
    are what ``python flow.py show`` prints.

    Parameters
    ----------
    use_cli : bool, default True
        Run the command line when the class is instantiated; False makes a plain
        instance (the runtime makes its task's instance without calling ``__init__``).

    Attributes
    ----------
    name : str
        The flow's name (its class name).
    index : int or None
        In a foreach task, its position in the foreach list.
    input : object
        In a foreach task, the element of the foreach list it processes.

    Example
    -------
    ::

        from mfstore import FlowSpec, step

        class HelloFlow(FlowSpec):
            # a docstring here is what `python hello.py show` prints
            ...  # the steps: see `step`

        if __name__ == "__main__":
            HelloFlow()
    """

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
        """The position (0-based) of this task's element in the innermost foreach list,
        None outside a foreach.

        Returns
        -------
        int or None
            ``self.index`` in ``self.next(self.a, foreach="items")``'s ``a``: the position
            of ``self.input`` in ``items``.
        """
        stack = self._foreach_stack_value()
        return stack[-1].index if stack else None

    @property
    def input(self) -> Any:
        """The element of the innermost foreach list that this task processes, None
        outside a foreach.

        Returns
        -------
        object
            ``self.items[self.index]`` for ``self.next(self.a, foreach="items")``, read
            from the artifact ``items`` of the task that split (so it is not copied into
            every task's artifacts).
        """
        return self._find_input()

    def foreach_stack(self) -> list[tuple[int, int, Any]] | None:
        """Where this task is in every enclosing foreach, outermost first.

        Returns
        -------
        list of (int, int, object)
            One ``(index, num_splits, value)`` per enclosing foreach: the task's position
            in that foreach's list, the list's length, and the element; empty outside a
            foreach.
        """
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
        """Name the step(s) that run after this one: the last statement of every step
        but ``end``.

        The transitions are read from the source when the flow loads (the graph ``show``
        prints and ``run`` checks); the call at run time must make the same one.

        - ``self.next(self.a)``: a linear transition;
        - ``self.next(self.a, self.b)``: a static split: ``a`` and ``b`` run in parallel
          and meet in a join step ``def join(self, inputs)``;
        - ``self.next(self.a, foreach="items")``: one ``a`` task per element of the
          artifact ``self.items`` (any iterable; ``self.input`` is the element,
          ``self.index`` its position), met by a join;
        - ``self.next(self.a, num_parallel=4)``: ``a`` (a ``@parallel`` step) runs as 4
          tasks;
        - ``self.next({"x": self.a, "y": self.b}, condition="attr")``: a switch: only the
          step keyed by the value of ``self.attr`` runs (a step may switch back to an
          earlier one: a loop).

        Parameters
        ----------
        *dsts : step method or dict
            The next step(s), as ``self.name``; with ``condition``, one dict of value to
            step.
        foreach : str, optional
            The name of the artifact to split on (one target only).
        num_parallel : int, optional
            The number of tasks of the ``@parallel`` target (a positive int).
        condition : str, optional
            The name of the artifact whose value picks the switch's target; not with
            ``foreach`` or ``num_parallel``.

        Raises
        ------
        InvalidNextException
            ``self.next`` called twice, an unknown keyword, a target that is not a step,
            a missing, empty or non-iterable foreach artifact, a switch value without a
            step, or a transition other than the graph's.
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
        """In a join step, take over the artifacts of the branches that the join has not
        set itself.

        An artifact present in several inputs is taken over when its value is the same
        in all of them (same content hash); one set in only some inputs is taken from
        those. Internal artifacts (``_foreach_*`` ...) are never taken over. The values
        are not copied: the join's task refers to the inputs' stored artifacts. Set an
        artifact yourself (``self.x = ...``) before the call to resolve a conflict.

        Parameters
        ----------
        inputs : Inputs
            The join step's ``inputs`` argument.
        exclude : list of str, optional
            Names not to take over (not with ``include``).
        include : list of str, optional
            Take over only these names (not with ``exclude``); each must be set by some
            input or by the join.

        Raises
        ------
        UnhandledInMergeArtifactsException
            Artifacts whose values differ between inputs (its ``artifact_names``).
        MissingInMergeArtifactsException
            ``include`` names that no input has.
        MetaflowException
            Called in a step that is not a join, or with both ``include`` and ``exclude``.

        Example
        -------
        ::

            @step
            def join(self, inputs):
                self.score = max(i.score for i in inputs)  # differs: resolve it first
                self.merge_artifacts(inputs, exclude=["model"])
                self.next(self.end)
        """
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

"""Flow decorators ``@trigger(event=...)`` and ``@trigger_on_finish(flow=...)``.

They only matter for production deployments (``python flow.py production create``): the
deployment records the triggers, and ``production trigger --event NAME`` or the successful
end of a production run of the upstream flow starts the deployed flow. A normal ``run`` of a
decorated flow is not triggered (``Run.trigger`` is None), as in Metaflow.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mfstore.exception import MetaflowException

from .decorators import StepDecorator
from .delayed import has_delayed


class FlowDecorator(StepDecorator):
    """A decorator attached to a FlowSpec class (``cls._flow_decorators[name]``)."""

    name = "flow_decorator"

    def __init__(self, **attributes: Any) -> None:
        super().__init__(**attributes)
        self.triggers: list[dict[str, Any]] = []
        if not has_delayed(self.attributes):  # else checked once the configs are known
            self.init()

    def init(self) -> None:
        """Validate the attributes and fill ``triggers``."""


def _is_str(x: Any) -> bool:
    return isinstance(x, str)


def _no_callables(what: str) -> MetaflowException:
    return MetaflowException(
        f"Deploy-time (callable) values for *{what}* are not supported by mfstore: give the value itself."
    )


class _TriggerDecorator(FlowDecorator):
    """``@trigger`` and ``@trigger_on_finish``: one ``single`` or a list ``plural`` of what
    starts the deployed flow, each item one trigger (``_trigger``)."""

    single = ""
    plural = ""
    #: The error when ``plural`` is not a list.
    not_a_list = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The attributes: one item, a list of them, and Metaflow's deployment options.
        cls.defaults = {cls.single: None, cls.plural: [], "options": {}}

    def init(self) -> None:
        self.triggers.extend(self._trigger(item) for item in self._one_or_list())
        if not self.triggers:
            raise MetaflowException(f"No {self.single}(s) specified in *@{self.name}* decorator.")

    def _trigger(self, item: Any) -> dict[str, Any]:
        """The trigger of one item of the attribute."""
        raise NotImplementedError

    def _one_or_list(self) -> list[Any]:
        """The attribute ``single`` as a one-item list, or the list ``plural`` (at most one
        of them given)."""
        single, plural = self.single, self.plural
        one, many = self.attributes[single], self.attributes[plural]
        if one and many:
            raise MetaflowException(
                f"Specify only one of *{single}* or *{plural}* attributes in *@{self.name}* decorator."
            )
        if one:
            return [one]
        if not many:
            return []
        if callable(many):
            raise _no_callables(plural)
        if not isinstance(many, list):
            raise MetaflowException(self.not_a_list)
        return many


class TriggerDecorator(_TriggerDecorator):
    """Run the deployed flow when an event is sent.

    Like Metaflow, it matters only for production deployments: ``python flow.py
    production create`` records the triggers, and ``python flow.py production trigger
    --event NAME --payload KEY=VALUE`` (from any flow file using the same .mfdb) records
    the event and starts a production run of every deployed flow waiting for ``NAME``;
    that run's ``current.trigger`` and ``Run.trigger`` describe the event. A plain ``run``
    of the flow is not triggered. The payload's fields set the flow's Parameters: by the
    event's ``parameters`` mapping, or, for a flow with a single event and no mapping, the
    fields named like a Parameter. Unlike Metaflow, where a flow listing several events
    waits for all of them, mfstore starts the flow on each one of them. The attributes
    are checked when the class is defined (Metaflow's messages); deploy-time (callable)
    values are refused.

    Parameters
    ----------
    event : str or dict, optional, default None
        The event: its name, or ``{"name": NAME, "parameters": MAPPING}`` where MAPPING
        is ``{parameter: payload field}``, or a list of names and ``(parameter, field)``
        pairs (a name maps the field of the same name).
    events : list of str or dict, default []
        Several events, each as ``event`` is given (names must differ). Give ``event`` or
        ``events``, not both.
    options : dict, default {}
        Metaflow's options for the production scheduler's event sensor; accepted, unused.

    Example
    -------
    ::

        @trigger(event={"name": "data_ready", "parameters": {"day": "date"}})
        class DailyFlow(FlowSpec):
            day = Parameter("day", default="today")
            ...

    then ``python daily.py production create`` and ``python daily.py production trigger
    --event data_ready --payload date=2024-01-31``.
    """

    name = "trigger"
    single, plural = "event", "events"
    not_a_list = (
        "Incorrect format for *events* attribute in *@trigger* decorator. Supported format is list - \n"
        "@trigger(events=[{'name': 'foo', 'parameters': {'alpha': 'beta'}}, "
        "{'name': 'bar', 'parameters': {'gamma': 'kappa'}}])"
    )

    def init(self) -> None:
        super().init()
        names = [t["name"] for t in self.triggers]
        if len(names) != len(set(names)):
            raise MetaflowException("Duplicate event names defined in *@trigger* decorator.")

    def _trigger(self, event: Any) -> dict[str, Any]:
        if _is_str(event):
            return {"type": "event", "name": str(event), "parameters": {}}
        if isinstance(event, dict):
            if "name" not in event:
                raise MetaflowException(
                    "The *event* attribute for *@trigger* is missing the *name* key."
                )
            if callable(event["name"]):
                raise _no_callables("event name")
            return {
                "type": "event",
                "name": str(event["name"]),
                "parameters": self._parameters(event.get("parameters", {}), event["name"]),
            }
        if callable(event):
            raise _no_callables("event")
        raise MetaflowException(
            "Incorrect format for *event* attribute in *@trigger* decorator. "
            "Supported formats are string and dictionary - \n"
            "@trigger(event='foo') or @trigger(event={'name': 'foo', 'parameters': {'alpha': 'beta'}})"
        )

    @staticmethod
    def _parameters(parameters: Any, event_name: str) -> dict[str, str]:
        out: dict[str, str] = {}
        if isinstance(parameters, (list, tuple)):
            for mapping in parameters:
                if _is_str(mapping):
                    out[mapping] = mapping
                elif (
                    isinstance(mapping, tuple) and len(mapping) == 2 and all(map(_is_str, mapping))
                ):
                    out[mapping[0]] = mapping[1]
                else:
                    raise MetaflowException(
                        f"The *parameters* attribute for event {event_name} is invalid. It should be a list/tuple of "
                        "strings and lists/tuples of size 2."
                    )
        elif isinstance(parameters, dict):
            for key, value in parameters.items():
                if not _is_str(key) or not _is_str(value):
                    raise MetaflowException(
                        f"The *parameters* attribute for event {event_name} is invalid. It should be a dictionary of "
                        "string keys and string values."
                    )
                out[key] = value
        elif callable(parameters):
            raise _no_callables("parameters")
        return out


class TriggerOnFinishDecorator(_TriggerDecorator):
    """Run the deployed flow when a production run of another flow succeeds.

    Like Metaflow, it matters only for production deployments: after ``python flow.py
    production create``, every production run of the upstream flow (one started by
    ``production trigger``, or itself triggered) that succeeds starts a production run of
    this flow; its ``current.trigger.run`` (and ``Run.trigger``) is the upstream run. A
    plain ``run`` of either flow triggers nothing. Unlike Metaflow, where a flow listing
    several upstream flows waits for all of them, mfstore starts the flow when any one of
    them succeeds; a chain that comes back to a flow already started in it is not
    triggered again. The attributes are checked when the class is defined.

    Parameters
    ----------
    flow : str or dict, optional, default None
        The upstream flow's class name (or ``{"name": NAME}``). A project-qualified name
        (``project.branch.Flow``) is refused: name the flow by its class name.
    flows : list of str or dict, default []
        Several upstream flows, each as ``flow`` is given. Give ``flow`` or ``flows``,
        not both.
    options : dict, default {}
        Metaflow's options for the production scheduler's sensor; accepted, unused.

    Example
    -------
    ::

        @trigger_on_finish(flow="IngestFlow")
        class TrainFlow(FlowSpec):
            ...
    """

    name = "trigger_on_finish"
    single, plural = "flow", "flows"
    not_a_list = (
        "Incorrect type for *flows* attribute in *@trigger_on_finish* decorator. "
        "Supported type is list - \n@trigger_on_finish(flows=['FooFlow', 'BarFlow']"
    )

    def _trigger(self, item: Any) -> dict[str, Any]:
        if callable(item):
            raise _no_callables("flow")
        if isinstance(item, dict):
            if "name" not in item:
                raise MetaflowException(
                    "The *flow* attribute for *@trigger_on_finish* is missing the *name* key."
                )
            item = item["name"]
        if not _is_str(item):
            raise MetaflowException(
                "Incorrect type for *flow* attribute in *@trigger_on_finish* decorator. Supported type is "
                "string or Dict[str, str] - \n@trigger_on_finish(flow='FooFlow')"
            )
        if "." in item:
            raise MetaflowException(
                "mfstore has no @project: name the upstream flow of *@trigger_on_finish* by its class name "
                f"(got *{item}*)."
            )
        if not re.match(r"^[A-Za-z0-9_]+$", item):
            raise MetaflowException(
                f"Invalid flow name *{item}* in *@trigger_on_finish* decorator. Only alphanumeric characters "
                "and underscores(_) are allowed."
            )
        return {"type": "run", "name": item}


def flow_decorators(flow_cls: type) -> dict[str, FlowDecorator]:
    """The flow decorators of ``flow_cls`` by name (kept where Metaflow keeps them, in the
    class's ``_flow_decorators``; inherited from a base flow class too)."""
    found: dict[str, FlowDecorator] = getattr(flow_cls, "_flow_decorators", None) or {}
    return found


def _attach(cls: Any, deco: FlowDecorator) -> Any:
    if not isinstance(cls, type):
        raise MetaflowException(f"@{deco.name} decorates a FlowSpec class, not {cls!r}")
    own = dict(cls.__dict__.get("_flow_decorators") or {})
    if deco.name in own:
        raise MetaflowException(f"Flow *{cls.__name__}* already has a decorator @{deco.name}")
    own[deco.name] = deco
    setattr(cls, "_flow_decorators", own)  # noqa: B010 (the class is only known as Any)
    return cls


def make_flow_decorator(deco_cls: type[FlowDecorator]) -> Callable[..., Any]:
    """The ``@name`` / ``@name(k=v)`` function of a flow decorator class."""

    def decorator(cls: Any = None, **kwargs: Any) -> Any:
        if cls is not None:
            return _attach(cls, deco_cls(**kwargs))
        deco = deco_cls(**kwargs)  # validate at decoration time
        return lambda c: _attach(c, deco)

    decorator.__name__ = deco_cls.name
    decorator.__doc__ = deco_cls.__doc__
    return decorator


trigger = make_flow_decorator(TriggerDecorator)
trigger_on_finish = make_flow_decorator(TriggerOnFinishDecorator)


def flow_triggers(flow_cls: type) -> list[dict[str, Any]]:
    """The triggers of a flow class: ``{"type": "event", "name", "parameters"}`` / ``{"type": "run", "name"}``."""
    out: list[dict[str, Any]] = []
    for deco in flow_decorators(flow_cls).values():
        out.extend(dict(t) for t in deco.triggers)
    return out

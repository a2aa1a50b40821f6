"""``@card``: a step's cards are rendered in the task process once the step has succeeded
(Metaflow renders them in ``task_finished``, only for a successful task) and handed to the
runtime, which keeps them with the task in the .mfdb. ``current.card`` is in
``card_collector``."""

from __future__ import annotations

import inspect
import json
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from mfstore.exception import CardTimeout

from .card_collector import (
    CARD_ID_PATTERN,
    TYPE_CHECK_REGEX,
    CardComponentCollector,
    add_card,
    cards,
    collects_for,
    latest_data,
    serialized,
    warning,
)
from .current import current, update_env
from .decorators import StepDecorator, make_step_decorator, register_step_decorator


@register_step_decorator
class CardDecorator(StepDecorator):
    """Render a card (an HTML report) of each task of the step.

    Once the step function has succeeded, the task process renders the card (the card
    type's ``render(task)``) from the task's artifacts and the components the step added
    through ``current.card``; the runtime keeps the HTML with the task in the .mfdb. A
    failed task gets no card, as in Metaflow. Read cards with ``python flow.py card get
    PATHSPEC`` / ``card view`` or ``mfstore.cards.get_cards(task)``. A step may carry
    several ``@card`` (give them distinct ``id``). mfstore renders each card once, at the
    end of the task: there are no live updates while the step runs, so ``refresh_interval``
    and ``current.card.refresh()`` change nothing shown.

    Parameters
    ----------
    type : str, default "default"
        The card type: ``default`` (the task's artifacts and the user's components),
        ``blank`` (only the user's components), or the ``type`` of a card class from an
        installed card extension.
    id : str, optional, default None
        Names the card: ``current.card[id]`` adds components to it, and ``card get --id``
        finds it. Letters, digits and ``_`` only; another id is ignored with a warning.
    options : dict, default {}
        Keyword arguments for the card class (what they mean depends on the type).
    timeout : int, default 45
        Seconds the rendering may take; then it is stopped (an error card is kept instead
        when ``save_errors``).
    save_errors : bool, default True
        When rendering fails (unknown type, bad options, an exception, the timeout, no
        HTML), keep an error card with the reason; when False, keep no card.
    customize : bool, default False
        Make this card the one ``current.card.append`` adds to when the step has several
        editable cards (at most one ``@card`` of a step may set it).
    scope : str, default "task"
        Metaflow's card scope; recorded, every card is a task's card.
    rank : str, optional, default None
        Metaflow's ordering hint for its UI (``"high"``, ``"medium"``, ``"low"``); recorded.
    refresh_interval : int, default 5
        Metaflow's seconds between live updates of a running card; recorded, unused (see
        above).

    Example
    -------
    ::

        from mfstore.cards import Markdown

        @card(type="blank", id="summary")
        @step
        def report(self):
            current.card["summary"].append(Markdown(f"# {len(self.rows)} rows"))
            self.next(self.end)
    """

    name = "card"
    allow_multiple = True
    defaults: ClassVar[dict[str, Any]] = {
        "type": "default",
        "options": {},
        "scope": "task",
        "rank": None,  # Metaflow's ordering hint for its UI ("high", "medium", "low")
        "timeout": 45,
        "id": None,
        "save_errors": True,
        "customize": False,
        "refresh_interval": 5,
    }

    def task_pre_step(self, step_name: str, task_id: str) -> None:
        """Add this card to ``current.card`` (one collector for all the task's cards)."""
        from mfstore.cards import card_class

        owner = f"{current.pathspec}/{current.retry_count}"
        collector = current.card
        if not collects_for(collector, owner):
            collector = CardComponentCollector(owner)
            update_env(card=collector)
        a = self.attributes
        card_id = a["id"]
        if card_id is not None and CARD_ID_PATTERN.match(str(card_id)) is None:
            warning(
                f"@card with id '{card_id}' doesn't match REGEX pattern. Adding custom "
                f"components to cards will not be accessible via `current.card['{card_id}']`. "
                f"Please create `id` of pattern {TYPE_CHECK_REGEX}. "
            )
            card_id = None
        cls = card_class(a["type"])
        add_card(
            collector,
            a["type"],
            card_id,
            a,
            editable=bool(getattr(cls, "ALLOW_USER_COMPONENTS", False)),
            customize=str(a["customize"]) == "True",
        )


class CardTask:
    """What a card's ``render(task)`` sees: the finished task's pathspec, id and artifacts
    (``task["x"].data``, ``task.data.x``, ``"x" in task``)."""

    def __init__(self, pathspec: str, values: dict[str, Any]) -> None:
        self.pathspec = pathspec
        self.id = pathspec.split("/")[-1]
        self.finished = True
        self.successful = True
        self._values = values

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            raise KeyError(name)
        return _Artifact(name, self._values[name])

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[Any]:
        return iter([_Artifact(k, v) for k, v in self._values.items()])

    @property
    def data(self) -> Any:
        """The artifacts as attributes (``task.data.x``)."""

        class _Data:
            pass

        d = _Data()
        d.__dict__.update(self._values)
        return d

    def artifact_items(self) -> list[tuple[str, Any]]:
        """``(name, value)`` of the task's public artifacts."""
        return [(k, v) for k, v in self._values.items() if not k.startswith("_")]


class _Artifact:
    def __init__(self, name: str, data: Any) -> None:
        self.id = name
        self.data = data


@contextmanager
def _deadline(seconds: Any) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (SIGALRM, as Metaflow's ``card create`` does;
    no limit off the main thread or for a limit <= 0)."""
    try:
        limit = float(seconds) if seconds is not None else 0.0
    except (TypeError, ValueError):
        limit = 0.0
    if limit <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise CardTimeout()

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _instantiate(cls: type, options: Any, components: list[Any], graph: Any, flow: Any) -> Any:
    kwargs: dict[str, Any] = {"components": components, "graph": graph, "flow": flow}
    if options is not None:
        kwargs["options"] = options
    try:
        if "graph_info" in inspect.signature(cls).parameters:
            kwargs["graph_info"] = graph
    except (TypeError, ValueError):
        pass
    return cls(**kwargs)


def _render_one(
    meta: dict[str, Any], components: Any, task: CardTask, ctx: dict[str, Any]
) -> str | None:
    """One card's HTML, Metaflow's ``card create``: an error card (when ``save_errors``)
    for an unknown type, a constructor that refuses the arguments, a render that raises,
    times out or returns nothing; None when there is nothing to keep."""
    from mfstore.cards import card_class
    from mfstore.cards.cards import ErrorCard

    a = meta["attributes"]
    card_type, options, save_errors = a["type"], a["options"], bool(a["save_errors"])
    cls = card_class(card_type)
    error: str | None = None
    html: Any = None
    if cls is None:
        error = f"MetaflowCard named {card_type} not found. Check the `type` attribute in @card"
    else:
        try:
            mf_card = _instantiate(cls, options, serialized(components), ctx["graph"], ctx["flow"])
        except TypeError:
            mf_card = None
            error = f"Card of type {card_type} cannot support arguments {options}"
        if mf_card is not None:
            mf_card.runtime_data = latest_data(components)
            try:
                with _deadline(a["timeout"]):
                    html = mf_card.render(task)
            except CardTimeout:
                if not save_errors:  # Metaflow keeps nothing and says nothing
                    return None
                error = (
                    f"\nCard rendering timed out after {a['timeout']} seconds. To increase the "
                    "timeout duration for card rendering, please set the `timeout` parameter "
                    "in the @card decorator. \nStack Trace : \n" + traceback.format_exc()
                )
            except Exception:
                error = (
                    f"Card of type {card_type} is unable to be rendered with arguments "
                    f"{options}.\nStack trace :  {traceback.format_exc()}"
                )
            else:
                if html is None:
                    error = f"No information rendered from card of type {card_type}"
    if error is not None:
        if not save_errors:
            print(f"Card render failed with error : \n\n {error}", file=sys.stderr)
            return None
        html = ErrorCard().render(task, stack_trace=error)
    token = ctx.get("token", "final")
    return str(html).replace("[METAFLOW_RELOAD_TOKEN]", token)


def _final_data(
    meta: dict[str, Any], components: Any, task: CardTask, ctx: dict[str, Any]
) -> str | None:
    """The card's final data update (``refresh``) for cards that support live updates."""
    from mfstore.cards import card_class

    a = meta["attributes"]
    cls = card_class(a["type"])
    if cls is None or not getattr(cls, "RUNTIME_UPDATABLE", False):
        return None
    data = latest_data(components, mode="refresh")
    try:
        mf_card = _instantiate(cls, a["options"], [], ctx["graph"], ctx["flow"])
        with _deadline(a["timeout"]):
            out = mf_card.refresh(task, data)
        return json.dumps({"reload_token": "final", "data": out, "created_on": ctx["now"]})
    except Exception:  # Metaflow keeps nothing when refresh is missing or fails
        return None


def render_cards(
    pathspec: str,
    values: dict[str, Any],
    task_ok: bool = True,
    graph: Any = None,
    flow: Any = None,
) -> dict[str, str]:
    """Render the finished task's cards: ``{file name: JSON reference}`` for the runtime.
    A failed task has no cards (as in Metaflow)."""
    import time

    from mfstore.cards.cards import card_data_name, card_file_name

    collector = current.card
    if not isinstance(collector, CardComponentCollector) or not task_ok:
        return {}
    task = CardTask(pathspec, values)
    ctx = {"graph": graph, "flow": flow, "now": time.time()}
    out = {}
    for meta, components in cards(collector):
        a = meta["attributes"]
        text = _render_one(meta, components, task, ctx)
        save_type = a["type"] if CARD_ID_PATTERN.match(str(a["type"])) else "error"
        if text is not None:
            name = card_file_name(save_type, meta["card_id"], meta["uuid"])
            out[name] = json.dumps({"text": text})
        data = _final_data(meta, components, task, ctx)
        if data is not None:
            out[card_data_name(save_type, meta["card_id"], meta["uuid"])] = json.dumps(
                {"text": data}
            )
    return out


card = make_step_decorator(CardDecorator)

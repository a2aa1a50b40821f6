"""``@card`` and ``current.card``: a step's cards are rendered in the task process once
the step is done and handed to the runtime, which keeps them with the task in the .mfdb."""

from __future__ import annotations

import hashlib
import json
import traceback
from typing import Any

from mfstore.exception import MetaflowException

from .current import current
from .decorators import StepDecorator, make_step_decorator, register_step_decorator


@register_step_decorator
class CardDecorator(StepDecorator):
    """``@card(type="default", id=None, options={}, save_errors=True, customize=False)``:
    render a card of the task. A step may have several ``@card`` (distinct ids)."""

    name = "card"
    allow_multiple = True
    defaults: dict[str, Any] = {
        "type": "default",
        "options": {},
        "scope": "task",
        "timeout": 45,
        "id": None,
        "save_errors": True,
        "customize": False,
        "refresh_interval": 5,
    }

    def task_pre_step(self, step_name: str, task_id: str) -> None:
        """Give the step ``current.card`` (one collector for all the step's cards)."""
        collector = current.card
        if not isinstance(collector, CardComponentCollector):
            collector = CardComponentCollector()
            current._update_env(card=collector)
        collector._add(self)


class _ComponentList(list):  # type: ignore[type-arg]
    """The components of one card (``current.card["id"]``)."""

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        """Live updates are not kept by mfstore (the final card is)."""


class CardComponentCollector:
    """``current.card``: ``append``/``extend`` components to the step's editable card, or
    ``current.card["id"].append(...)`` to the card with that id."""

    def __init__(self) -> None:
        self._decos: list[CardDecorator] = []
        self._components: dict[int, _ComponentList] = {}

    def _add(self, deco: CardDecorator) -> None:
        self._decos.append(deco)
        self._components[id(deco)] = _ComponentList()

    def _default(self) -> _ComponentList | None:
        from mfstore.cards import CARD_TYPES

        editable = [
            d
            for d in self._decos
            if getattr(CARD_TYPES.get(d.attributes["type"]), "ALLOW_USER_COMPONENTS", False)
        ]
        custom = [d for d in editable if d.attributes["customize"]]
        if custom:
            return self._components[id(custom[0])]
        no_id = [d for d in editable if not d.attributes["id"]]
        if len(editable) == 1:
            return self._components[id(editable[0])]
        if len(no_id) == 1:
            return self._components[id(no_id[0])]
        return None

    def append(self, component: Any, id: str | None = None) -> None:
        """Add a component to the default editable card (ignored when there is none)."""
        target = self._default()
        if target is not None:
            target.append(component)

    def extend(self, components: list[Any]) -> None:
        """Add components to the default editable card."""
        for c in components:
            self.append(c)

    def clear(self) -> None:
        """Remove the default editable card's components."""
        target = self._default()
        if target is not None:
            target.clear()

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        """Live updates are not kept by mfstore (the final card is)."""

    @property
    def components(self) -> list[Any]:
        """The default editable card's components."""
        return list(self._default() or [])

    def __getitem__(self, card_id: str) -> _ComponentList:
        for d in self._decos:
            if d.attributes["id"] == card_id:
                return self._components[id(d)]
        return _ComponentList()  # like Metaflow: an unknown id collects into nothing

    def __setitem__(self, card_id: str, components: list[Any]) -> None:
        for d in self._decos:
            if d.attributes["id"] == card_id:
                self._components[id(d)][:] = list(components)

    def _cards(self) -> list[tuple[CardDecorator, list[Any]]]:
        return [(d, list(self._components[id(d)])) for d in self._decos]


class CardTask:
    """What a card's ``render(task)`` sees: the finished task's pathspec and artifacts."""

    def __init__(self, pathspec: str, values: dict[str, Any]) -> None:
        self.pathspec = pathspec
        self.finished = True
        self._values = values

    def __getitem__(self, name: str) -> Any:
        class _Art:
            def __init__(self, data: Any) -> None:
                self.data = data

        if name not in self._values:
            raise KeyError(name)
        return _Art(self._values[name])

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def artifact_items(self) -> list[tuple[str, Any]]:
        """``(name, value)`` of the task's public artifacts."""
        return [(k, v) for k, v in self._values.items() if not k.startswith("_")]


def render_cards(pathspec: str, values: dict[str, Any]) -> dict[str, str]:
    """Render the running step's cards: ``{file name: JSON reference}`` for the runtime."""
    from mfstore.cards import CARD_TYPES
    from mfstore.cards.cards import card_file_name

    collector = current.card
    if not isinstance(collector, CardComponentCollector):
        return {}
    task = CardTask(pathspec, values)
    out = {}
    for deco, components in collector._cards():
        a = deco.attributes
        cls = CARD_TYPES.get(a["type"])
        try:
            if cls is None:
                raise MetaflowException(f"Card type *{a['type']}* is not known to mfstore")
            kwargs: dict[str, Any] = {"options": a["options"] or {}}
            if cls.ALLOW_USER_COMPONENTS:
                kwargs["components"] = components
            text = cls(**kwargs).render(task)
        except Exception:
            if not a["save_errors"]:
                continue
            text = CARD_TYPES["error"](options={"error": traceback.format_exc()}).render(task)
        digest = hashlib.sha1(f"{pathspec}/{a['type']}/{a['id']}".encode()).hexdigest()
        out[card_file_name(a["type"], a["id"], digest)] = json.dumps({"text": str(text)})
    return out


card = make_step_decorator(CardDecorator)

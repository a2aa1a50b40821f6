"""``current.card``: the components a step adds to its cards (Metaflow's
``component_serializer``), with Metaflow's rules for which card ``append`` reaches.

- ``current.card.append``/``extend`` add to the *default editable* card: the one card whose
  type allows user components (``ALLOW_USER_COMPONENTS``); else, among several, the one
  without an ``id``; a card with ``customize=True`` wins over both.
- ``current.card["id"]`` is the card with that id (editable or not); an unknown id gives an
  empty list not tied to any card, and a warning.
- Only ``MetaflowCardComponent`` objects are kept; anything else is dropped with a warning,
  never an error: card code never fails the step.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from mfstore.env import METAFLOW_CARD_NO_WARNING
from mfstore.exception import ComponentOverwriteNotSupportedException

#: What a card ``id`` may look like (Metaflow's ``TYPE_CHECK_REGEX``).
TYPE_CHECK_REGEX = "^[a-zA-Z0-9_]+$"
CARD_ID_PATTERN = re.compile(TYPE_CHECK_REGEX)


def warning(message: str) -> None:
    """``[@card WARNING] message`` on the task's stderr (Metaflow's wording)."""
    print(f"[@card WARNING] {message}", file=sys.stderr)


def no_warnings() -> bool:
    """``METAFLOW_CARD_NO_WARNING``: keep warnings out of the cards (read when needed, so
    ``@environment(vars={"METAFLOW_CARD_NO_WARNING": "True"})`` applies)."""
    return os.environ.get(METAFLOW_CARD_NO_WARNING, "").lower() not in ("", "0", "false")


def _is_component(obj: Any) -> bool:
    from mfstore.cards.components import MetaflowCardComponent

    return isinstance(obj, MetaflowCardComponent)


def create_component_id(component: Any) -> str:
    """``<class name>_<6 hex>`` (Metaflow's default component id)."""
    return type(component).__name__.lower() + "_" + uuid.uuid4().hex[:6]


def render_component(component: Any) -> Any:
    """A component's rendered form (a ``str`` or JSON-serializable ``dict``), or None when it
    is not a component, fails to render or renders to something else (Metaflow drops those)."""
    if not _is_component(component):
        return None
    try:
        out = component.render()
    except Exception:
        return None
    if type(out) not in (str, dict):
        return None
    try:
        json.dumps(out)
    except (TypeError, ValueError, OverflowError):
        return None
    return out


class ComponentStore:
    """The components of one card, in insertion order, by component id."""

    def __init__(
        self,
        card_type: str | None = None,
        components: Iterable[Any] | None = None,
        user_set_id: str | None = None,
    ) -> None:
        self._card_type = card_type
        self._user_set_id = user_set_id
        self._component_map: dict[str, Any] = {}
        self._layout_last_changed_on = time.time()
        for c in list(components or []):
            self._store_component(c)

    @property
    def layout_last_changed_on(self) -> float:
        """When components were last added or removed."""
        return self._layout_last_changed_on

    def _store_component(self, component: Any, component_id: str | None = None) -> None:
        if not _is_component(component):
            warning(
                f"Component ({component}) is not a valid MetaflowCardComponent. "
                "It will not be stored."
            )
            return
        if component_id is not None:
            component.component_id = component_id
        elif component.component_id is None:
            component.component_id = create_component_id(component)
        self._component_map[component.component_id] = component
        self._layout_last_changed_on = time.time()

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._component_map.values()))

    def __setitem__(self, key: str, value: Any) -> None:
        if self._component_map.get(key) is not None:
            raise ComponentOverwriteNotSupportedException(key, self._user_set_id, self._card_type)
        self._store_component(value, component_id=key)

    def __getitem__(self, key: str) -> Any:
        if key not in self._component_map:
            from mfstore.cards.components import StubComponent

            self._store_component(StubComponent(key), component_id=key)
        return self._component_map[key]

    def __delitem__(self, key: str) -> None:
        if key not in self._component_map:
            raise KeyError(
                f"MetaflowCardComponent with id `{key}` not found. Available components for "
                f"the cards include : {', '.join(self.keys())}"
            )
        del self._component_map[key]
        self._layout_last_changed_on = time.time()

    def __contains__(self, key: object) -> bool:
        return key in self._component_map

    def __len__(self) -> int:
        return len(self._component_map)

    def __str__(self) -> str:
        names = "`, `".join(self.keys())
        return f"Card components present in the card: `{names}` "

    def append(self, component: Any, id: str | None = None) -> None:
        """Add a component (with ``id`` as its component id)."""
        self._store_component(component, component_id=id)

    def extend(self, components: Iterable[Any]) -> None:
        """Add components."""
        for c in components:
            self._store_component(c)

    def clear(self) -> None:
        """Remove every component."""
        self._component_map.clear()
        self._layout_last_changed_on = time.time()

    def keys(self) -> list[str]:
        """The component ids."""
        return list(self._component_map)

    def values(self) -> Any:
        """The components."""
        return self._component_map.values()


class CardComponentManager:
    """One card's components (``current.card["id"]``): ``append``, ``extend``, ``clear``,
    ``components``; ``refresh`` keeps the data for the card's final data update."""

    def __init__(
        self,
        card_type: str,
        components: Iterable[Any] | None = None,
        user_set_card_id: str | None = None,
    ) -> None:
        self._components = ComponentStore(card_type, components, user_set_card_id)
        self._latest_user_data: Any = None

    def append(self, component: Any, id: str | None = None) -> None:
        """Add a component to this card."""
        self._components.append(component, id=id)

    def extend(self, components: Iterable[Any]) -> None:
        """Add components to this card."""
        self._components.extend(components)

    def clear(self) -> None:
        """Remove this card's components."""
        self._components.clear()

    def refresh(self, data: Any = None, force: bool = False) -> None:
        """Keep ``data`` for the card's data update (mfstore renders cards once, at the end
        of the task: there are no live updates to make)."""
        self._latest_user_data = data

    @property
    def components(self) -> ComponentStore:
        """The card's components, by component id."""
        return self._components

    def __iter__(self) -> Iterator[Any]:
        return iter(self._components)


class CardComponentCollector:
    """``current.card``: ``append``/``extend``/``clear``/``components``/``refresh`` act on
    the step's default editable card; ``current.card[ID]`` on the card with that ``id``;
    ``current.card.get(type=T)`` lists the component lists of the cards of type ``T``."""

    def __init__(self, owner: str = "") -> None:
        self._owner = owner
        self._card_component_store: dict[str, CardComponentManager] = {}
        self._cards_meta: dict[str, dict[str, Any]] = {}
        self._card_id_map: dict[str, str] = {}
        self._default_editable_card: str | None = None
        self._finalized = False
        self._warned_once: dict[str, Any] = {
            "__getitem__": {},
            "append": False,
            "extend": False,
            "components": False,
        }

    def _finalize(self) -> None:
        """Work out the default editable card and the id lookup (once all cards are added)."""
        if self._finalized:
            return
        self._finalized = True
        self._default_editable_card = None
        self._card_id_map = {}
        metas = list(self._cards_meta.values())
        editable = [c for c in metas if c["editable"]]
        if not editable:
            return
        card_ids = [c["card_id"] for c in metas if c["card_id"] is not None]
        for c in metas:
            if c["card_id"] is not None:
                self._card_id_map[c["card_id"]] = c["uuid"]
        if len(editable) == 1:
            self._default_editable_card = editable[0]["uuid"]
            return
        none_id = [c for c in editable if c["card_id"] is None]
        if len(none_id) == 1:
            self._default_editable_card = none_id[0]["uuid"]
        if len(card_ids) != len(set(card_ids)):
            dupes = [i for i in dict.fromkeys(card_ids) if card_ids.count(i) > 1]
            warning(
                "Multiple `@card` decorator have been annotated with duplicate ids : "
                f"{', '.join(dupes)}. `current.card['{dupes[0]}']` will not work"
            )
            for i in dupes:
                del self._card_id_map[i]
        custom = [c for c in editable if c["customize"]]
        if len(custom) > 1:
            warning(
                "Multiple @card decorators have `customize=True`. Only one @card per @step "
                "can have `customize=True`. `current.card.append` will ignore all decorators "
                "marked `customize=True`."
            )
        elif len(custom) == 1:
            self._default_editable_card = custom[0]["uuid"]

    def _add_warning_to_cards(self, message: str) -> None:
        if no_warnings():
            return
        from mfstore.cards.components import Error

        for manager in self._card_component_store.values():
            manager.append(Error(message, "@card WARNING"))

    def _warn_no_default(self, what: str) -> None:
        """Metaflow's warning (once per call kind) when no card is default editable."""
        if self._warned_once.get(what):
            return
        self._warned_once[what] = True
        metas = list(self._cards_meta.values())
        one = len(metas) == 1
        card_type = metas[0]["type"] if one else ""
        if what == "append":
            from mfstore.cards import card_class

            runtime = (
                "Component will not be appended and `current.card.append` will not work for "
                "any call during this runtime execution."
            )
            if one and card_class(card_type) is not None:
                msg = [
                    f"Card of type `{card_type}` is not an editable card.",
                    runtime,
                    "Please use an editable card.",
                ]
            elif one:
                msg = [
                    f"Card of type `{card_type}` doesn't exist.",
                    runtime,
                    "Please use a card `type` which exits.",
                ]
            else:
                msg = [
                    "`current.card.append` cannot disambiguate between multiple editable cards.",
                    runtime,
                    "To fix this set the `id` argument in all @card's when using multiple @card "
                    "decorators over a single @step. ",
                ]
        else:
            verb = "extended" if what == "extend" else "updated"
            if not one and what == "components":
                verb = "accessible"
            runtime = (
                f"Components list will not be {verb} and `current.card.{what}` will not work "
                "for any call during this runtime execution."
            )
            fix = (
                "To fix this set the `id` argument in all @card when using multiple @card "
                "decorators over a single @step"
            )
            if one:
                msg = [
                    f"Card of type `{card_type}` is not an editable card.",
                    runtime,
                    "Please use an editable card",
                ]
            elif what == "extend":
                msg = [
                    "`current.card.extend` cannot disambiguate between multiple @card decorators.",
                    runtime,
                    fix + ".",
                ]
            else:
                msg = [
                    "`current.card.components` cannot disambiguate between multiple @card "
                    "decorators.",
                    runtime,
                    fix + " and reference `current.card[ID].components`",
                    "to update/access the appropriate card component.",
                ]
        warning(" ".join(msg))
        if what != "components":
            self._add_warning_to_cards("\n".join(msg))

    def _default(self, what: str) -> CardComponentManager | None:
        self._finalize()
        if self._default_editable_card is None:
            self._warn_no_default(what)
            return None
        return self._card_component_store[self._default_editable_card]

    def get(self, type: str | None = None) -> list[CardComponentManager]:
        """The component lists of the step's cards of ``type`` ([] when none)."""
        return [
            self._card_component_store[u]
            for u, meta in self._cards_meta.items()
            if meta["type"] == type
        ]

    def __getitem__(self, key: str) -> Any:
        """The card with ``@card(id=key)``; an unknown id gives a detached empty list."""
        self._finalize()
        if key in self._card_id_map:
            return self._card_component_store[self._card_id_map[key]]
        if key not in self._warned_once["__getitem__"]:
            self._warned_once["__getitem__"][key] = True
            msg = [
                f"`current.card['{key}']` is not present. Please set the `id` argument in "
                f"@card to '{key}' to access `current.card['{key}']`.",
                f"`current.card['{key}']` will return an empty `list` which is not referenced "
                "to `current.card` object.",
            ]
            warning(" ".join(msg))
            self._add_warning_to_cards("\n".join(msg))
        return []

    def __setitem__(self, key: str, value: Any) -> None:
        """Replace the components of the card with ``@card(id=key)``."""
        self._finalize()
        if key not in self._card_id_map:
            warning(
                f"`current.card['{key}']` is not present. Please set the `id` argument in "
                f"@card to '{key}' to access `current.card['{key}']`. "
            )
            return
        if not isinstance(value, list):
            warning(
                f"`current.card['{key}']` not set. `current.card['{key}']` should be a "
                "`list` of `MetaflowCardComponent`."
            )
            return
        card_uuid = self._card_id_map[key]
        self._card_component_store[card_uuid] = CardComponentManager(
            self._cards_meta[card_uuid]["type"], value, user_set_card_id=key
        )

    def append(self, component: Any, id: str | None = None) -> None:
        """Add a component to the default editable card (a warning when there is none)."""
        target = self._default("append")
        if target is not None:
            target.append(component, id=id)

    def extend(self, components: Iterable[Any]) -> None:
        """Add components to the default editable card (a warning when there is none)."""
        target = self._default("extend")
        if target is not None:
            target.extend(components)

    @property
    def components(self) -> ComponentStore | None:
        """The default editable card's components (None, with a warning, when there is none)."""
        target = self._default("components")
        return None if target is None else target.components

    def clear(self) -> None:
        """Remove the default editable card's components."""
        self._finalize()
        if self._default_editable_card is not None:
            self._card_component_store[self._default_editable_card].clear()

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        """Keep data for the default editable card's data update."""
        self._finalize()
        if self._default_editable_card is not None:
            self._card_component_store[self._default_editable_card].refresh(*args, **kwargs)


# -- the runtime's side (``card_decorator``); kept off ``current.card``, which users see ---


def collects_for(card: Any, owner: str) -> bool:
    """Whether ``card`` (``current.card``) is the collector of the task attempt ``owner``."""
    return isinstance(card, CardComponentCollector) and card._owner == owner


def add_card(
    collector: CardComponentCollector,
    card_type: str,
    card_id: str | None,
    attributes: dict[str, Any],
    *,
    editable: bool,
    customize: bool,
) -> str:
    """Add a ``@card`` of the step to ``collector`` (Metaflow's ``_add_card``); its uuid."""
    card_uuid = uuid.uuid4().hex
    collector._cards_meta[card_uuid] = {
        "type": card_type,
        "uuid": card_uuid,
        "card_id": card_id,
        "editable": editable,
        "customize": customize,
        "attributes": attributes,
    }
    collector._card_component_store[card_uuid] = CardComponentManager(
        card_type, user_set_card_id=card_id
    )
    collector._finalized = False
    return card_uuid


def cards(collector: CardComponentCollector) -> list[tuple[dict[str, Any], CardComponentManager]]:
    """``(card metadata, its components)`` of every card, in decorator order."""
    collector._finalize()
    return [(m, collector._card_component_store[u]) for u, m in collector._cards_meta.items()]


def serialized(card: CardComponentManager) -> list[Any]:
    """The card's components rendered, for its constructor (those that fail are dropped)."""
    return [r for r in (render_component(c) for c in card) if r is not None]


def latest_data(card: CardComponentManager, mode: str = "render") -> dict[str, Any]:
    """Metaflow's data object for the final render (``mode="render"``) or data update
    (``mode="refresh"``) of the card."""
    comps = {}
    for c in card.components.values():
        if getattr(c, "REALTIME_UPDATABLE", False):
            rendered = render_component(c)
            if rendered is not None:
                comps[c.component_id] = rendered
    user = card._latest_user_data
    try:
        json.dumps(user)
    except (TypeError, ValueError):
        warning("Data provided to `refresh` is not JSON serializable. It will be ignored.")
        user = {}
    return {
        "user": user,
        "components": comps,
        "render_seq": "final",
        "component_update_ts": card.components.layout_last_changed_on,
        "mode": mode,
    }

"""Card types (``MetaflowCard`` subclasses, registered by ``type``) and reading the cards kept
with a task (``get_cards``). A card is a task file ``mf.cards/cards/TYPE[-ID]-HASH.html``
(metadata of type ``mfstore-file``, its value ``{"text": html}``) -- the layout the Metaflow
extension uses, so the UI shows cards from either runtime."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

from mfstore.exception import MetaflowException

#: Where cards live among a task's files.
CARD_PREFIX = "mf.cards/cards/"
_NAME = re.compile(r"^(?P<type>[^/]+?)-(?:(?P<id>[^/]+)-)?(?P<hash>[0-9a-f]{8,})\.html$")


class CardNotPresentException(MetaflowException):
    """The task has no card matching the request (Metaflow's name)."""

    headline = "Card not found in datastore"
    metaflow_type = "metaflow.plugins.cards.exception.CardNotPresentException"

    def __init__(self, pathspec: str, card_type: str | None = None, card_id: str | None = None):
        what = " and ".join(
            x for x in (card_type and f"type {card_type}", card_id and f"id {card_id}") if x
        )
        super().__init__(f"No card found for {pathspec}" + (f" with {what}" if what else ""))


class MetaflowCard:
    """Base of card types: ``type`` names it in ``@card(type=...)``; ``render(task)``
    returns the card's HTML. ``ALLOW_USER_COMPONENTS`` lets ``current.card.append`` add
    components (passed to ``__init__`` as ``components``)."""

    type: str | None = None
    ALLOW_USER_COMPONENTS = False
    RUNTIME_UPDATABLE = False
    separator = ""

    def __init__(self, options: dict[str, Any] | None = None, components: Any = None, **kw: Any):
        self._options = options or {}
        self._components = list(components or [])

    def render(self, task: Any) -> str:
        """The card's HTML for ``task`` (a finished task of the Client API)."""
        raise NotImplementedError


#: Card types by name (``@card(type=NAME)``).
CARD_TYPES: dict[str, type[MetaflowCard]] = {}


def register_card_type(cls: type[MetaflowCard]) -> type[MetaflowCard]:
    """Make ``cls`` available as ``@card(type=cls.type)`` (usable as a class decorator)."""
    if not cls.type:
        raise MetaflowException(f"Card class {cls.__name__} has no type")
    CARD_TYPES[cls.type] = cls
    return cls


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>{body}</body></html>"
    )


@register_card_type
class BlankCard(MetaflowCard):
    """Only the components the step appends (``type="blank"``)."""

    type = "blank"
    ALLOW_USER_COMPONENTS = True

    def render(self, task: Any) -> str:
        """The components, one after the other."""
        title = self._options.get("title") or task.pathspec
        return _page(title, "".join(c.render() for c in self._components))


@register_card_type
class DefaultCard(MetaflowCard):
    """The task's artifacts, then the appended components (``type="default"``)."""

    type = "default"
    ALLOW_USER_COMPONENTS = True

    def render(self, task: Any) -> str:
        """A heading with the pathspec, the components, and a table of artifacts."""
        from .components import Table

        rows = [[name, repr(value)[:200]] for name, value in sorted(task.artifact_items())]
        body = (
            f"<h1>{html.escape(task.pathspec)}</h1>"
            + "".join(c.render() for c in self._components)
            + Table(rows, headers=["artifact", "value"]).render()
        )
        return _page(task.pathspec, body)


@register_card_type
class ErrorCard(MetaflowCard):
    """Shown instead of a card whose rendering failed (``save_errors=True``)."""

    type = "error"

    def __init__(self, options: dict[str, Any] | None = None, **kw: Any) -> None:
        super().__init__(options, **kw)
        self.error = str((options or {}).get("error", ""))

    def render(self, task: Any) -> str:
        """The error that stopped the card."""
        return _page(
            "Card error", f"<h1>Card render failed</h1><pre>{html.escape(self.error)}</pre>"
        )


@register_card_type
class TaskSpecCard(MetaflowCard):
    """The task's pathspec (Metaflow's ``taskspec_card``)."""

    type = "taskspec_card"

    def render(self, task: Any) -> str:
        """The pathspec, as text."""
        return str(task.pathspec)


def card_file_name(card_type: str, card_id: str | None, digest: str) -> str:
    """``mf.cards/cards/TYPE[-ID]-HASH.html``."""
    middle = f"{card_type}-{card_id}-" if card_id else f"{card_type}-"
    return f"{CARD_PREFIX}{middle}{digest}.html"


class Card:
    """One card of a task: ``type``, ``id``, ``hash``, ``path``; ``get()`` is its HTML."""

    def __init__(
        self, card_type: str, card_id: str | None, card_hash: str, path: str, html_text: str
    ) -> None:
        self.type = card_type
        self.id = card_id
        self.hash = card_hash
        self.path = path
        self._html = html_text

    def get(self) -> str:
        """The card's HTML."""
        return self._html

    def get_data(self) -> dict[str, Any] | None:
        """Runtime data of live-updating cards (not kept by mfstore: None)."""
        return None

    def _repr_html_(self) -> str:
        return self._html

    def __repr__(self) -> str:
        return f"<Card type={self.type} id={self.id} hash={self.hash}>"


class CardContainer:
    """The cards of a task (a list-like object of ``Card``)."""

    def __init__(self, cards: list[Card], pathspec: str) -> None:
        self._cards = cards
        self.pathspec = pathspec

    def __len__(self) -> int:
        return len(self._cards)

    def __iter__(self) -> Iterator[Card]:
        return iter(self._cards)

    def __getitem__(self, index: int) -> Card:
        return self._cards[index]

    def _repr_html_(self) -> str:
        return "".join(c.get() for c in self._cards)


def parse_card_name(name: str) -> tuple[str, str | None, str] | None:
    """``(type, id, hash)`` of a card file name, or None if it is not a card."""
    if not name.startswith(CARD_PREFIX):
        return None
    m = _NAME.match(name[len(CARD_PREFIX) :])
    if m is None:
        return None
    return m.group("type"), m.group("id"), m.group("hash")


def task_cards(files: list[tuple[int | None, str, str]], pathspec: str) -> list[Card]:
    """The cards among a task's files (``(attempt, name, reference)``), latest attempt's."""
    latest = max((a for a, n, _ in files if a is not None and parse_card_name(n)), default=None)
    out = []
    for attempt, name, ref in files:
        parsed = parse_card_name(name)
        if parsed is None or (latest is not None and attempt != latest):
            continue
        try:
            value = json.loads(ref)
        except ValueError:
            continue
        text = value.get("text") if isinstance(value, dict) else None
        if isinstance(text, str):
            out.append(Card(parsed[0], parsed[1], parsed[2], name, text))
    return out


def _task_files(pathspec: str) -> list[tuple[int | None, str, str]]:
    """``(attempt, name, reference)`` of the files kept with the task ``pathspec``."""
    from mfstore import provider, query

    store = provider.current_store()
    row = store.one(*query.compile_task_lookup(*pathspec.split("/")))
    if row is None:
        return []
    return [tuple(r) for r in store.query(*query.compile_task_files(int(row[2])))]


def get_cards(
    task: Any, id: str | None = None, type: str | None = None, follow_resumed: bool = True
) -> CardContainer:
    """The cards of a task (a ``Task`` or a ``flow/run/step/task`` pathspec), optionally
    only those of ``type`` and/or ``id``. A task cloned by ``resume`` shows its origin's
    cards (``follow_resumed``)."""
    from mfstore.client import Task

    if isinstance(task, str):
        if len(task.split("/")) != 4:
            raise MetaflowException(
                f"Pathspec {task} is not a task pathspec: give flow/run/step/task"
            )
        task = Task(task, _namespace_check=False)
    cards = [
        c
        for c in task_cards(_task_files(task.pathspec), task.pathspec)
        if (type is None or c.type == type) and (id is None or c.id == id)
    ]
    if not cards and follow_resumed and task.origin_pathspec:
        return get_cards(task.origin_pathspec, id=id, type=type, follow_resumed=False)
    if not cards:
        raise CardNotPresentException(task.pathspec, type, id)
    return CardContainer(cards, task.pathspec)

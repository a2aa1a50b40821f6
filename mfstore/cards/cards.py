"""Card types (``MetaflowCard`` subclasses, registered by ``type``) and reading the cards kept
with a task (``get_cards``). A card is a task file ``mf.cards/cards/TYPE[-ID]-HASH.html``
(metadata of type ``mfstore-file``, its value ``{"text": html}``) -- the layout the Metaflow
extension uses, so the UI shows cards from either runtime."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mfstore.exception import (
    CardNotPresentException,
    IncorrectArgumentException,
    IncorrectPathspecException,
    MetaflowException,
)

builtins_type = type

#: Where cards live among a task's files.
CARD_PREFIX = "mf.cards/cards/"
#: Where the data updates of cards live.
DATA_PREFIX = "mf.cards/runtime/"
_NAME = re.compile(r"^(?P<type>[^/]+?)-(?:(?P<id>[^/]+)-)?(?P<hash>[0-9a-f]{8,})\.html$")


class MetaflowCard:
    """Base of card types: ``type`` names it in ``@card(type=...)``; ``render(task)``
    returns the card's HTML. ``ALLOW_USER_COMPONENTS`` makes the card the target of
    ``current.card.append``. Metaflow's constructor: ``options`` (the decorator's),
    ``components`` (the rendered components the step added: ``str`` or ``dict`` each),
    ``graph`` (the flow's steps) and ``flow``."""

    RELOAD_POLICY_NEVER = "never"
    RELOAD_POLICY_ALWAYS = "always"
    RELOAD_POLICY_ONCHANGE = "onchange"
    #: Replaced in the rendered HTML by the reload token ("final" for a finished task).
    RELOAD_POLICY_TOKEN = "[METAFLOW_RELOAD_TOKEN]"

    type: str | None = None
    ALLOW_USER_COMPONENTS = False
    RUNTIME_UPDATABLE = False
    RELOAD_POLICY = RELOAD_POLICY_NEVER
    scope = "task"
    #: The data of the final render (Metaflow's ``runtime_data``), set before ``render``.
    runtime_data: Any = None
    separator = ""

    def __init__(
        self,
        options: dict[str, Any] | None = None,
        components: Any = None,
        graph: Any = None,
        flow: Any = None,
        **kw: Any,
    ):
        self._options = options or {}
        self._components = list(components or [])

    def render(self, task: Any) -> str:
        """The card's HTML for ``task`` (the finished task)."""
        raise NotImplementedError

    def render_runtime(self, task: Any, data: Any) -> str:
        """The card while the task runs (cards that support live updates)."""
        raise NotImplementedError

    def refresh(self, task: Any, data: Any) -> Any:
        """The data update of a live card (kept as the card's data: ``Card.get_data()``)."""
        raise NotImplementedError

    def reload_content_token(self, task: Any, data: Any) -> str:
        """When the UI reloads the card (``RELOAD_POLICY_ONCHANGE``)."""
        return "content-token"


def fragment(item: Any) -> str:
    """One rendered component as HTML: a component's ``str`` is its HTML; a ``dict`` (the
    data of a data component) is shown as escaped JSON."""
    if hasattr(item, "render") and not isinstance(item, (str, dict)):
        item = item.render()
    if isinstance(item, str):
        return item
    return f"<pre>{html.escape(json.dumps(item, default=str))}</pre>"


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
        return _page(title, "".join(fragment(c) for c in self._components))


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
            + "".join(fragment(c) for c in self._components)
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

    def render(self, task: Any, stack_trace: str | None = None) -> str:
        """The error that stopped the card (``stack_trace``, else ``options["error"]``)."""
        text = self.error if stack_trace is None else stack_trace
        return _page("Card error", f"<h1>Card render failed</h1><pre>{html.escape(text)}</pre>")


@register_card_type
class TaskSpecCard(MetaflowCard):
    """The task's pathspec (Metaflow's ``taskspec_card``)."""

    type = "taskspec_card"

    def render(self, task: Any) -> str:
        """The pathspec, as text."""
        return str(task.pathspec)


def card_file_name(card_type: str, card_id: str | None, digest: str) -> str:
    """``mf.cards/cards/TYPE[-ID]-HASH.html`` (Metaflow's file name; HASH is the card's uuid)."""
    middle = f"{card_type}-{card_id}-" if card_id else f"{card_type}-"
    return f"{CARD_PREFIX}{middle}{digest}.html"


def card_data_name(card_type: str, card_id: str | None, digest: str) -> str:
    """``mf.cards/runtime/TYPE[-ID]-HASH.data.json``: a card's data update."""
    middle = f"{card_type}-{card_id}-" if card_id else f"{card_type}-"
    return f"{DATA_PREFIX}{middle}{digest}.data.json"


@dataclass(eq=False, repr=False)
class Card:
    """One card of a task: ``type``, ``id``, ``hash``, ``path``; ``get()`` is its HTML,
    ``get_data()`` its final data update (cards that support live updates), else None;
    ``origin_pathspec`` the task it was cloned from by a resume (``from_resumed``)."""

    type: str
    id: str | None
    hash: str
    path: str
    _html: str
    _data: str | None = None
    origin_pathspec: str | None = None
    from_resumed: bool = field(init=False)

    def __post_init__(self) -> None:
        self.from_resumed = self.origin_pathspec is not None

    def get(self) -> str:
        """The card's HTML."""
        return self._html

    def get_data(self) -> dict[str, Any] | None:
        """The card's data update (``{"reload_token", "data", "created_on"}``), or None."""
        from mfstore.blobs import from_json  # lazily, as file_text below

        return from_json(self._data, dict)

    def view(self) -> None:
        """Open the card in a web browser (a temporary file)."""
        import tempfile
        import webbrowser

        with tempfile.NamedTemporaryFile("w", suffix=".html", delete=False) as fh:
            fh.write(self._html)
        webbrowser.open("file://" + fh.name)

    def _repr_html_(self) -> str:
        return self._html

    def __str__(self) -> str:
        return f"<Card at '{self.path}'>"

    def __repr__(self) -> str:
        return f"<Card type={self.type} id={self.id} hash={self.hash}>"


class CardContainer:
    """The cards of a task (an immutable list-like object of ``Card``)."""

    def __init__(
        self, cards: list[Card], pathspec: str, origin_pathspec: str | None = None
    ) -> None:
        self._cards = cards
        self.pathspec = pathspec
        self.from_resumed = origin_pathspec is not None
        self.origin_pathspec = origin_pathspec

    def __len__(self) -> int:
        return len(self._cards)

    def __iter__(self) -> Iterator[Card]:
        return iter(self._cards)

    def __getitem__(self, index: int) -> Card:
        return self._cards[index]

    def _repr_html_(self) -> str:
        return "\n".join(
            f"<h1>Displaying Card Of Type : {html.escape(c.type.title())}</h1>{c.get()}"
            for c in self._cards
        )


def parse_card_name(name: str) -> tuple[str, str | None, str] | None:
    """``(type, id, hash)`` of a card file name, or None if it is not a card."""
    if not name.startswith(CARD_PREFIX):
        return None
    m = _NAME.match(name[len(CARD_PREFIX) :])
    if m is None:
        return None
    return m.group("type"), m.group("id"), m.group("hash")


def task_cards(
    files: list[tuple[int | None, str, str]], store: Any = None, origin: str | None = None
) -> list[Card]:
    """The cards among a task's files (``(attempt, name, reference)``), latest attempt's."""
    from mfstore.blobs import file_text  # lazily: card types load in every task process

    latest = max((a for a, n, _ in files if a is not None and parse_card_name(n)), default=None)
    data = {n[len(DATA_PREFIX) :]: ref for _, n, ref in files if n.startswith(DATA_PREFIX)}
    out = []
    for attempt, name, ref in files:
        parsed = parse_card_name(name)
        if parsed is None or (latest is not None and attempt != latest):
            continue
        text = file_text(store, ref, what="card")
        if text is None:
            continue
        data_ref = data.get(name[len(CARD_PREFIX) : -len(".html")] + ".data.json")
        data_text = None if data_ref is None else file_text(store, data_ref, what="card")
        out.append(Card(parsed[0], parsed[1], parsed[2], name, text, data_text, origin))
    return out


def matching(
    cards: list[Card],
    card_type: str | None = None,
    card_hash: str | None = None,
    card_id: str | None = None,
) -> list[Card]:
    """The cards of ``card_type``; then those whose hash starts with ``card_hash`` or, without
    a hash, those with ``card_id`` (Metaflow's rule: a hash makes the id irrelevant)."""
    out = []
    for c in cards:
        if card_type is not None and c.type != card_type:
            continue
        if card_hash is not None:
            if not c.hash.startswith(card_hash):
                continue
        elif card_id is not None and c.id != card_id:
            continue
        out.append(c)
    return out


def _task_files(pathspec: str) -> tuple[list[tuple[int | None, str, str]], Any]:
    """``(attempt, name, reference)`` of the files kept with the task ``pathspec``."""
    from mfstore import provider, query

    store = provider.current_store()
    row = store.one(*query.compile_task_lookup(*pathspec.split("/")))
    if row is None:
        return [], store
    return [tuple(r) for r in store.query(*query.compile_task_files(int(row[2])))], store


def origin_of(task: Any) -> str | None:
    """The task a resumed task was cloned from, followed to the first run (Metaflow's
    ``resumed_info``), or None."""
    from mfstore.client import Task

    origin = None
    seen = set()
    while task.origin_pathspec is not None and task.origin_pathspec not in seen:
        origin = task.origin_pathspec
        seen.add(origin)
        task = Task(origin, _namespace_check=False)
    return origin


def cards_of_task(
    task: Any,
    card_type: str | None = None,
    card_hash: str | None = None,
    card_id: str | None = None,
    follow_resumed: bool = True,
) -> CardContainer:
    """The task's matching cards (the origin task's when ``follow_resumed`` and the task was
    cloned by ``resume``); CardNotPresentException when the task has no card at all."""
    from mfstore.client import Task

    origin = origin_of(task) if follow_resumed else None
    if origin:
        task = Task(origin, _namespace_check=False)
    files, store = _task_files(task.pathspec)
    cards = task_cards(files, store, origin)
    if not cards:
        raise CardNotPresentException(task.pathspec, card_type, card_id, card_hash)
    return CardContainer(matching(cards, card_type, card_hash, card_id), task.pathspec, origin)


def get_cards(
    task: Any, id: str | None = None, type: str | None = None, follow_resumed: bool = True
) -> CardContainer:
    """The cards of a task (a ``Task`` or a ``flow/run/step/task`` pathspec), optionally
    only those of ``type`` and/or ``id``. A task cloned by ``resume`` shows its origin's
    cards (``follow_resumed``). Raises CardNotPresentException when the task has no card;
    the container is empty when it has cards but none matches."""
    from mfstore.client import Task

    if isinstance(task, str):
        if len(task.split("/")) != 4:
            raise IncorrectPathspecException(task)
        task = Task(task, _namespace_check=False)
    elif not isinstance(task, Task):
        raise IncorrectArgumentException(builtins_type(task))
    return cards_of_task(task, card_type=type, card_id=id, follow_resumed=follow_resumed)

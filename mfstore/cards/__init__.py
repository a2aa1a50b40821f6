"""Cards: HTML reports of a task (Metaflow's ``@card``, ``current.card`` and
``metaflow.cards``), kept in the .mfdb with the task.

In a flow::

    from mfstore import FlowSpec, step, card, current
    from mfstore.cards import Markdown, Table

    class ReportFlow(FlowSpec):
        @card(type="blank")
        @step
        def start(self):
            current.card.append(Markdown("# Hello"))
            current.card.append(Table([[1, 2]], headers=["a", "b"]))
            self.next(self.end)

Afterwards ``get_cards("ReportFlow/12/start/1")[0].get()`` is the card's HTML, and
``python flow.py card get 12/start/1 out.html`` writes it out.
"""

from __future__ import annotations

from ..exception import CardNotPresentException
from .cards import (
    CARD_TYPES,
    Card,
    CardContainer,
    MetaflowCard,
    get_cards,
    register_card_type,
)
from .components import (
    Artifact,
    Error,
    Image,
    Markdown,
    MetaflowCardComponent,
    ProgressBar,
    Table,
    VegaChart,
)

__all__ = [
    "CARD_TYPES",
    "Artifact",
    "Card",
    "CardContainer",
    "CardNotPresentException",
    "Error",
    "Image",
    "Markdown",
    "MetaflowCard",
    "MetaflowCardComponent",
    "ProgressBar",
    "Table",
    "VegaChart",
    "card_class",
    "get_cards",
    "register_card_type",
]


def card_class(card_type: str) -> type[MetaflowCard] | None:
    """The card class registered as ``card_type``, or None. Metaflow's own test card types
    (``test_*``, in ``mfstore.cards.test_cards``) are always available, as in Metaflow, and
    so are the card types of installed Metaflow extension packages (``CARDS`` of
    ``metaflow_extensions.<org>.plugins.cards.<name>``; one that fails to import is skipped)."""
    if card_type not in CARD_TYPES and str(card_type).startswith("test_"):
        from . import test_cards  # noqa: F401  (registers the test card types)
    if card_type not in CARD_TYPES:
        _load_extension_cards()
    return CARD_TYPES.get(card_type)


_EXTENSIONS_LOADED: list[bool] = []


def _load_extension_cards() -> None:
    """Register the ``CARDS`` of Metaflow extension packages (Metaflow's way to ship card
    types), once per process."""
    if _EXTENSIONS_LOADED:
        return
    _EXTENSIONS_LOADED.append(True)
    import importlib
    import importlib.util
    import os

    try:
        spec = importlib.util.find_spec("metaflow_extensions")
    except (ImportError, ValueError):
        return
    if spec is None or not spec.submodule_search_locations:
        return
    for base in list(spec.submodule_search_locations):
        for org in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            cards_dir = os.path.join(base, org, "plugins", "cards")
            if not os.path.isdir(cards_dir):
                continue
            for name in sorted(os.listdir(cards_dir)):
                if not os.path.isfile(os.path.join(cards_dir, name, "__init__.py")):
                    continue
                try:
                    module = importlib.import_module(
                        f"metaflow_extensions.{org}.plugins.cards.{name}"
                    )
                except Exception:  # a broken card module never stops the flow (Metaflow's rule)
                    continue
                for cls in getattr(module, "CARDS", None) or []:
                    if isinstance(getattr(cls, "type", None), str):
                        CARD_TYPES.setdefault(cls.type, cls)

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

from .cards import (
    CARD_TYPES,
    Card,
    CardContainer,
    CardNotPresentException,
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
    (``test_*``, in ``mfstore.cards.test_cards``) are always available, as in Metaflow."""
    if card_type not in CARD_TYPES and str(card_type).startswith("test_"):
        from . import test_cards  # noqa: F401  (registers the test card types)
    return CARD_TYPES.get(card_type)

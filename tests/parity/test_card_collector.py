"""``current.card`` side by side with Metaflow 2.19.39's own ``CardComponentCollector``, in
this process: the same cards are added, the same calls made; which card each component
reaches, what each card then holds, the warnings and the exceptions must be the same."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

import pytest


def _text_class(base: type) -> type:
    class Text(base):  # type: ignore[misc,valid-type]
        def __init__(self, text: str) -> None:
            self._text = text

        def render(self) -> str:
            return self._text

    return Text


class System:
    """One library's collector, driven the same way."""

    def __init__(self, lib: str, cards: list[tuple[str, str | None, bool, bool]]) -> None:
        self.lib = lib
        self.warnings: list[str] = []
        self.uuids: list[str] = []
        if lib == "metaflow":
            from metaflow.plugins.cards.card_modules import MetaflowCardComponent
            from metaflow.plugins.cards.component_serializer import CardComponentCollector

            self.card = CardComponentCollector(
                logger=lambda msg, **kw: self.warnings.append(msg), card_creator=None
            )
            self.card._no_warnings = True
            for card_type, card_id, editable, customize in cards:
                meta = self.card._add_card(
                    card_type,
                    card_id,
                    {"type": card_type},
                    {},
                    editable=editable,
                    customize=customize,
                )
                self.uuids.append(meta["uuid"])
            self.card._finalize()
        else:
            from mfstore.cards.components import MetaflowCardComponent
            from mfstore.runtime.card_collector import CardComponentCollector, add_card

            self.card = CardComponentCollector("test")
            for card_type, card_id, editable, customize in cards:
                self.uuids.append(
                    add_card(
                        self.card,
                        card_type,
                        card_id,
                        {"type": card_type},
                        editable=editable,
                        customize=customize,
                    )
                )
        self.Text = _text_class(MetaflowCardComponent)

    def call(self, op: Callable[[Any, type], Any]) -> Any:
        """Run ``op(current.card, Text)``: what it returned or raised, and the warnings."""
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                out = ("ok", op(self.card, self.Text))
            except Exception as ex:  # the exception's class name is what is compared
                out = ("raised", type(ex).__name__)
        self.warnings += [line for line in err.getvalue().splitlines() if line]
        return out

    def contents(self) -> list[list[Any]]:
        """What each card (in the order added) would be rendered with."""
        if self.lib == "metaflow":
            out = [self.card._serialize_components(u) for u in self.uuids]
            # Metaflow wraps Metaflow-shipped (``UserComponent``) components in a section
            # for its own page; mfstore's pages render components as they are
            return [c[0]["contents"] if len(c) == 1 and isinstance(c[0], dict) else c for c in out]
        from mfstore.runtime.card_collector import serialized

        return [serialized(self.card._card_component_store[u]) for u in self.uuids]


ED, NE = True, False  # editable (ALLOW_USER_COMPONENTS) or not

SCENARIOS: dict[
    str, tuple[list[tuple[str, str | None, bool, bool]], Callable[[Any, type], Any]]
] = {
    "one editable card with an id is the default": (
        [("e", "xyz", ED, False), ("n", None, NE, False)],
        lambda card, T: (card.append(T("a")), card["xyz"].append(T("b")), None)[-1],
    ),
    "the editable card without an id is the default": (
        [("e", "abc", ED, False), ("e", None, ED, False)],
        lambda card, T: (card.append(T("a")), card["abc"].append(T("b")), None)[-1],
    ),
    "two editable cards without an id: nothing is appended": (
        [("e", None, ED, False), ("e", None, ED, False)],
        lambda card, T: (card.append(T("a")), card.append(T("b")), card.extend([T("c")]))[-1],
    ),
    "no editable card: extend and append warn": (
        [("test_non_editable_card", None, NE, False)],
        lambda card, T: (card.extend([T("a")]), card.append(T("b")), card.extend([T("c")]))[-1],
    ),
    "customize wins": (
        [("e", None, ED, False), ("e", "abc", ED, False), ("e", None, ED, True)],
        lambda card, T: card.append(T("a")),
    ),
    "two customize cards": (
        [("e", None, ED, True), ("e", None, ED, True), ("e", None, ED, False)],
        lambda card, T: card.append(T("a")),
    ),
    "duplicate ids are not addressable": (
        [("e", "d", ED, False), ("e", "d", ED, False), ("e", None, ED, False)],
        lambda card, T: (card["d"].append(T("a")), card.append(T("b")), None)[-1],
    ),
    "no editable card: ids are not mapped": (
        [("n", "abc", NE, False)],
        lambda card, T: (card["abc"].append(T("a")), card.append(T("b")), None)[-1],
    ),
    "an unknown id is a detached list": (
        [("e", None, ED, False)],
        lambda card, T: (card["nope"].append(T("a")), card.append(T("b")), None)[-1],
    ),
    "only components are kept": (
        [("e", None, ED, False)],
        lambda card, T: (card.append("text"), card.append(3), card.append(T("x")), None)[-1],
    ),
    "assigning a list replaces the card's components": (
        [("e", "abc", ED, False), ("n", "solo", NE, False)],
        lambda card, T: (
            card.append(T("gone")),
            card.__setitem__("abc", [T("new")]),
            card.__setitem__("solo", T("not a list")),
            card.__setitem__("nope", [T("x")]),
            None,
        )[-1],
    ),
    "component ids": (
        [("e", None, ED, False)],
        lambda card, T: (
            card.append(T("a"), id="first"),
            card.components["first"].render(),
            "first" in card.components,
            card.components.keys(),
        )[1:],
    ),
    "a missing component id is a stub that renders nothing": (
        [("e", None, ED, False)],
        lambda card, T: (card.components["ghost"], card.append(T("a")), len(card.components))[-1],
    ),
    "overwriting a component id raises": (
        [("e", None, ED, False)],
        lambda card, T: (
            card.components.__setitem__("c", T("a")),
            card.components.__setitem__("c", T("b")),
        ),
    ),
    "deleting a component": (
        [("e", None, ED, False)],
        lambda card, T: (
            card.append(T("a"), id="a"),
            card.append(T("b"), id="b"),
            card.components.__delitem__("a"),
        ),
    ),
    "deleting a missing component raises KeyError": (
        [("e", None, ED, False)],
        lambda card, T: card.components.__delitem__("nope"),
    ),
    "clear": (
        [("e", None, ED, False)],
        lambda card, T: (card.append(T("a")), card.clear(), card.append(T("b")), None)[-1],
    ),
    "get by type": (
        [("e", None, ED, False), ("e", "x", ED, False), ("n", None, NE, False)],
        lambda card, T: (
            [len(c.components) for c in card.get(type="e")],
            card.get(type="n")[0].append(T("via get")),
            card.get(type="nope"),
            card.get(),
        ),
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_current_card_behaves_as_in_metaflow(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METAFLOW_CARD_NO_WARNING", "True")
    cards, op = SCENARIOS[name]
    seen = {}
    for lib in ("metaflow", "mfstore"):
        system = System(lib, cards)
        result = system.call(op)
        seen[lib] = (result, system.contents(), system.warnings)
    assert seen["mfstore"] == seen["metaflow"]

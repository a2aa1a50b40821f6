"""Cards the way Metaflow's own test/core cases use them: which card ``current.card``
reaches (default editable card, ids, ``customize``, unknown ids, ``get(type=)``), what is
kept (components only), several cards of one type, error cards, timeouts, retries.
The card types are Metaflow's built-in test types, so the same file runs on both systems."""

from metaflow import FlowSpec, card, current, environment, retry, step
from metaflow.cards import MetaflowCardComponent


class Text(MetaflowCardComponent):
    """Renders as its text."""

    def __init__(self, text):
        self._text = text

    def render(self):
        return str(self._text)


class Broken(MetaflowCardComponent):
    """Fails to render: the card leaves it out."""

    def render(self):
        raise ValueError("no")


class CardsFlow(FlowSpec):
    # two editable cards without an id: append cannot choose, and says so in both cards
    @card(type="test_editable_card")
    @card(type="test_editable_card")
    @step
    def start(self):
        current.card.append(Text("lost"))
        self.next(self.ids)

    @environment(vars={"METAFLOW_CARD_NO_WARNING": "True"})
    @card(type="test_editable_card", id="abc")
    @card(type="test_editable_card")
    @card(type="taskspec_card")
    @step
    def ids(self):
        current.card.append("not a component")
        current.card.append(Text("one"))
        current.card.append(Broken())
        current.card["abc"].append(Text("two"))
        current.card["nope"].append(Text("lost"))
        current.card.append(Text("three"), id="third")
        self.n_editable = len(current.card.get(type="test_editable_card"))
        self.n_unknown = len(current.card.get(type="no_such_type"))
        self.component_ids = list(current.card.components.keys())[-1:]
        self.next(self.custom)

    @environment(vars={"METAFLOW_CARD_NO_WARNING": "True"})
    @card(type="test_editable_card", customize=True)
    @card(type="test_editable_card", id="xyz")
    @card(type="test_editable_card_2")
    @card(type="test_non_editable_card", id="solo")
    @step
    def custom(self):
        current.card.append(Text("custom"))
        current.card.extend([Text("a"), Text("b")])
        current.card["solo"].append(Text("solo"))
        current.card["xyz"] = [Text("replaced")]
        self.next(self.errors)

    @card(type="test_error_card")
    @card(type="test_error_card", id="quiet", save_errors=False)
    @card(type="no_such_card_type")
    @card(type="test_timeout_card", id="late", timeout=1, options={"timeout": 4})
    @card(
        type="test_timeout_card", id="dropped", timeout=1, options={"timeout": 4}, save_errors=False
    )
    @step
    def errors(self):
        self.next(self.retried)

    @retry(times=1, minutes_between_retries=0)
    @card(type="test_editable_card")
    @step
    def retried(self):
        current.card.append(Text(f"attempt {current.retry_count}"))
        if current.retry_count == 0:
            raise RuntimeError("first attempt fails: no card for it")
        self.next(self.live)

    # a card with live updates: the final card and its final data update
    @card(type="test_refresh_card", id="live")
    @step
    def live(self):
        current.card.refresh({"k": 1})
        current.card["live"].refresh({"k": 2})
        self.next(self.end)

    # the only card has an id but is not editable: Metaflow maps no ids then
    @card(type="test_non_editable_card", id="abc")
    @card(type="test_pathspec_card")
    @card(type="test_pathspec_card")
    @step
    def end(self):
        current.card["abc"].append(Text("not kept"))
        current.card.append(Text("not kept either"))


if __name__ == "__main__":
    CardsFlow()

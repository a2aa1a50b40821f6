"""The card types Metaflow ships for its own tests (``metaflow.plugins.cards.card_modules.
test_cards``), so flows and test suites written against them run on mfstore too."""

from __future__ import annotations

import json
import random
import string
import time
from typing import Any

from .cards import MetaflowCard, register_card_type
from .components import MetaflowCardComponent


class TestStringComponent(MetaflowCardComponent):
    """A component that renders as its text."""

    REALTIME_UPDATABLE = True

    def __init__(self, text: Any) -> None:
        self._text = text

    def render(self) -> str:
        """The text."""
        return str(self._text)

    def update(self, text: Any) -> None:
        """Replace the text."""
        self._text = text


class TestJSONComponent(MetaflowCardComponent):
    """A component that renders as its data."""

    REALTIME_UPDATABLE = True

    def __init__(self, data: Any) -> None:
        self._data = data

    def render(self) -> Any:
        """The data."""
        return self._data

    def update(self, data: Any) -> None:
        """Replace the data."""
        self._data = data


@register_card_type
class TestPathSpecCard(MetaflowCard):
    """The pathspec and 6 random characters."""

    type = "test_pathspec_card"

    def render(self, task: Any) -> str:
        """``pathspec XXXXXX``."""
        chars = string.ascii_uppercase + string.digits
        return "{} {}".format(task.pathspec, "".join(random.choice(chars) for _ in range(6)))


class _JoinedComponents(MetaflowCard):
    separator = "$&#!!@*"

    def render(self, task: Any) -> str:
        """The components' text joined by ``separator``."""
        return self.separator.join(str(c) for c in self._components)


@register_card_type
class TestEditableCard(_JoinedComponents):
    """Takes components from ``current.card``."""

    type = "test_editable_card"
    ALLOW_USER_COMPONENTS = True


@register_card_type
class TestEditableCard2(_JoinedComponents):
    """A second editable type."""

    type = "test_editable_card_2"
    ALLOW_USER_COMPONENTS = True


@register_card_type
class TestNonEditableCard(_JoinedComponents):
    """Does not take components from ``current.card``."""

    type = "test_non_editable_card"


@register_card_type
class TestMockCard(MetaflowCard):
    """The value of the artifact ``options["key"]``."""

    type = "test_mock_card"

    def render(self, task: Any) -> str:
        """``task[key].data`` as text."""
        return f"{task[self._options.get('key', 'dummy_key')].data}"


@register_card_type
class TestErrorCard(MetaflowCard):
    """Always fails to render."""

    type = "test_error_card"

    def render(self, task: Any) -> str:
        """Raise."""
        raise Exception("Unknown Things Happened")


@register_card_type
class TestTimeoutCard(MetaflowCard):
    """Sleeps ``options["timeout"]`` seconds before rendering."""

    type = "test_timeout_card"

    def render(self, task: Any) -> str:
        """The pathspec, late."""
        time.sleep(self._options.get("timeout", 10))
        return f"{task.pathspec}"


#: The page of the refresh test cards (Metaflow's ``REFRESHABLE_HTML_TEMPLATE``).
REFRESHABLE_HTML_TEMPLATE = """
<html>
<script>
var METAFLOW_RELOAD_TOKEN = "[METAFLOW_RELOAD_TOKEN]"

window.metaflow_card_update = function(data) {
    document.querySelector("h1").innerHTML = JSON.stringify(data);
}
</script>
<h1>[PATHSPEC]</h1>
<h1>[REPLACE_CONTENT_HERE]</h1>
</html>
"""


@register_card_type
class TestRefreshCard(MetaflowCard):
    """Shows the data given to ``current.card.refresh(data)``: the page is the template with
    the card's content as JSON and the task's pathspec."""

    HTML_TEMPLATE = REFRESHABLE_HTML_TEMPLATE
    RUNTIME_UPDATABLE = True
    ALLOW_USER_COMPONENTS = True
    RELOAD_POLICY = MetaflowCard.RELOAD_POLICY_ALWAYS
    type = "test_refresh_card"

    def render(self, task: Any) -> str:
        """The page of the final render's data."""
        return self._page(task, self.runtime_data)

    def render_runtime(self, task: Any, data: Any) -> str:
        """The page of a live update's ``data``."""
        return self._page(task, data)

    def refresh(self, task: Any, data: Any) -> Any:
        """The data itself."""
        return data

    def _page(self, task: Any, data: Any) -> str:
        return self.HTML_TEMPLATE.replace(
            "[REPLACE_CONTENT_HERE]", json.dumps(self._content(data))
        ).replace("[PATHSPEC]", task.pathspec)

    def _content(self, data: Any) -> Any:
        """What the page shows of ``data``: its ``user`` part."""
        return data["user"]


@register_card_type
class TestRefreshComponentCard(TestRefreshCard):
    """A refresh card that shows its components; its data update is the updatable
    components' rendered data."""

    RELOAD_POLICY = MetaflowCard.RELOAD_POLICY_ONCHANGE
    type = "test_component_refresh_card"

    def refresh(self, task: Any, data: Any) -> Any:
        """The rendered updatable components, by id."""
        return data["components"]

    def _content(self, data: Any) -> Any:
        return self._components

    def reload_content_token(self, task: Any, data: Any) -> str:
        """``final`` once the task is finished."""
        return "final"

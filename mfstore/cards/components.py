"""Card components (Metaflow's ``metaflow.cards``): each renders itself to an HTML fragment.
Every value is escaped: a component never turns data into markup."""

from __future__ import annotations

import base64
import html
import json
import sys
from typing import Any


class MetaflowCardComponent:
    """Base of card components: ``render()`` returns an HTML fragment (a ``str``)."""

    REALTIME_UPDATABLE = False
    _component_id: str | None = None

    @property
    def component_id(self) -> str | None:
        """The component's id in its card (set when it is added; ``append(c, id=...)``)."""
        return self._component_id

    @component_id.setter
    def component_id(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Component ID must be a string")
        self._component_id = value

    def render(self) -> str:
        """The component as HTML."""
        raise NotImplementedError

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Change the component's data (components that support live updates)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be updated")

    def __str__(self) -> str:
        return self.render()


class StubComponent(MetaflowCardComponent):
    """Stands for a component id that was looked up before any component had it
    (``current.card.components["x"]``); it renders to nothing."""

    def __init__(self, component_id: str) -> None:
        self._non_existing_comp_id = component_id

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to update: warns that the component does not exist."""
        print(
            f"[@card WARNING] Component with id {self._non_existing_comp_id} doesn't exist. "
            "No updates will be made at anytime during runtime.",
            file=sys.stderr,
        )


class Markdown(MetaflowCardComponent):
    """Text written in Markdown; shown as preformatted text, headings kept as headings."""

    REALTIME_UPDATABLE = True

    def __init__(self, text: str | None = None) -> None:
        self._text = text or ""

    def update(self, text: str | None = None) -> None:
        """Replace the text."""
        self._text = text or ""

    def render(self) -> str:
        """The text as HTML (headings ``#`` become ``<h1>``..., other lines paragraphs)."""
        out = []
        for line in self._text.splitlines():
            stripped = line.lstrip("#")
            level = len(line) - len(stripped)
            if 0 < level <= 6 and stripped.startswith(" "):
                out.append(f"<h{level}>{html.escape(stripped.strip())}</h{level}>")
            elif line.strip():
                out.append(f"<p>{html.escape(line)}</p>")
        return "<div class='markdown'>" + "".join(out) + "</div>"


class Table(MetaflowCardComponent):
    """A table: ``Table([[1, 2], [3, 4]], headers=["a", "b"])``; cells may be components."""

    REALTIME_UPDATABLE = True

    def __init__(
        self, data: list[list[Any]] | None = None, headers: list[str] | None = None
    ) -> None:
        self._data = [list(row) for row in (data or [])]
        self._headers = list(headers or [])

    @classmethod
    def from_dataframe(cls, dataframe: Any = None, truncate: bool = True) -> Table:
        """A table of a pandas DataFrame (its first 100 rows when ``truncate``)."""
        frame = dataframe.head(100) if truncate else dataframe
        return cls(frame.values.tolist(), [str(c) for c in frame.columns])

    def update(self, data: list[list[Any]] | None = None) -> None:
        """Replace the rows."""
        self._data = [list(row) for row in (data or [])]

    def render(self) -> str:
        """The rows as an HTML table."""

        def cell(v: Any) -> str:
            return v.render() if isinstance(v, MetaflowCardComponent) else html.escape(str(v))

        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in self._headers)
        rows = "".join(
            "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in self._data
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


class Image(MetaflowCardComponent):
    """An image from bytes (PNG/JPEG/GIF/SVG): ``Image(png_bytes, label="loss")``."""

    def __init__(self, src: bytes | None = None, label: str | None = None) -> None:
        self._src = src or b""
        self._label = label

    @classmethod
    def from_matplotlib(cls, plot: Any, label: str | None = None) -> Image:
        """An image of a matplotlib figure (or axes)."""
        import io

        fig = getattr(plot, "figure", plot)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return cls(buf.getvalue(), label)

    def render(self) -> str:
        """An ``<img>`` with the bytes inline (a ``data:`` URL)."""
        kind = "png"
        if self._src[:3] == b"\xff\xd8\xff":
            kind = "jpeg"
        elif self._src[:4] == b"GIF8":
            kind = "gif"
        data = base64.b64encode(self._src).decode("ascii")
        label = f"<figcaption>{html.escape(self._label)}</figcaption>" if self._label else ""
        return f"<figure><img src='data:image/{kind};base64,{data}'/>{label}</figure>"


class Artifact(MetaflowCardComponent):
    """A value shown as its (truncated) repr: ``Artifact(self.model, name="model")``."""

    def __init__(self, artifact: Any = None, name: str | None = None, compressed: bool = True):
        self._artifact = artifact
        self._name = name
        self._compressed = compressed

    def render(self) -> str:
        """The value's repr (at most 500 characters when compressed), escaped."""
        text = repr(self._artifact)
        if self._compressed and len(text) > 500:
            text = text[:500] + "..."
        name = f"<b>{html.escape(self._name)}</b> " if self._name else ""
        return f"<div class='artifact'>{name}<pre>{html.escape(text)}</pre></div>"


class Error(MetaflowCardComponent):
    """An exception shown in a card."""

    def __init__(self, exception: Any = None, title: str | None = None) -> None:
        self._exception = exception
        self._title = title

    def render(self) -> str:
        """The title and the exception's text."""
        title = html.escape(self._title or "Error")
        return (
            f"<div class='error'><b>{title}</b><pre>{html.escape(str(self._exception))}</pre></div>"
        )


class ProgressBar(MetaflowCardComponent):
    """A progress bar: ``ProgressBar(max=100, label="epochs", value=0)``."""

    REALTIME_UPDATABLE = True

    def __init__(
        self, max: int = 100, label: str | None = None, value: int = 0, unit: str | None = None
    ) -> None:
        self._max, self._label, self._value, self._unit = max, label, value, unit

    def update(self, new_value: int) -> None:
        """Set the current value."""
        self._value = new_value

    def render(self) -> str:
        """A ``<progress>`` element."""
        label = html.escape(self._label or "")
        return f"<label>{label}<progress value='{int(self._value)}' max='{int(self._max)}'></progress></label>"


class VegaChart(MetaflowCardComponent):
    """A Vega-Lite chart spec (shown as its JSON; no scripts run in a stored card)."""

    REALTIME_UPDATABLE = True

    def __init__(self, spec: dict[str, Any] | None = None, show_controls: bool = False) -> None:
        self._spec = spec or {}

    def update(self, spec: dict[str, Any] | None = None) -> None:
        """Replace the spec."""
        self._spec = spec or {}

    def render(self) -> str:
        """The spec as escaped JSON."""
        return f"<pre class='vega'>{html.escape(json.dumps(self._spec, default=str))}</pre>"

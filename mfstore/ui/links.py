"""URLs of the pages: absolute for the server, relative file paths for a static export.

URLs mirror pathspecs (``/Flow/run/step/task``), so a link can be pasted into the
Client API and back. Every path part from the file is percent-encoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, urlencode


def disk_name(part: str) -> str:
    """A path part as a file or directory name of an export (never ``.``/``..``, no ``/``)."""
    name = quote(part, safe="")
    return name.replace(".", "%2E") if name in (".", "..") else name


class Linker:
    """Builds the links of one page (``export=True``: relative, for ``file://``)."""

    def __init__(self, *, export: bool = False, depth: int = 0) -> None:
        self.export = export
        self.depth = depth

    def _path(self, parts: Sequence[str]) -> str:
        if not self.export:
            return "/" + "/".join(quote(p, safe="") for p in parts)
        up = "../" * self.depth
        inner = "".join(quote(disk_name(p), safe="") + "/" for p in parts)
        return up + inner + "index.html"

    def home(self) -> str:
        """The flow list."""
        return self._path([])

    def flow(self, flow: str, **params: object) -> str:
        """A flow's runs (with filters or a cursor as query parameters)."""
        url = self._path([flow])
        return url + _query(params) if params and not self.export else url

    def run(self, flow: str, run_id: str) -> str:
        """A run."""
        return self._path([flow, run_id])

    def step(self, flow: str, run_id: str, step: str) -> str:
        """A step."""
        return self._path([flow, run_id, step])

    def task(self, flow: str, run_id: str, step: str, task_id: str, **params: object) -> str:
        """A task (optionally one attempt, or a log page)."""
        url = self._path([flow, run_id, step, task_id])
        return url + _query(params) if params and not self.export else url

    def static(self, name: str) -> str:
        """A file shipped with the UI (JavaScript, CSS)."""
        return ("../" * self.depth + "_static/" + name) if self.export else "/_static/" + name

    def compare(self, pathspecs: Sequence[str]) -> str:
        """The comparison of some runs (server only)."""
        return "/compare?" + urlencode({"runs": ",".join(pathspecs)})

    def search(self, **params: object) -> str:
        """The artifact search (server only)."""
        return "/search" + _query(params)

    def card(self, card_id: str) -> str:
        """One card's HTML (shown in a sandboxed iframe)."""
        if self.export:
            return "../" * self.depth + "_cards/" + disk_name(card_id) + ".html"
        return "/_card/" + quote(card_id, safe="")


def _query(params: dict[str, object]) -> str:
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None or value == "":
            continue
        if isinstance(value, (list, tuple)):
            pairs.extend((key, str(v)) for v in value)
        else:
            pairs.append((key, str(value)))
    return "?" + urlencode(pairs) if pairs else ""

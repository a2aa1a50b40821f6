"""The Starlette application: one route per page, each a thin call into ``pages``.

Handlers are ``async`` and read synchronously: a page is a handful of indexed reads of
a local file, and one event-loop thread means the one connection is never shared
between threads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..exception import MetaflowException, PageError
from . import pages
from .fragments import duration_text
from .links import Linker
from .reader import Reader

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Every page: no scripts but our own files, no plugins, no framing by other sites.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
)
#: A card's own document (inside a sandboxed iframe, an opaque origin): cards bring
#: their own inline scripts and styles, but may fetch nothing from anywhere.
CARD_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; font-src data:; sandbox allow-scripts"
)


def environment() -> Environment:
    """The Jinja2 environment of the UI's templates (autoescaping everything)."""
    env = Environment(
        loader=PackageLoader("mfstore.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        auto_reload=False,
        lstrip_blocks=True,
    )
    env.filters["dur"] = duration_text
    env.filters["ctrl"] = show_controls
    return env


#: Characters shown as escapes: C0/C1 controls (not tab) and bidirectional overrides,
#: which could make a log line or a value look like something it is not.
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0, 9), *range(10, 32), *range(127, 160)]}
_CONTROL.update({c: f"\\u{c:04x}" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]})


def show_controls(text: object) -> str:
    """Text with control characters written as visible escapes (``\\x1b``)."""
    return str(text).translate(_CONTROL)


def create_app(path: Path | str) -> Starlette:
    """The UI of one .mfdb file (opened read-only at once: errors surface here)."""
    reader = Reader(path)
    env = environment()

    def render(request: Request, name: str, ctx: Mapping[str, Any], status: int = 200) -> Response:
        html = env.get_template(name).render(
            **ctx, file_name=reader.path.name, version=reader.version()
        )
        return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": CSP})

    def page(name: str, build: Callable[[Request], Mapping[str, Any]]) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            try:
                with reader.snapshot():
                    ctx = build(request)
                return render(request, name, ctx)
            except PageError as exc:
                return render(
                    request,
                    "error.html",
                    {"title": "Error", "message": str(exc), "link": Linker()},
                    exc.status,
                )
            except MetaflowException as exc:
                msg = " ".join(str(exc).split())
                return render(
                    request, "error.html", {"title": "Error", "message": msg, "link": Linker()}, 500
                )

        return handler

    link = Linker()

    def q(r: Request, key: str) -> str | None:
        return r.query_params.get(key)

    def flow(r: Request) -> Mapping[str, Any]:
        flt = pages.parse_filter(r.query_params, r.query_params.getlist("tag"))
        before = pages.parse_cursor(q(r, "before_ts"), q(r, "before_id"))
        return pages.flow_page(
            reader, link, r.path_params["flow"], flt, before, params=r.query_params
        )

    def compare(r: Request) -> Mapping[str, Any]:
        runs = r.query_params.getlist("runs") + r.query_params.getlist("run")
        return pages.compare_page(reader, link, runs)

    def run(r: Request) -> Mapping[str, Any]:
        return pages.run_page(reader, link, r.path_params["flow"], r.path_params["run"])

    def step(r: Request) -> Mapping[str, Any]:
        return pages.step_page(reader, link, *r.path_params.values())

    def task(r: Request) -> Mapping[str, Any]:
        p = r.path_params
        attempt = q(r, "attempt")
        after_ts, after_pk = q(r, "after_ts"), q(r, "after_pk")
        stream = q(r, "stream") or "stdout"
        if stream not in ("stdout", "stderr"):
            raise PageError(400, "stream must be stdout or stderr")
        try:
            after = (int(after_ts), int(after_pk or 0)) if after_ts else None
            att = int(attempt) if attempt not in (None, "") else None
        except ValueError:
            raise PageError(400, "attempt, after_ts and after_pk are numbers") from None
        return pages.task_page(
            reader,
            link,
            p["flow"],
            p["run"],
            p["step"],
            p["task"],
            attempt=att,
            stream=stream,
            after=after,
        )

    async def live(request: Request) -> Response:
        # htmx polls this on pages of running runs: reload when the file changed.
        changed = request.query_params.get("v") != reader.version()
        return Response(
            status_code=204 if not changed else 200,
            headers={"HX-Refresh": "true"} if changed else {},
        )

    async def card(request: Request) -> Response:
        with reader.snapshot():
            html = reader.card_html(request.path_params["card"])
        if html is None:
            return PlainTextResponse("no such card", status_code=404)
        return HTMLResponse(html, headers={"Content-Security-Policy": CARD_CSP})

    routes = [
        Route("/", page("flows.html", lambda r: pages.flows_page(reader, link))),
        Route("/compare", page("compare.html", compare)),
        Route("/search", page("search.html", lambda r: pages.search_page(reader, link, r.query_params))),
        Route("/_live", live),
        Route("/_card/{card}", card),
        Mount("/_static", app=StaticFiles(directory=str(STATIC_DIR)), name="static"),
        Route("/{flow}", page("flow.html", flow)),
        Route("/{flow}/{run}", page("run.html", run)),
        Route("/{flow}/{run}/{step}", page("step.html", step)),
        Route("/{flow}/{run}/{step}/{task}", page("task.html", task)),
    ]  # fmt: skip
    app = Starlette(routes=routes)
    app.state.reader = reader
    return app

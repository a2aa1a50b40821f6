"""Server-side SVG: the run's DAG and its timeline (Gantt of task attempts).

Every name and value comes from the file, so every piece of text is escaped with
``markupsafe.escape`` as it is written; links come from the page's ``Linker``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from markupsafe import Markup, escape

NODE_W, NODE_H, GAP_X, GAP_Y = 168, 48, 28, 44
#: Most attempts drawn on one timeline (the tasks table lists them all).
TIMELINE_ROWS = 400


def _short(text: str, n: int = 22) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _edges(
    info: dict[str, Any] | None, seen: list[str]
) -> tuple[list[str], dict[str, list[str]], dict[str, str]]:
    """Step names in graph order, their successors, and their graph types."""
    if info is None:
        order = list(seen)
        return order, {a: [b] for a, b in itertools.pairwise(order)}, {}
    steps: dict[str, Any] = info["steps"]
    order = [str(s) for s in steps]
    nxt = {}
    kinds = {}
    for name, spec in steps.items():
        spec = spec if isinstance(spec, dict) else {}
        targets: list[Any] = spec.get("next") or []
        if not isinstance(targets, list):
            targets = []
        nxt[str(name)] = [str(t) for t in targets if str(t) in steps]
        kinds[str(name)] = str(spec.get("type", ""))
    start = str(info.get("start_step") or "start")
    if start in order:  # the start step first: layering begins there
        order.remove(start)
        order.insert(0, start)
    return order, nxt, kinds


def _layers(order: list[str], nxt: dict[str, list[str]]) -> dict[str, int]:
    """Longest-path layering (Kahn's order); steps on a cycle go below the rest."""
    indeg = {n: 0 for n in order}
    for a in order:
        for b in nxt.get(a, []):
            indeg[b] += 1
    layer = {n: 0 for n in order}
    ready = [n for n in order if indeg[n] == 0]
    done: set[str] = set()
    while ready:
        a = ready.pop(0)
        done.add(a)
        for b in nxt.get(a, []):
            layer[b] = max(layer[b], layer[a] + 1)
            indeg[b] -= 1
            if indeg[b] == 0:
                ready.append(b)
    deepest = max(layer.values(), default=0)
    for n in order:
        if n not in done:
            deepest += 1
            layer[n] = deepest
    return layer


def dag_svg(
    info: dict[str, Any] | None,
    steps: dict[str, dict[str, Any]],
    step_url: Callable[[str], str],
) -> Markup:
    """The DAG: a box per step (status color, task count, link), arrows for transitions.

    ``steps`` maps a step name to ``{"status": ..., "tasks": n}`` for the steps that ran.
    """
    seen = [s for s in steps if s != "_parameters"]
    order, nxt, kinds = _edges(info, seen)
    for s in seen:  # steps that ran but are not in the graph (e.g. an older version)
        if s not in order:
            order.append(s)
    if not order:
        return Markup('<p class="muted">No steps yet.</p>')
    layer = _layers(order, nxt)
    rows: dict[int, list[str]] = {}
    for n in order:
        rows.setdefault(layer[n], []).append(n)
    width = max(len(r) for r in rows.values()) * (NODE_W + GAP_X) + GAP_X
    height = (max(rows) + 1) * (NODE_H + GAP_Y) + GAP_Y
    pos: dict[str, tuple[float, float]] = {}
    for li, names in rows.items():
        row_w = len(names) * (NODE_W + GAP_X) - GAP_X
        x0 = (width - row_w) / 2
        for i, n in enumerate(names):
            pos[n] = (x0 + i * (NODE_W + GAP_X), GAP_Y / 2 + li * (NODE_H + GAP_Y))
    out = [
        f'<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="DAG of the run">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>',
    ]
    for a in order:
        for b in nxt.get(a, []):
            (x1, y1), (x2, y2) = pos[a], pos[b]
            sx, sy, ex, ey = x1 + NODE_W / 2, y1 + NODE_H, x2 + NODE_W / 2, y2
            if ey <= sy:  # an edge back up (a cycle): go around the side
                ey = y2 + NODE_H / 2
                ex = x2 + NODE_W
            cls = "edge foreach" if kinds.get(a) == "split-foreach" else "edge"
            my = (sy + ey) / 2
            out.append(
                f'<path class="{cls}" d="M{sx:.0f},{sy:.0f} C{sx:.0f},{my:.0f} {ex:.0f},{my:.0f} {ex:.0f},{ey:.0f}" '
                'marker-end="url(#arrow)"/>'
            )
    for n in order:
        x, y = pos[n]
        st = steps.get(n)
        status = st["status"] if st else "none"
        count = st["tasks"] if st else 0
        kind = kinds.get(n, "")
        label = "not run" if not st else (f"{count} tasks" if count != 1 else "1 task")
        if kind in ("split-foreach", "split-static", "join"):
            label += (
                " · " + {"split-foreach": "foreach", "split-static": "split", "join": "join"}[kind]
            )
        box = (
            f'<g class="node st-{escape(status)}" data-step="{escape(n)}">'
            f"<title>{escape(n)}: {escape(status)}, {escape(label)}</title>"
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="7"/>'
            f'<text x="{x + NODE_W / 2:.0f}" y="{y + 20:.0f}" class="name">{escape(_short(n))}</text>'
            f'<text x="{x + NODE_W / 2:.0f}" y="{y + 37:.0f}" class="sub">{escape(label)}</text></g>'
        )
        out.append(f'<a href="{escape(step_url(n))}">{box}</a>' if st else box)
    out.append("</svg>")
    return Markup("".join(out))


def timeline_svg(
    tasks: list[dict[str, Any]], task_url: Callable[[str, str], str], now_ms: int
) -> Markup:
    """A Gantt chart: one bar per attempt from its start to its end (or now), retries marked."""
    bars = [
        (t, a)
        for t in tasks
        if t["step"] != "_parameters"
        for a in t["attempts"]
        if a["started"] is not None
    ]
    bars.sort(key=lambda ta: (ta[1]["started"], ta[0]["task_pk"], ta[1]["attempt"]))
    if not bars:
        return Markup('<p class="muted">No task attempts yet.</p>')
    hidden = max(0, len(bars) - TIMELINE_ROWS)
    bars = bars[:TIMELINE_ROWS]
    t0 = min(a["started"] for _, a in bars)
    t1 = max((a["ended"] if a["ended"] is not None else now_ms) for _, a in bars)
    span = max(t1 - t0, 1)
    label_w, plot_w, row_h = 200, 560, 18
    width, height = label_w + plot_w + 70, len(bars) * row_h + 26
    out = [
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Timeline of task attempts">'
    ]
    for frac in (0, 0.25, 0.5, 0.75, 1):
        x = label_w + frac * plot_w
        out.append(f'<line class="grid" x1="{x:.0f}" y1="0" x2="{x:.0f}" y2="{height - 18}"/>')
        out.append(
            f'<text class="axis" x="{x:.0f}" y="{height - 4}">{frac * span / 1000:.1f}s</text>'
        )
    for i, (t, a) in enumerate(bars):
        y = i * row_h + 2
        end = a["ended"] if a["ended"] is not None else now_ms
        x = label_w + (a["started"] - t0) / span * plot_w
        w = max(2.0, (end - a["started"]) / span * plot_w)
        name = "{}/{}".format(t["step"], t["task_id"]) + (
            f" #{a['attempt']}" if a["attempt"] else ""
        )
        retry = " retry" if a["attempt"] else ""
        dur = "running" if a["ended"] is None else "%.2fs" % ((end - a["started"]) / 1000)
        out.append(
            f'<a href="{escape(task_url(t["step"], t["task_id"]))}"><g class="bar st-{escape(a["status"])}{retry}">'
            f"<title>{escape(name)}: {escape(a['status'])}, {dur}</title>"
            f'<text class="label" x="{label_w - 6}" y="{y + 12}">{escape(_short(name, 30))}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 5}" rx="2"/>'
            f'<text class="dur" x="{min(x + w + 4, label_w + plot_w + 4):.0f}" y="{y + 12}">{dur}</text></g></a>'
        )
    out.append("</svg>")
    if hidden:
        out.append(f'<p class="muted">{hidden} more attempts not drawn (see the tasks table).</p>')
    return Markup("".join(out))

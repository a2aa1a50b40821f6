"""``mfstore ui FILE --export DIR``: the pages as a static site, to open from ``file://``.

Every page is rendered by the same code as the server, with relative links
(``Flow/run/index.html``); the JavaScript and CSS are copied next to them. Filters,
search and comparisons need the server and are left out.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from . import pages
from .app import STATIC_DIR, environment
from .links import Linker, disk_name
from .reader import Reader, RunFilter


def export_site(path: Path | str, directory: Path | str, *, runs: int = 100) -> int:
    """Write the site; returns the number of pages written."""
    out = Path(directory).absolute()
    reader = Reader(path)
    env = environment()
    count = 0

    def write(parts: list[str], template: str, ctx: dict[str, Any]) -> None:
        nonlocal count
        target = out.joinpath(*[disk_name(p) for p in parts], "index.html")
        if out not in target.parents:  # disk_name() makes this impossible; be sure
            raise ValueError(f"refusing to write outside {out}: {target}")
        target.parent.mkdir(parents=True, exist_ok=True)
        html = env.get_template(template).render(**ctx, file_name=reader.path.name, version="")
        target.write_text(html, encoding="utf-8")
        count += 1

    try:
        out.mkdir(parents=True, exist_ok=True)
        shutil.copytree(STATIC_DIR, out / "_static", dirs_exist_ok=True)
        with reader.snapshot():
            flows = reader.flows()
            write([], "flows.html", pages.flows_page(reader, Linker(export=True, depth=0)))
            for f in flows:
                flow = f["flow"]
                ctx = pages.flow_page(
                    reader, Linker(export=True, depth=1), flow, RunFilter(), None, size=runs
                )
                write([flow], "flow.html", ctx)
                for run in ctx["page"].runs:
                    rctx = pages.run_page(reader, Linker(export=True, depth=2), flow, run.run_id)
                    write([flow, run.run_id], "run.html", rctx)
                    for step in rctx["steps"]:
                        sctx = pages.step_page(
                            reader, Linker(export=True, depth=3), flow, run.run_id, step
                        )
                        write([flow, run.run_id, step], "step.html", sctx)
                    for task in rctx["tasks"]:
                        link = Linker(export=True, depth=4)
                        tctx = pages.task_page(
                            reader, link, flow, run.run_id, task["step"], task["task_id"]
                        )
                        for card in tctx["cards"]:
                            html = reader.card_html(card["id"])
                            if html is not None:
                                (out / "_cards").mkdir(exist_ok=True)
                                (out / "_cards" / (disk_name(card["id"]) + ".html")).write_text(
                                    html, encoding="utf-8"
                                )
                        write([flow, run.run_id, task["step"], task["task_id"]], "task.html", tctx)
    finally:
        reader.close()
    return count

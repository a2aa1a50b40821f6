"""A run written by real Metaflow through the mfdb extension: the UI draws it (from
Metaflow's own ``_graph_info``) and shows its ``@card`` in a sandboxed iframe."""

from __future__ import annotations

import html
import re
from pathlib import Path

from starlette.testclient import TestClient

from mfstore.ui import create_app
from tests.metaflow_ext.conftest import mf_run


def test_metaflow_card_and_dag(tmp_path: Path) -> None:
    mf_run("features_flow.py", tmp_path, ["run"], env={"METAFLOW_PRODUCTION_TOKEN": None})
    app = create_app(tmp_path / "metaflow.mfdb")
    with TestClient(app) as client:
        runs = re.findall(r'class="run-link" href="([^"]+)"', client.get("/FeaturesFlow").text)
        assert len(runs) == 1
        page = client.get(runs[0]).text
        dag = page[page.index('<svg class="dag"') :]
        assert {"start", "flaky", "end"} <= set(re.findall(r'data-step="([^"]+)"', dag))
        assert "bar st-failed" in page and "retry" in page  # flaky's first attempt, then its retry
        start = re.findall(r'class="task-link" href="([^"]+/start/[^"]+)"', page)
        task = client.get(html.unescape(start[0])).text
        frames = re.findall(r"<iframe[^>]*>", task)
        assert len(frames) == 1, task[-3000:]
        assert 'sandbox="allow-scripts"' in frames[0] and "allow-same-origin" not in frames[0]
        card = client.get(html.unescape(re.search(r'src="([^"]+)"', frames[0]).group(1)))
        assert card.status_code == 200 and "<html" in card.text.lower()
        assert "sandbox" in card.headers["Content-Security-Policy"]
    app.state.reader.close()

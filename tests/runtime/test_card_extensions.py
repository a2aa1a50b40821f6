"""Card types shipped the Metaflow way, in an installed extension package
(``metaflow_extensions/<org>/plugins/cards/<name>/__init__.py`` with ``CARDS = [...]``), are
usable in ``@card(type=...)``; a card module that fails to import is skipped, never fatal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

GOOD = """
class AcmeCard:
    type = "acme_card"
    ALLOW_USER_COMPONENTS = True

    def __init__(self, options={}, components=[], graph=None, flow=None, **kw):
        self._components = components

    def render(self, task):
        return "acme " + task.pathspec + " " + "|".join(self._components)


CARDS = [AcmeCard]
"""

BROKEN = """
class Broken:
    type = "acme_broken"

CARDS = [Broken]
raise ImportError("this card module cannot be imported")
"""

FLOW = """
from mfstore import FlowSpec, card, current, step
from mfstore.cards import Markdown


class AcmeFlow(FlowSpec):
    @card(type="acme_broken")
    @card(type="acme_card")
    @step
    def start(self):
        current.card.append(Markdown("hello"))
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    AcmeFlow()
"""

READ = """
import json
from mfstore import Flow, namespace
from mfstore.cards import get_cards
namespace(None)
task = Flow("AcmeFlow").latest_run["start"].task
print(json.dumps([[c.type, c.get()] for c in get_cards(task)]))
"""


def test_extension_card_types_are_found(tmp_path: Path) -> None:
    cards = tmp_path / "ext" / "metaflow_extensions" / "acme" / "plugins" / "cards"
    for name, text in (("good", GOOD), ("broken", BROKEN)):
        (cards / name).mkdir(parents=True)
        (cards / name / "__init__.py").write_text(text)
    (tmp_path / "acme_flow.py").write_text(FLOW)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(tmp_path / "ext"), os.environ.get("PYTHONPATH")])
        ),
        "MFSTORE_DB": str(tmp_path / "t.mfdb"),
        "METAFLOW_USER": "tester",
    }
    run = subprocess.run(
        [sys.executable, "acme_flow.py", "run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    out = subprocess.run(
        [sys.executable, "-c", READ], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    got = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    assert set(got) == {"acme_card", "acme_broken"}
    run_id = got["acme_card"].split("/")[1]
    assert got["acme_card"].startswith(f"acme AcmeFlow/{run_id}/start/1 <div class='markdown'>")
    assert "hello" in got["acme_card"]
    # the type whose module failed to import is unknown: an error card, as in Metaflow
    assert "MetaflowCard named acme_broken not found" in got["acme_broken"]

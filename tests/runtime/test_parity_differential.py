"""The seed-scenario differences of issue 14, each checked against real Metaflow 2.19.39."""

from __future__ import annotations

import inspect
import json
import pickle
from pathlib import Path

from tests.parity.differential import Workdir

from .conftest import FlowRunner

FLOW = """
from metaflow import FlowSpec, step


class TokenFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TokenFlow()
"""

READ = """
import json, sys
from {lib} import Flow, namespace
namespace(None)
task = Flow("TokenFlow").latest_run["start"].task
md = task.metadata_dict
print(json.dumps({{"user": md.get("user"), "production": md.get("production")}}))
"""


def _run_with_token(root: Path, lib: str) -> dict[str, str | None]:
    wd = Workdir(root, lib)
    wd.add("flow.py", FLOW)
    for cmd in (["flow.py", "run"], ["-c", READ.format(lib=lib)]):
        cp = wd.python(*cmd, METAFLOW_PRODUCTION_TOKEN="tok-123")
    return json.loads(cp.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_production_token_task_metadata(tmp_path: Path) -> None:
    expected = _run_with_token(tmp_path, "metaflow")
    assert expected == {"user": None, "production": "tok-123"}
    assert _run_with_token(tmp_path, "mfstore") == expected


def test_metaflow_object_pickles(flows: FlowRunner, client) -> None:
    import metaflow

    flows.run("parity_flaky.py", "--with", "retry", "run")
    theirs = pickle.loads(pickle.dumps(metaflow.Metaflow()))
    ours = pickle.loads(pickle.dumps(client.Metaflow()))
    assert type(theirs).__name__ == type(ours).__name__ == "Metaflow"
    assert [f.id for f in ours.flows] == ["FlakyFlow"]


def test_loglines_meta_dict(flows: FlowRunner, client) -> None:
    import metaflow

    theirs = list(inspect.signature(metaflow.Task.loglines).parameters)
    assert list(inspect.signature(client.Task.loglines).parameters) == theirs
    flows.run("parity_flaky.py", "--with", "retry", "run")
    task = client.Flow("FlakyFlow").latest_run["start"].task
    # Metaflow: the meta_dict's attempt picks the log; without ds-type/ds-root no log
    assert [line for _, line in task.loglines("stdout", meta_dict=task.metadata_dict)] == [
        "second attempt"
    ]
    first = dict(task.metadata_dict, attempt="0")
    assert [line for _, line in task.loglines("stdout", meta_dict=first)] == []
    assert list(task.loglines("stdout", meta_dict={})) == [(None, "")]


def test_metadata_local_selects_the_default(flows: FlowRunner, client) -> None:
    import metaflow

    flows.run("parity_flaky.py", "--with", "retry", "run")
    assert metaflow.metadata("local").startswith("local@")
    assert client.metadata("local") == f"local@{flows.db}"
    assert len(list(client.Flow("FlakyFlow").runs())) == 1

"""Run one flow file on real Metaflow 2.19.39 and, with its import rewritten, on mfstore's
runtime; read back what each recorded through its own Client API."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.flowfiles import FLOWS, LIBS, MFSTORE_ROOT, child_env, rewrite_source, run_python

__all__ = ["FLOWS", "LIBS", "Workdir", "snapshot"]

#: Generous: Metaflow starts a process per task and the machines are shared.
TIMEOUT = 600


class Workdir:
    """One system's working directory: the flow file, its datastore / .mfdb."""

    def __init__(self, root: Path, lib: str) -> None:
        self.lib = lib
        self.path = root / lib
        self.path.mkdir(parents=True, exist_ok=True)

    def env(self, **extra: str) -> dict[str, str]:
        return child_env(
            METAFLOW_USER="tester",
            METAFLOW_HOME=str(self.path),
            METAFLOW_CLIENT_CACHE_PATH=str(self.path / "client_cache"),  # not /tmp's shared one
            MFSTORE_DB=str(self.path / "t.mfdb"),
            PYTHONPATH=str(MFSTORE_ROOT),
            **extra,
        )

    def add(self, name: str, source: str | None = None) -> str:
        text = source if source is not None else (FLOWS / name).read_text()
        (self.path / name).write_text(rewrite_source(text, self.lib))
        return name

    def python(
        self, *args: str, check: bool = True, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return run_python(args, self.path, self.env(**extra), timeout=TIMEOUT, check=check)

    def read(self, script: str) -> Any:
        """Run ``script`` (``{lib}`` is the library) and parse its last stdout line as JSON."""
        cp = self.python("-c", script.format(lib=self.lib))
        return json.loads(cp.stdout.strip().splitlines()[-1])


#: What a run recorded, through the Client API: the step order, and per step the tasks'
#: artifacts (user artifacts, the loop iteration, the transition), foreach indices, and
#: whether the task was cloned by a resume; the graph as ``_graph_info`` describes it.
SNAPSHOT = """
import json
from {lib} import Flow, namespace
namespace(None)
run = Flow(FLOW).latest_run
def norm(v):
    return json.loads(json.dumps(v, default=str))
steps = [s.id for s in run]
tasks = {{}}
for s in run:
    rows = []
    for t in s:
        arts = {{a.id: norm(a.data) for a in t.artifacts if a.id != "name"}}
        for n in ("_iteration_stack", "_transition"):
            try:
                arts[n] = norm(t[n].data)
            except KeyError:
                pass
        md = t.metadata_dict
        rows.append({{
            "artifacts": arts,
            "foreach": md.get("foreach-execution-path"),
            "cloned": "origin-task-id" in md,
            "ok": t.successful,
        }})
    tasks[s.id] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))
gi = run["start"].task["_graph_info"].data
keys = ("type", "next", "condition", "switch_cases", "matching_join", "foreach_artifact")
graph = {{n: {{k: d.get(k) for k in keys}} for n, d in gi["steps"].items()}}
print(json.dumps({{"successful": run.successful, "steps": steps, "tasks": tasks,
                  "graph": graph, "structure": gi["graph_structure"]}}))
"""


def snapshot(wd: Workdir, flow: str) -> Any:
    """The latest run of ``flow`` in ``wd``, as ``SNAPSHOT`` reads it. (Not the compat
    harness's ``snapshot``, which dumps every run of a flow, normalized, for a field by
    field diff: this reads what the graph-shape tests compare, each task's loop iteration
    and transition (internal artifacts, read by name) and the graph.)"""
    return wd.read(f"FLOW = {flow!r}\n" + SNAPSHOT)

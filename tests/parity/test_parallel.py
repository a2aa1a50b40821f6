"""``@parallel`` steps whose worker tasks return without calling ``self.next()`` (Metaflow's
test/core SecretsDecoratorTest does this): Metaflow 2.19.39 follows the control task's
transition and records ``_transition`` None for the workers; mfstore's runtime does the same."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .differential import LIBS, Workdir

FLOW = "parallel_workers.py"

READ = """
import json
from {lib} import Flow, namespace
namespace(None)
run = Flow("ParallelWorkersFlow").latest_run
work = sorted(
    ([t["node"].data, t["nodes"].data, t["_transition"].data, t.successful] for t in run["work"]),
    key=lambda r: r[0],
)
controls = [t["node"].data for t in run["work"].control_tasks()]
print(json.dumps({{"ok": run.successful, "work": work, "controls": controls,
                  "seen": run["join"].task["seen"].data, "steps": [s.id for s in run]}}))
"""


def test_parallel_workers_without_next_follow_the_control_task(tmp_path: Path) -> None:
    # Metaflow starts the workers' processes as `python` from PATH
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    seen = {}
    for lib in LIBS:
        wd = Workdir(tmp_path, lib)
        wd.add(FLOW)
        wd.python(FLOW, "run", PATH=path)
        seen[lib] = wd.read(READ)
    theirs, ours = seen["metaflow"], seen["mfstore"]
    assert theirs["ok"] is True
    assert [w[2] for w in theirs["work"]][1:] == [None, None]  # the workers' _transition
    assert theirs["controls"] == [0]
    assert ours == theirs

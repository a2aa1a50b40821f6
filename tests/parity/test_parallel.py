"""``@parallel`` steps as Metaflow 2.19.39 runs them locally, compared with mfstore's runtime:
worker tasks that return without calling ``self.next()`` (test/core's SecretsDecoratorTest),
and tasks that all die under ``@retry`` + ``@catch`` (test/core's TagCatchTest)."""

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


#: Metaflow starts the workers' processes as `python` from PATH
PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def test_parallel_workers_without_next_follow_the_control_task(tmp_path: Path) -> None:
    """Metaflow follows the control task's transition and records ``_transition`` None for
    the workers."""
    seen = {}
    for lib in LIBS:
        wd = Workdir(tmp_path, lib)
        wd.add(FLOW)
        wd.python(FLOW, "run", PATH=PATH)
        seen[lib] = wd.read(READ)
    theirs, ours = seen["metaflow"], seen["mfstore"]
    assert theirs["ok"] is True
    assert [w[2] for w in theirs["work"]][1:] == [None, None]  # the workers' _transition
    assert theirs["controls"] == [0]
    assert ours == theirs


READ_CATCH = """
import json
from {lib} import Flow, namespace
namespace(None)
run = Flow("ParallelCatchFlow").latest_run
work = sorted(
    (sorted(m.value for m in t.metadata if m.type == "attempt"),
     "internal_task_type" in t.metadata_dict)
    for t in run["work"]
)
join = run["join"].task
print(json.dumps({{"work": work, "inputs": join["inputs"].data, "caught": join["caught"].data,
                  "ok": run.successful}}))
"""


def test_catch_fallback_of_a_parallel_step_is_the_control_tasks(tmp_path: Path) -> None:
    """Every task dies on both attempts: Metaflow's fallback attempt is the control task's
    alone (it starts no workers), so the workers keep 2 attempts, the control task has 3 and
    the join's only input is the control task, with the caught exception."""
    seen = {}
    for lib in LIBS:
        wd = Workdir(tmp_path, lib)
        wd.add("parallel_catch.py")
        wd.python("parallel_catch.py", "run", PATH=PATH)
        seen[lib] = wd.read(READ_CATCH)
    theirs, ours = seen["metaflow"], seen["mfstore"]
    assert theirs["work"] == [[["0", "1"], False], [["0", "1"], False], [["0", "1", "2"], True]]
    assert theirs["inputs"] == 1 and theirs["caught"] == ["MetaflowExceptionWrapper"]
    assert ours == theirs

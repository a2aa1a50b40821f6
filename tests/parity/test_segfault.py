"""A task process killed by a segmentation fault: mfstore's runtime prints and logs what
Metaflow 2.19.39 does ("Task failed with a segmentation fault.", console and the task's
stderr log; "Workflow failed." and the shutdown lines on stdout)."""

from __future__ import annotations

import re
from pathlib import Path

from .differential import LIBS, Workdir

FLOW = "segfault.py"

LOGS = """
import json
from {lib} import Flow, namespace
namespace(None)
task = Flow("SegFlow").latest_run["end"].task
print(json.dumps({{"stdout": task.stdout, "stderr": task.stderr, "ok": task.successful}}))
"""


def _console(stdout: str) -> list[str]:
    """The runtime's lines without timestamps, run ids, task ids and pids."""
    out = []
    for line in stdout.splitlines():
        line = re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ", "", line)
        line = re.sub(r"\(run-id \d+\)", "(run-id N)", line)
        out.append(re.sub(r"^\[\d+/(\w+)/\d+ \(pid \d+\)\]", r"[\1]", line))
    return out


def test_segfault_is_reported_like_metaflow(tmp_path: Path) -> None:
    seen = {}
    for lib in LIBS:
        wd = Workdir(tmp_path, lib)
        wd.add(FLOW)
        cp = wd.python(FLOW, "run", check=False)
        assert cp.returncode == 1
        seen[lib] = (_console(cp.stdout), wd.read(LOGS))
    theirs, ours = seen["metaflow"], seen["mfstore"]
    assert "[end] Task failed with a segmentation fault." in theirs[0]
    assert theirs[1]["stderr"] == "Task failed with a segmentation fault.\n"
    assert ours == theirs

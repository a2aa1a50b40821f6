"""``resume`` as Metaflow 2.19.39 does it, compared on the same flow: the order in which
a resumed run lists its steps."""

from __future__ import annotations

from pathlib import Path

from .differential import LIBS, Workdir

STEPS = """
import json
from {lib} import Flow, namespace
namespace(None)
print(json.dumps([s.id for s in Flow("ResumeBranchesFlow").latest_run]))
"""


def test_a_resumed_run_lists_its_steps_as_metaflow(tmp_path: Path) -> None:
    """Newest first: the steps that ran again, then the cloned ones (Metaflow clones every
    task it can before it runs any). Metaflow clones in parallel threads, so the order of
    its cloned steps varies; mfstore clones in graph order."""
    seen = {}
    for lib in LIBS:
        wd = Workdir(tmp_path, lib)
        wd.add("resume_branches.py")
        wd.python("resume_branches.py", "run")
        wd.python("resume_branches.py", "resume", "a")
        seen[lib] = wd.read(STEPS)
    ours, theirs = seen["mfstore"], seen["metaflow"]
    assert theirs[:3] == ["end", "join", "a"]
    assert sorted(theirs[3:]) == ["b", "b2", "start"]
    assert ours == ["end", "join", "a", "b2", "b", "start"]

"""``current.project_*`` is set before the run's Parameters are parsed, so a default
function can read it (Metaflow's DynamicParameterTest), on Metaflow and on mfstore."""

from __future__ import annotations

from pathlib import Path

from .differential import LIBS, Workdir

READ = """
import json
from {lib} import Flow, namespace
namespace(None)
print(json.dumps(Flow("ProjectParamFlow").latest_run.data.where))
"""


def test_parameter_default_sees_project(tmp_path: Path) -> None:
    seen = {}
    for lib in LIBS:
        wd = Workdir(tmp_path, lib)
        wd.add("project_param.py")
        wd.python("project_param.py", "--branch", "b1", "run")
        seen[lib] = wd.read(READ)
    assert seen["metaflow"] == "param_project/test.b1"
    assert seen["mfstore"] == seen["metaflow"]

"""``current.project_*`` is set before the run's Parameters are parsed, so a default
function can read it (Metaflow's DynamicParameterTest), on Metaflow and on mfstore."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def _failure(cp) -> list[str]:
    """The headline and first message line of a refused run, as printed."""
    lines = [ln.strip() for ln in (cp.stdout + cp.stderr).splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("Parameter field"))
    return lines[start : start + 2]


@pytest.mark.parametrize("problem", ["raises", "int", "json"])
def test_a_failing_default_function_is_reported_as_metaflow_does(
    tmp_path: Path, problem: str
) -> None:
    seen = {}
    for lib in LIBS:
        wd = Workdir(tmp_path, lib)
        wd.add("param_default_errors.py")
        cp = wd.python("param_default_errors.py", "run", check=False, PROBLEM=problem)
        assert cp.returncode == 1, (lib, cp.stdout, cp.stderr)
        seen[lib] = _failure(cp)
    assert seen["mfstore"] == seen["metaflow"]
    assert "Traceback" not in (seen["mfstore"][0] + seen["mfstore"][1])


def test_a_default_function_of_the_right_type_gives_the_value(tmp_path: Path) -> None:
    wd = Workdir(tmp_path, "mfstore")
    wd.add("param_default_errors.py")
    cp = wd.python("param_default_errors.py", "run")
    assert "n 5 cfg {'k': 1}" in cp.stdout + cp.stderr

"""Mistakes in a flow's definition are reported as Metaflow reports them (same exception
type, headline and message), on Metaflow and on mfstore."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.flowfiles import FLOWS

from .differential import LIBS, Workdir


def _run_both(tmp_path: Path, problem: str) -> dict[str, subprocess.CompletedProcess[str]]:
    """``param_default_errors.py run`` with ``PROBLEM=problem`` on each system."""
    done = {}
    for lib in LIBS:
        wd = Workdir(tmp_path, lib)
        wd.add("param_default_errors.py")
        done[lib] = wd.python("param_default_errors.py", "run", check=False, PROBLEM=problem)
    return done


def _failure(cp: subprocess.CompletedProcess[str]) -> list[str]:
    """The headline and first message line of a refused run, as printed."""
    assert cp.returncode == 1, (cp.stdout, cp.stderr)
    lines = [ln.strip() for ln in (cp.stdout + cp.stderr).splitlines() if ln.strip()]
    start = next(i for i, ln in enumerate(lines) if ln.startswith("Parameter field"))
    return lines[start : start + 2]


@pytest.mark.parametrize("problem", ["raises", "int", "json"])
def test_a_failing_default_function_is_reported_as_metaflow_does(
    tmp_path: Path, problem: str
) -> None:
    seen = {lib: _failure(cp) for lib, cp in _run_both(tmp_path, problem).items()}
    assert seen["mfstore"] == seen["metaflow"]
    assert "Traceback" not in (seen["mfstore"][0] + seen["mfstore"][1])


@pytest.mark.parametrize("problem", ["", "bytes"])
def test_default_functions_of_the_right_type_give_metaflows_values(
    tmp_path: Path, problem: str
) -> None:
    seen = {
        lib: [ln.split("VALUES ", 1)[1] for ln in cp.stdout.splitlines() if "VALUES " in ln]
        for lib, cp in _run_both(tmp_path, problem).items()
    }
    label = "'bytes-label'" if problem else "'label-False'"
    assert seen["metaflow"] == [f"5 {{'k': 1}} {label}"]
    assert seen["mfstore"] == seen["metaflow"]


#: A start -> end flow whose start step has ``@retry(tims=3)`` (a misspelt attribute).
BAD_ATTRIBUTE = (
    (FLOWS / "parity_remote.py")
    .read_text()
    .replace("kubernetes", "retry")
    .replace("cpu=2", "tims=3")
)


def test_an_unknown_decorator_attribute_is_metaflows_error(tmp_path: Path) -> None:
    seen = {}
    for lib in LIBS:
        wd = Workdir(tmp_path, lib)
        wd.add("bad_attribute.py", BAD_ATTRIBUTE)
        cp = wd.python("bad_attribute.py", "run", check=False)
        assert cp.returncode == 1, (lib, cp.stdout, cp.stderr)
        seen[lib] = cp.stderr.strip().splitlines()[-1].split(".exception.", 1)[1]
    assert seen["metaflow"].startswith("InvalidDecoratorAttribute: Decorator 'retry' ")
    assert seen["mfstore"] == seen["metaflow"]


def test_run_help_shows_what_default_functions_give(tmp_path: Path) -> None:
    seen = {}
    for lib in LIBS:
        wd = Workdir(tmp_path, lib)
        wd.add("param_default_errors.py")
        out = wd.python("param_default_errors.py", "run", "--help").stdout
        seen[lib] = [" ".join(ln.split()) for ln in out.splitlines() if ln.strip().startswith("--")]
        seen[lib] = [ln for ln in seen[lib] if ln.split()[0] in ("--n", "--cfg", "--tag_label")]
        # a default it does not show is not computed: one that would raise does not matter
        hidden = wd.python("param_default_errors.py", "run", "--help", PROBLEM="unshown").stdout
        assert "--hidden INTEGER Hidden." in " ".join(hidden.split()), lib
    assert sorted(seen["metaflow"]) == [
        '--cfg JSON [default: {"k": 1}]',
        "--n INTEGER [default: 5]",
        "--tag_label TEXT [default: label-False]",
    ]
    assert seen["mfstore"] == seen["metaflow"]

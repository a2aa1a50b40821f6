"""The test/core matrix tool's own logic: merging result files into one table, the Markdown
table written into the docs, the expected differences, and the environment a case runs in."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "metaflow_core_matrix.py"


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("core_matrix_tool", TOOL)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ok(seconds: float = 1.0) -> dict[str, object]:
    return {"ok": True, "why": "", "detail": "", "seconds": seconds}


def fail(why: str, detail: str) -> dict[str, object]:
    return {"ok": False, "why": why, "detail": detail, "seconds": 1.0}


def test_merge_takes_the_last_result_per_case_and_backend(tool: ModuleType, tmp_path: Path):
    first = tmp_path / "A.json"  # a finished run: {"cases": rows}
    first.write_text(
        json.dumps(
            {
                "cases": [
                    {
                        "test": "T",
                        "graph": "g1",
                        "metaflow": ok(),
                        "mfstore": fail("run failed", "x"),
                    },
                    {"test": "T", "graph": "g2", "metaflow": ok(), "mfstore": ok(), "mfdb": None},
                ]
            }
        )
    )
    second = tmp_path / "B.json.partial"  # an interrupted run: one entry per case and backend
    second.write_text(
        json.dumps(
            [
                {"test": "T", "graph": "g1", "mfstore": ok(2.0)},
                {"test": "T", "graph": "g2", "mfdb": fail("CliCheck failed", "boom")},
                {"test": "A", "graph": "g1", "mfdb": ok()},
            ]
        )
    )
    rows = tool.merge_results([first, second])
    by = {(r["test"], r["graph"]): r for r in rows}
    assert [(r["test"], r["graph"]) for r in rows] == [("A", "g1"), ("T", "g1"), ("T", "g2")]
    assert by[("T", "g1")]["mfstore"] == ok(2.0)  # the later file wins
    assert by[("T", "g1")]["metaflow"] == ok()  # kept: the later file has no Metaflow result
    assert by[("T", "g2")]["mfdb"]["why"] == "CliCheck failed"  # filled in
    assert by[("A", "g1")]["metaflow"] is None and by[("A", "g1")]["mfstore"] is None
    # the other order: the finished run's failure replaces the partial pass
    assert tool.merge_results([second, first])[1]["mfstore"]["ok"] is False


def test_markdown_counts_and_explains(tool: ModuleType, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(
        tool,
        "EXPECTED_DIFFERENCES",
        {"X": (("mfstore",), "test-only plugin"), "B/h": (("mfstore",), "this graph only")},
    )
    rows = [
        {"test": "A", "graph": "g", "metaflow": ok(), "mfstore": ok(), "mfdb": ok()},
        {
            "test": "B",
            "graph": "g",
            "metaflow": ok(),
            "mfstore": fail("run failed", "2026-12-02 06:18:21.495 [1/s/2] bad | pipe"),
            "mfdb": None,
        },
        {
            "test": "X",
            "graph": "g",
            "metaflow": ok(),
            "mfstore": fail("run failed", "no"),
            "mfdb": ok(),
        },
        {
            "test": "F",
            "graph": "g",
            "metaflow": fail("run failed", "both"),
            "mfstore": fail("a", "b"),
            "mfdb": None,
        },
    ]
    md = tool.markdown(rows)
    lines = md.splitlines()
    assert lines[0] == "| test | graph | metaflow | mfstore | mfdb | note |"
    assert "| A | g | pass | pass | pass |  |" in lines
    b_row = next(ln for ln in lines if ln.startswith("| B |"))
    # the time stamp is dropped, a pipe in the detail cannot break the table
    assert "| pass | **FAIL** | not run | mfstore: run failed: [1/s/2] bad \\| pipe |" in b_row
    x_row = next(ln for ln in lines if ln.startswith("| X |"))
    assert "mfstore: expected: test-only plugin" in x_row
    assert "- metaflow: 3 of 4 cases run pass (4 cases)" in lines
    assert "- mfstore: 1 of 4 cases run pass (4 cases)" in lines
    assert "- mfdb: 2 of 2 cases run pass (4 cases)" in lines
    # B is a gap, X an explained one, F fails on Metaflow too (not a gap)
    assert "- pass on metaflow but not on mfstore: 2 (1 not explained: B/g)" in lines
    assert "- pass on metaflow but not on mfdb: 0 (0 not explained)" in lines
    assert tool.expected("X", "mfstore") == "test-only plugin"
    assert tool.expected("B", "mfstore", "h") == "this graph only"
    assert tool.expected("B", "mfstore", "g") is None  # B on another graph must pass
    assert tool.expected("X", "mfdb") is None  # real Metaflow on mfdb must still pass it


def test_merge_cli_exit_status_and_files(tool: ModuleType, tmp_path: Path):
    res = tmp_path / "r.json"
    res.write_text(
        json.dumps(
            [
                {"test": "A", "graph": "g", "metaflow": ok()},
                {"test": "A", "graph": "g", "mfstore": fail("run failed", "x")},
            ]
        )
    )
    out, md = tmp_path / "merged.json", tmp_path / "table.md"
    cp = subprocess.run(
        [sys.executable, str(TOOL), "--merge", str(res), "--json", str(out), "--markdown", str(md)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cp.returncode == 1, cp.stdout + cp.stderr  # a gap nobody explained
    assert "pass on metaflow but not on mfstore: 1" in cp.stdout
    assert json.loads(out.read_text())["cases"][0]["mfstore"]["ok"] is False
    assert "| A | g | pass | **FAIL** | not run |" in md.read_text()


def test_a_case_runs_as_run_tests_py_runs_it(tool: ModuleType, tmp_path: Path):
    """Metaflow's run_tests.py puts test/core on PYTHONPATH (its test-only extension package
    loads from there) and runs in an environment whose `python` is the interpreter running
    the suite (Metaflow starts `python` for @parallel workers): a case sees both."""
    core = tmp_path / "core"
    (core / "metaflow_test").mkdir(parents=True)
    (core / "contexts.json").write_text(
        json.dumps(
            {
                "contexts": [
                    {
                        "name": tool.CONTEXT,
                        "env": {},
                        "top_options": [],
                        "run_options": [],
                        "checks": [],
                    }
                ]
            }
        )
    )
    flow = (
        "import json, os, shutil\n"
        "open('run-id', 'w').write('1')\n"
        "json.dump([os.environ['PYTHONPATH'], shutil.which('python')], open('env.json', 'w'))\n"
    )
    case = {
        "test": "T",
        "graph": "g",
        "flow_code": flow,
        "check_code": "",
        "should_fail": False,
        "should_resume": False,
        "resume_step": None,
        "copy_files": [],
    }
    result = tool.run_case(case, "metaflow", core, 120, keep=True)
    kept = Path(result["dir"])
    try:
        assert result["ok"], result
        pythonpath, python = json.loads((kept / "env.json").read_text())
        assert pythonpath.split(":")[:2] == [str(kept), str(core)]
        assert Path(python).parent == Path(sys.executable).parent
        assert "$ " in (kept / "commands.log").read_text()
    finally:
        shutil.rmtree(kept, ignore_errors=True)
    result = tool.run_case(case, "metaflow", core, 120)
    assert result["ok"] and "dir" not in result

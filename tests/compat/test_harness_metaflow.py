"""Checks the differential harness against real Metaflow (the reference side).

Runs a few flows under real Metaflow and asserts concrete facts from the
normalized snapshots, so that the harness itself is known to observe the right
things before it is pointed at mfstore.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
from harness import diff, snapshot

from tests.flowfiles import rewrite_source, run_flow

FILES = ["foreach_flow.py", "retry_flow.py", "catch_flow.py", "failing_flow.py"]


@pytest.fixture(scope="module")
def mf_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mfhist")
    for f in FILES:
        cp = run_flow(
            "metaflow", f, root, ["run", "--max-workers", "1"], check=f != "failing_flow.py"
        )
        if f == "failing_flow.py":
            assert cp.returncode != 0
    return root


@pytest.fixture(scope="module")
def snaps(mf_root):
    return {
        name: snapshot("metaflow", mf_root, name, "user:alice")
        for name in ("ForeachFlow", "RetryFlow", "CatchFlow", "FailingFlow")
    }


def only_run(s):
    assert s["run_order"] == ["R0"]
    assert s["latest_run"] == "R0"
    return s["runs"][0]


def only_task(run, step):
    tasks = run["steps"][step]["tasks"]
    assert len(tasks) == 1, tasks
    return next(iter(tasks.values()))


def test_foreach(snaps):
    s = snaps["ForeachFlow"]
    run = only_run(s)
    assert run["successful"] is True and run["finished"] is True
    assert run["step_order"] == ["end", "join", "work", "start"]
    work = run["steps"]["work"]["tasks"]
    assert sorted(t["index"] for t in work.values()) == [0, 1, 2, 3]
    by_index = {t["index"]: (tid, t) for tid, t in work.items()}
    for i, item in enumerate("abcd"):
        _tid, t = by_index[i]
        assert t["artifacts"]["item"]["value"] == item
        assert t["artifacts"]["sq"]["value"] == i * i
        assert t["stdout"] == f"work {i} {item}\n"
        assert t["metadata_values"]["foreach-stack"] == [f"items={item}"]
        assert t["metadata_values"]["foreach-execution-path"] == f"work:{i}"
        assert t["parent_task_pathspecs"] == ["start/1"]
    # task iteration is newest-first; Step.task is the newest task (index 3)
    assert run["steps"]["work"]["task_order"] == ["5", "4", "3", "2"]
    assert run["steps"]["work"]["step_task_index"] == 3
    join = only_task(run, "join")
    assert join["parent_task_pathspecs"] == sorted(f"work/{tid}" for tid in work)
    assert join["index"] is None
    assert only_task(run, "start")["child_task_pathspecs"] == sorted(f"work/{t}" for t in work)
    assert run["parameters"] == {"name": "ForeachFlow"}
    assert run["end_task"] == "end/7"
    assert "user:alice" in run["system_tags"] and "runtime:dev" in run["system_tags"]
    assert "metaflow_version:*" in run["system_tags"]
    assert s["metaflow_flows"] == ["CatchFlow", "FailingFlow", "ForeachFlow", "RetryFlow"]


def test_retry(snaps):
    run = only_run(snaps["RetryFlow"])
    t = only_task(run, "flaky")
    assert t["current_attempt"] == 1
    assert t["metadata_values"]["attempt"] == "1"
    assert t["successful"] is True and t["exception"] is None
    assert t["stdout"] == "attempt 1\n"
    assert t["artifacts"]["attempt_seen"]["value"] == 1
    assert len(t["attempts"]) == 2
    a0, a1 = t["attempts"]
    assert a0["successful"] is False and a0["finished"] is False
    assert a0["exception_type"] == "builtins.RuntimeError"
    assert a0["stdout"] == "attempt 0\n"
    assert a1["successful"] is True and a1["exception_type"] is None


def test_catch(snaps):
    run = only_run(snaps["CatchFlow"])
    assert run["successful"] is True
    boom = only_task(run, "boom")
    assert boom["exception"] is None
    assert boom["successful"] is False and boom["finished"] is True
    err = boom["artifacts"]["err"]["value"]["MetaflowExceptionWrapper"]
    assert err == {"type": "builtins.KeyError", "exception": "'caught-key'"}
    assert "before" in boom["artifact_names"]
    end = only_task(run, "end")
    assert end["artifacts"]["had_error"]["value"] is True
    assert boom["stdout"].startswith("@catch caught an exception from <flow CatchFlow step boom>\n")
    assert "KeyError: 'caught-key'" in boom["stdout"]


def test_failed_run(snaps):
    s = snaps["FailingFlow"]
    run = only_run(s)
    assert s["latest_successful_run"] is None
    assert run["successful"] is False
    assert run["finished"] is False  # Metaflow; mfstore says True on purpose
    assert run["data_is_none"] is True and run["end_task"] is None
    assert run["finished_at_is_none"] is True
    assert run["step_order"] == ["explode", "start"]
    t = only_task(run, "explode")
    assert t["exception"] == {
        "type": "builtins.ValueError",
        "message": "deliberate failure 17",
        "class": "MetaflowExceptionWrapper",
    }
    assert t["successful"] is False and t["finished"] is False
    assert t["finished_at_is_none"] is False
    assert t["artifacts"]["partial"]["value"] == 42  # a failing task still persists artifacts
    assert t["stdout"] == "about to fail\n"
    assert "ValueError: deliberate failure 17" in t["stderr"]
    assert t["metadata_values"]["attempt_ok"] == "False"


def test_errors(snaps):
    e = snaps["ForeachFlow"]["errors"]
    assert e["run_doesnotexist"]["error"] == "MetaflowNotFound"
    assert e["run_doesnotexist"]["message"] == "Run('ForeachFlow/doesnotexist') does not exist"
    assert e["flow_nope"] == {
        "error": "MetaflowNotFound",
        "message": "Flow('Nope') does not exist",
        "is_metaflow_exception": True,
    }
    assert e["run_bad_pathspec"]["error"] == "MetaflowInvalidPathspec"
    assert e["run_bad_pathspec"]["message"] == "Expects Run('FlowName/RunID')"
    assert e["task_attempt_7"]["message"] == "Attempt can only be smaller than 6"
    assert e["bob_ns_run"]["error"] == "MetaflowNamespaceMismatch"
    assert e["bob_ns_run"]["message"] == "Object not in namespace 'user:bob'"
    # no run of bob: even Flow(name) is out of bob's namespace
    assert e["bob_ns_flow"]["error"] == "MetaflowNamespaceMismatch"
    assert e["bob_ns_flow_contains"]["error"] == "MetaflowNamespaceMismatch"
    assert e["empty_ns_flow"]["message"] == "Object not in namespace ''"
    assert e["empty_ns_metaflow_flows"] == []
    assert e["missing_artifact"] == {
        "error": "KeyError",
        "message": "'no_such_artifact'",
        "is_metaflow_exception": False,
    }


def test_snapshot_is_stable(mf_root, snaps):
    again = snapshot("metaflow", mf_root, "RetryFlow", "user:alice")
    assert diff(snaps["RetryFlow"], again) == []
    glob = snapshot("metaflow", mf_root, "RetryFlow", None)
    assert glob["runs"] == snaps["RetryFlow"]["runs"]


def test_diff_and_rewrite():
    a = {"runs": [{"finished": False, "x": [1, 2]}], "k": 1}
    b = {"runs": [{"finished": True, "x": [1, 3]}], "k": 1}
    d = diff(a, b)
    assert d == ["runs.0.finished: a=false b=true", "runs.0.x.1: a=2 b=3"]
    assert diff(a, b, {"runs.*.finished", "runs.*.x"}) == []
    assert any("only in a" in x for x in diff({"z": 1}, {}))
    src = "from metaflow import FlowSpec\nimport metaflow\nfrom metaflow.exception import X\n"
    assert rewrite_source(src, "mfstore") == (
        "from mfstore import FlowSpec\nimport mfstore as metaflow\nfrom mfstore.exception import X\n"
    )
    assert rewrite_source(src, "metaflow") == src
    assert rewrite_source(rewrite_source(src, "mfstore"), "metaflow") == src
    assert harness.flow_class_name("nested_foreach_flow.py") == "NestedForeachFlow"

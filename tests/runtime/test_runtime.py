"""The runtime end to end: flow files run as scripts, checked through SQL and the Client API."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.flowfiles import run_id_of

from .conftest import FlowRunner

# -- seeds ---------------------------------------------------------------------------


def test_team_collab_console_and_client(flows: FlowRunner, client) -> None:
    cp = flows.run("team_collab_flow.py", "run")
    rid = run_id_of(cp)
    assert re.search(rf"\[{rid}/start/1 \(pid \d+\)\] Task is starting\.", cp.stdout)
    assert "current.username: alice" in cp.stdout
    assert "current.namespace: user:alice" in cp.stdout
    assert re.search(rf"\[{rid}/end/2 \(pid \d+\)\] Random choice was \d", cp.stdout)
    assert cp.stdout.rstrip().endswith("Done!")
    client.namespace("user:alice")
    run = client.Flow("TeamCollabFlow").latest_successful_run
    assert run.id == rid and run.successful and run.finished
    assert run.data.choice in {1, 2, 3, 4, 5}
    assert {"user:alice", "runtime:dev", "python_version:3.11.7"} <= run.system_tags
    assert run.user_tags == frozenset()
    start = run["start"].task
    assert start.stdout == "current.username: alice\ncurrent.namespace: user:alice\n"
    assert [line for _, line in start.loglines("stdout")] == [
        "current.username: alice",
        "current.namespace: user:alice",
    ]
    assert run.code is not None and run.code.script_name == "team_collab_flow.py"
    assert "class TeamCollabFlow" in run.code.flowspec
    client.namespace("user:my-teammate")
    with pytest.raises(
        client.exception.MetaflowNamespaceMismatch if hasattr(client, "exception") else Exception
    ):
        _ = client.Flow("TeamCollabFlow").latest_successful_run


def test_access_other_namespace(flows: FlowRunner, client) -> None:
    bob = run_id_of(flows.run("team_collab_flow.py", "run", user="bob"))
    cp = flows.run("access_other_namespace.py", "run")
    assert f"TeamCollabFlow/{bob} has value" in cp.stdout
    # Flow() in a namespace without runs raises inside the step: the run fails
    cp = flows.run(
        "access_other_namespace.py", "run", "--other-namespace", "user:nobody", check=False
    )
    assert cp.returncode == 1 and "Object not in namespace 'user:nobody'" in cp.stdout


def test_current_flow(flows: FlowRunner, client) -> None:
    cp = flows.run("current_info_flow.py", "run", "--tag", "t1", "--namespace", "other")
    rid = run_id_of(cp)
    info = client.Run(f"CurrentInfoFlow/{rid}")["start"].task.data.info
    assert info == {
        "flow_name": "CurrentInfoFlow",
        "run_id": rid,
        "step_name": "start",
        "task_id": "1",
        "pathspec": f"CurrentInfoFlow/{rid}/start/1",
        "namespace": "user:alice",
        "username": "alice",
        "retry_count": 0,
        "tags": ["t1"],
        "is_running_flow": True,
        "origin_run_id": None,
        "is_production": False,
    }
    assert client.Run(f"CurrentInfoFlow/{rid}")["start"].task.data.client_ns == "other"
    # --namespace= means the global namespace inside the task
    cp = flows.run("current_info_flow.py", "run", "--namespace=")
    assert client.Run(f"CurrentInfoFlow/{run_id_of(cp)}")["start"].task.data.client_ns is None
    # current on the console
    cp = flows.run("current_flow.py", "run", "--tag", "t1", "--namespace", "other")
    assert "end has a different task id: 2" in cp.stdout
    assert "flow parameters: []" in cp.stdout


def test_current_outside_flow() -> None:
    from mfstore.runtime import current

    assert current.flow_name is None and current.run_id is None and current.pathspec is None
    assert current.is_running_flow is False and current.is_production is False


def test_production_token(flows: FlowRunner, client) -> None:
    cp = flows.run("current_info_flow.py", "run", METAFLOW_PRODUCTION_TOKEN="tok-1")
    run = client.Run(f"CurrentInfoFlow/{run_id_of(cp)}")
    assert "production:tok-1" in run.system_tags
    assert not any(t.startswith("user:") for t in run.system_tags)
    info = run["start"].task.data.info
    assert info["namespace"] == "production:tok-1" and info["is_production"] is True


# -- structure -----------------------------------------------------------------------


def test_branch_join_merge(flows: FlowRunner, client) -> None:
    cp = flows.run("branch_join_flow.py", "run")
    run = client.Run(f"BranchJoinFlow/{run_id_of(cp)}")
    join = run["join"].task
    assert join.data.total == 30 and join.data.from_a == "A"
    assert join.data.common == "shared" and join.data.only_a == "A" and join.data.only_b == "B"
    assert "counter" not in join.data
    assert sorted(p.split("/")[2] for p in join.parent_task_pathspecs) == ["a", "b"]
    assert run["start"].task["_graph_info"].data["steps"]["start"]["type"] == "split-static"


def test_foreach_index_and_parents(flows: FlowRunner, client) -> None:
    cp = flows.run("wide_foreach.py", "run", WIDTH="5")
    run = client.Run(f"WideForeachFlow/{run_id_of(cp)}")
    assert "Foreach yields 5 child steps." in cp.stdout
    tasks = list(run["work"])
    assert sorted(t.index for t in tasks) == [0, 1, 2, 3, 4]
    for t in tasks:
        assert t.data.sq == t.index**2
        assert t.metadata_dict["foreach-stack"] == [f"items={t.index}"]
        assert t.metadata_dict["foreach-execution-path"] == f"work:{t.index}"
    assert [t.id for t in tasks] == ["6", "5", "4", "3", "2"]
    assert run.data.total == 30
    assert len(list(run["join"].task.parent_tasks)) == 5
    assert run["start"].task.index is None


def test_nested_foreach(flows: FlowRunner, client) -> None:
    cp = flows.run("nested_foreach_flow.py", "run")
    run = client.Run(f"NestedForeachFlow/{run_id_of(cp)}")
    leaves = list(run["inner"])
    assert len(leaves) == 6
    leaf = next(t for t in leaves if t.data.pair == "2y")
    assert leaf.index == 1 and leaf.data.stack == [(1, 2, 2), (1, 3, "y")]
    assert leaf.metadata_dict["foreach-stack"] == ["outer_items=2", "inner_items=y"]
    assert leaf.metadata_dict["foreach-execution-path"] == "outer:1,inner:1"
    assert sorted(t.index for t in run["inner_join"]) == [0, 1]
    assert len(run.data.all_pairs) == 6


# -- failures ------------------------------------------------------------------------


def test_retry(flows: FlowRunner, client) -> None:
    cp = flows.run("retry_flow.py", "run", RETRY_FAILURES="2")
    task = client.Run(f"RetryFlow/{run_id_of(cp)}")["flaky"].task
    assert task.successful and task.current_attempt == 2 and task.data.attempt_seen == 2
    assert client.Task(task.pathspec, attempt=0).stdout.startswith("attempt 0\n")
    assert client.Task(task.pathspec, attempt=0).exception.type == "builtins.RuntimeError"
    assert "Task is starting (retry)." in cp.stdout


def test_catch(flows: FlowRunner, client) -> None:
    cp = flows.run("catch_flow.py", "run")
    run = client.Run(f"CatchFlow/{run_id_of(cp)}")
    boom = run["boom"].task
    assert boom.finished and not boom.successful and boom.exception is None
    assert boom.data.err.type == "builtins.KeyError" and boom.data.before == 1
    assert run.successful and run.data.had_error is True
    assert "@catch caught an exception from <flow CatchFlow step boom>" in cp.stdout


def test_failing_step_ends_run(flows: FlowRunner, client) -> None:
    cp = flows.run("resume_failing_flow.py", "run", check=False)
    assert cp.returncode == 1
    assert "Step b (task-id 3) failed." in cp.stderr
    assert "ValueError: deliberate failure 17" in cp.stdout
    run = client.Run(f"ResumeFailingFlow/{run_id_of(cp)}")
    assert run.finished is True and run.successful is False
    task = run["b"].task
    assert task.exception.type == "builtins.ValueError"
    assert "deliberate failure 17" in task.exception.exception
    assert "ValueError: deliberate failure 17" in task.stderr
    assert task.stdout == "about to fail\n"
    assert flows.sql("SELECT status FROM runs") == [("failed",)]
    # the run is in the main file: no pending write-ahead log
    wal = flows.db.with_name(flows.db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_os_exit_fails_only_that_task(flows: FlowRunner, client) -> None:
    cp = flows.run("exit_flow.py", "run", check=False)
    assert cp.returncode == 1
    assert "going down" in cp.stdout and "exited with code 3" in cp.stdout
    run = client.Run(f"ExitFlow/{run_id_of(cp)}")
    assert not run.successful
    assert "exited with code 3" in run["start"].task.exception.exception
    assert flows.sql("PRAGMA integrity_check") == [("ok",)]


def test_killed_task(flows: FlowRunner, client) -> None:
    cp = flows.run("exit_flow.py", "run", check=False, EXIT_MODE="kill")
    assert cp.returncode == 1 and "Task process was killed by signal 9." in cp.stdout
    task = client.Run(f"ExitFlow/{run_id_of(cp)}")["start"].task
    assert "killed by signal 9" in task.exception.exception and task.stdout == "going down\n"


def test_catch_after_crash(flows: FlowRunner, client) -> None:
    cp = flows.run("catch_crash.py", "run")
    run = client.Run(f"CatchCrashFlow/{run_id_of(cp)}")
    task = run["crash"].task
    assert task.current_attempt == 1 and task.finished and not task.successful
    assert task.data.err.type.endswith("FailureHandledByCatch")
    assert run.successful


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in fh)
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_interrupted_run_stays_unfinished(flows: FlowRunner, client, sig) -> None:
    proc = flows.popen("sleep_flow.py", "run", "--run-id-file", "rid.txt")
    deadline = time.time() + 120  # safety nets only: a loaded machine starts flows slowly
    while time.time() < deadline:
        if (flows.workdir / "rid.txt").exists() and flows.sql(
            "SELECT count(*) FROM log_lines WHERE line = 'napping'"
        ) == [(1,)]:
            break
        time.sleep(0.1)
    else:
        proc.kill()
        raise AssertionError("the nap step never started")
    proc.send_signal(sig)
    out, _err = proc.communicate(timeout=120)  # the nap alone would take 60 s: exit 0 if missed
    assert proc.returncode != 0
    rid = (flows.workdir / "rid.txt").read_text()
    assert flows.sql("SELECT status, finished_at FROM runs WHERE run_number = ?", (rid,)) == [
        ("running", None)
    ]
    run = client.Run(f"SleepFlow/{rid}")
    assert not run.successful and run["nap"].task.stdout == "napping\n"
    # no task process is left behind
    pids = [int(m) for m in re.findall(r"nap/\d+ \(pid (\d+)\)", out)]
    assert pids
    deadline = time.time() + 5
    while any(_alive(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)


# -- resume --------------------------------------------------------------------------


def test_resume_default_origin(flows: FlowRunner, client) -> None:
    origin = run_id_of(flows.run("resume_failing_flow.py", "run", "--p", "5", check=False))
    cp = flows.run("resume_failing_flow.py", "resume", RESUME_OK="1")
    rid = run_id_of(cp)
    run = client.Run(f"ResumeFailingFlow/{rid}")
    assert run.successful and run.data.total == 1 + 2 + 5 and run.data.origin == origin
    assert run.origin_pathspec == f"ResumeFailingFlow/{origin}"
    start = run["start"].task
    assert start.origin_pathspec == f"ResumeFailingFlow/{origin}/start/1" and start.stdout == ""
    assert all(t.metadata_dict["origin-run-id"] == origin for s in run for t in s)
    assert run["_parameters"].task.data.p == 5
    assert run["_parameters"].task.metadata_dict["end_step"] == "end"
    assert flows.sql("SELECT origin_run_number FROM runs WHERE run_number = ?", (rid,)) == [
        (origin,)
    ]
    # a second resume still resumes the original run (resumes don't become the origin)
    rid2 = run_id_of(flows.run("resume_failing_flow.py", "resume", "join", RESUME_OK="1"))
    run2 = client.Run(f"ResumeFailingFlow/{rid2}")
    assert run2.origin_pathspec == f"ResumeFailingFlow/{origin}"


def test_resume_step_and_other_users_run(flows: FlowRunner, client) -> None:
    bob = run_id_of(flows.run("resume_failing_flow.py", "run", user="bob", RESUME_OK="1"))
    cp = flows.run(
        "resume_failing_flow.py", "resume", "join", "--origin-run-id", bob, "--tag", "resumed"
    )
    run = client.Run(f"ResumeFailingFlow/{run_id_of(cp)}")
    assert run.successful and "user:alice" in run.system_tags and "user:bob" not in run.system_tags
    assert run.user_tags == frozenset({"resumed"})
    assert run["a"].task.origin_pathspec is not None and run["b"].task.origin_pathspec is not None
    assert run["join"].task.origin_pathspec is None
    assert True
    assert run["join"].task.data.origin == bob


# -- tags ----------------------------------------------------------------------------


def test_tag_commands(flows: FlowRunner, client) -> None:
    flows.run("team_collab_flow.py", "run", user="bob")
    rid = run_id_of(flows.run("team_collab_flow.py", "run", "--tag", "first"))
    cp = flows.run("team_collab_flow.py", "tag", "add", "x", check=False)
    assert (
        cp.returncode == 1
        and "Please specify a run-id using --run-id." in cp.stderr
        and rid in cp.stderr
    )
    cp = flows.run("team_collab_flow.py", "tag", "add", "--run-id", rid, "x", "y z")
    assert "Operation successful. New tags:" in cp.stdout and "    x\n" in cp.stdout
    assert client.Run(f"TeamCollabFlow/{rid}").user_tags == frozenset({"first", "x", "y z"})
    flows.run(
        "team_collab_flow.py", "tag", "replace", "--run-id", rid, "--remove", "x", "--add", "w"
    )
    flows.run("team_collab_flow.py", "tag", "remove", "--run-id", rid, "first")
    assert client.Run(f"TeamCollabFlow/{rid}").user_tags == frozenset({"w", "y z"})
    cp = flows.run(
        "team_collab_flow.py", "tag", "remove", "--run-id", rid, "user:alice", check=False
    )
    assert cp.returncode == 1 and "Cannot remove a tag that is an existing system tag" in cp.stderr
    cp = flows.run(
        "team_collab_flow.py",
        "tag",
        "add",
        "--run-id",
        rid,
        "--namespace",
        "user:bob",
        "q",
        check=False,
    )
    assert "does not belong to namespace user:bob" in cp.stderr
    cp = flows.run(
        "team_collab_flow.py", "tag", "replace", "--run-id", rid, "--add", "q", check=False
    )
    assert "Specify at least one tag to remove; else please use tag add." in cp.stderr
    cp = flows.run("team_collab_flow.py", "tag", "list", "--flat")
    # Metaflow prints --flat tags on stderr, after the "executing" banner line
    assert set(cp.stderr.split("\n")[1:]) >= {"w", "y z", "user:alice"}
    cp = flows.run(
        "team_collab_flow.py", "--quiet", "tag", "list", "--group-by-tag", "--hide-system-tags"
    )
    assert f"user:w ; TeamCollabFlow/{rid}" in cp.stdout


# -- graph ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, message",
    [
        ("bad/missing_next.py", "Step start is missing a self.next() transition"),
        (
            "bad/unknown_step.py",
            "Step start specifies a self.next() transition to an unknown step, nowhere.",
        ),
        ("bad/join_without_inputs.py", "Step join has more than one incoming transition"),
        ("bad/unreachable.py", "Step orphan is unreachable from the entry step start."),
    ],
)
def test_graph_errors(flows: FlowRunner, name: str, message: str) -> None:
    cp = flows.run(name, "run", check=False)
    assert cp.returncode == 1
    assert "Validity checker found an issue" in cp.stderr and message in cp.stderr
    assert not flows.db.exists()


def test_show(flows: FlowRunner) -> None:
    cp = flows.run("branch_join_flow.py", "show")
    # Metaflow's layout: "Step NAME", the docstring (or "?") and "=> next steps" indented
    assert "Step start\n    ?\n    => a, b\n" in cp.stdout


def test_run_id_file_and_mfdb_option(flows: FlowRunner, client) -> None:
    other = flows.workdir / "other.mfdb"
    cp = flows.run(
        "team_collab_flow.py",
        "--mfdb",
        str(other),
        "run",
        "--run-id-file",
        "id.txt",
        "--max-workers",
        "1",
    )
    assert (flows.workdir / "id.txt").read_text() == run_id_of(cp)
    assert other.exists() and not flows.db.exists()


# -- differential ---------------------------------------------------------------------


def test_differential_against_metaflow(tmp_path) -> None:
    """The compat harness's flows give the same Client API answers under both libraries,
    except the documented differences (reference section 7: a failed run/attempt is
    finished, so it has a finished_at)."""
    import metaflow  # noqa: F401  (test dependency: real Metaflow is the reference)

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "compat"))
    from harness import KNOWN_DIFFERENCES, STORAGE_DETAILS, differential

    ignore = (
        KNOWN_DIFFERENCES
        | STORAGE_DETAILS
        | {
            "runs.*.finished_at_is_none",
            "runs.*.steps.*.tasks.*.attempts.*.finished",
        }
    )
    files = [
        "foreach_flow.py",
        "branch_join_flow.py",
        "current_flow.py",
        "catch_flow.py",
        "team_collab_flow.py",
    ]
    assert differential(files, tmp_path, ignore=ignore) == []


_COUNT_IDLE_WAITS = """
import atexit, runpy, sys
from mfstore.runtime import scheduler

idle = []
poll = scheduler.Runtime.poll

def counting_poll(self):
    if not self.running:
        idle.append(len(self.queue))
    return poll(self)

scheduler.Runtime.poll = counting_poll
atexit.register(lambda: open("idle_waits.txt", "w").write(str(len(idle))))
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_a_resume_that_only_clones_never_waits_for_nothing(flows: FlowRunner, client) -> None:
    origin = run_id_of(flows.run("branch_join_flow.py", "run"))
    (flows.workdir / "count_idle_waits.py").write_text(_COUNT_IDLE_WAITS)
    cp = subprocess.run(
        [sys.executable, "count_idle_waits.py", "branch_join_flow.py", "resume"],
        cwd=flows.workdir,
        env=flows.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cp.returncode == 0, cp.stderr[-3000:]
    run = client.Run(f"BranchJoinFlow/{run_id_of(cp)}")
    assert run.successful
    assert all(
        t.origin_pathspec.startswith(f"BranchJoinFlow/{origin}/")
        for s in run
        for t in s
        if s.id != "_parameters"
    )
    # the scheduler waited on its selector only while a task process was running
    assert (flows.workdir / "idle_waits.txt").read_text() == "0"

"""Real Metaflow on a .mfdb (issue 16): the same history made by Metaflow's runtime on
its local backend and on mfdb gives the same answers through Metaflow's client, and
mfstore's Client agrees with Metaflow's client on the .mfdb.

The history is the compat harness's scenarios (parameters, two users, branch, foreach,
nested foreach, retry, catch, a failing run, resume, artifact types), run with
``METAFLOW_DEFAULT_METADATA=mfdb METAFLOW_DEFAULT_DATASTORE=mfdb`` and no MFSTORE_DB: the
file is found (and created) the mfstore way, in the working directory.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.compat import harness
from tests.compat.harness import (
    build_history,
    diff,
    flow_class_name,
    snapshot,
    snapshot_history,
)
from tests.flowfiles import FLOWS, MFDB, lib_env, run_flow, run_python
from tests.metaflow_ext.conftest import MFSTORE_VS_METAFLOW

#: What differs between Metaflow's local backend and mfdb by design, read through
#: Metaflow's client (docs/metaflow.md, "Differences").
MFDB_VS_LOCAL = harness.STORAGE_DETAILS | {
    # ties in created_at (same millisecond): local lists the filesystem's order
    "runs.*.step_order",
    "runs.*.steps.*.task_order",
    "metaflow_flows_raw_order",
}


#: The scenarios run (parameters + two users + tags, branch, nested foreach, retry, catch,
#: a failing run, run then resume): each flow runs twice per test session, so the list
#: leaves out the harness's scenarios these already cover.
FLOW_FILES = [
    "linear_params_flow.py",
    "branch_join_flow.py",
    "nested_foreach_flow.py",
    "retry_flow.py",
    "catch_flow.py",
    "failing_flow.py",
    "current_flow.py",
]
#: Generous: the suite runs on shared 2-core machines.
TIMEOUT = 900


@pytest.fixture(scope="module")
def histories(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mfext_history")
    for lib in ("metaflow", MFDB):
        build_history(lib, root / lib, FLOW_FILES, timeout=TIMEOUT)
    return root


def test_no_metaflow_directory(histories: Path) -> None:
    wd = histories / MFDB
    assert (wd / "metaflow.mfdb").is_file()
    assert not (wd / ".metaflow").exists()
    assert (histories / "metaflow" / ".metaflow").is_dir()


def test_same_history_as_local_backend(histories: Path) -> None:
    local = snapshot_history("metaflow", histories / "metaflow", FLOW_FILES)
    mfdb = snapshot_history(MFDB, histories / MFDB, FLOW_FILES)
    assert set(local) == set(mfdb)
    problems = []
    for key in sorted(local):
        a, b = dict(local[key], lib=None), dict(mfdb[key], lib=None)
        problems += [f"{key}: {d}" for d in diff(a, b, MFDB_VS_LOCAL)]
    assert problems == []
    # the snapshots are not empty: every flow has runs with tasks and artifacts
    for key, snap in mfdb.items():
        assert snap["runs"], key
        assert any(run["steps"] for run in snap["runs"]), key


def test_both_clients_agree_on_the_file(histories: Path) -> None:
    wd = histories / MFDB
    metaflow_view = snapshot_history(MFDB, wd, FLOW_FILES)
    mfstore_view = snapshot_history("mfstore", wd / "metaflow.mfdb", FLOW_FILES)
    assert _client_differences(metaflow_view, mfstore_view) == []


def _client_differences(metaflow_view: dict, mfstore_view: dict) -> list[str]:
    """Where mfstore's Client and Metaflow's, reading one file, answer differently, beyond
    the documented differences."""
    problems = []
    for key in sorted(metaflow_view):
        a, b = dict(metaflow_view[key], lib=None), dict(mfstore_view[key], lib=None)
        ignore = MFSTORE_VS_METAFLOW | (_RESUMED_CUSTOM_END if "CustomEnds" in key else set())
        problems += [f"{key}: {d}" for d in diff(a, b, ignore)]
    return problems


# -- the other scenarios of the Proof: custom start/end steps (+ resume), @project,
# a METAFLOW_PRODUCTION_TOKEN run, tag edits through the CLI and the client (by another
# user too), @timeout firing (caught, and failing the run), a run killed mid-flight.

#: Flow file -> the namespaces its snapshots are taken in.
MORE = {
    "custom_ends_flow.py": ("user:alice", None),
    "project_flow.py": ("user:alice", "project:mfext_diff", "production:tok123", None),
    "timeout_flow.py": ("user:alice", None),
    "killed_flow.py": (None,),
}
#: Tag used for the ``runs(tag)`` query of each flow's snapshot.
MORE_TAGS = {"custom_ends_flow.py": "ce", "project_flow.py": "p2"}


def _run(lib: str, wd: Path, flow: str, args: list[str], **kw: Any) -> Any:
    kw.setdefault("user", "alice")
    kw.setdefault("timeout", TIMEOUT)
    return run_flow(lib, flow, wd, args, **kw)


def _client(lib: str, wd: Path, code: str, user: str) -> None:
    """Run ``code`` with Metaflow's client on ``lib``'s history in ``wd``."""
    env = lib_env(lib, wd, {"METAFLOW_USER": user})
    run_python(["-c", "from metaflow import *\n" + code], wd, env, timeout=TIMEOUT)


def _killed(lib: str, wd: Path) -> None:
    """``run`` SIGKILLed (runtime and task) while its start step runs."""
    (wd / "killed_flow.py").write_text((FLOWS / "killed_flow.py").read_text())
    marker = wd / "killed.marker"
    env = lib_env(lib, wd, {"METAFLOW_USER": "alice", "KILLED_FLOW_MARKER": str(marker)})
    proc = subprocess.Popen(
        [sys.executable, "killed_flow.py", "run"],
        cwd=str(wd),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert marker.exists(), "the start step never ran"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def build_more(lib: str, wd: Path) -> None:
    """The scenarios of ``MORE``, in the same order on every backend."""
    wd.mkdir(parents=True, exist_ok=True)
    _run(
        lib,
        wd,
        "custom_ends_flow.py",
        ["run", "--tag", "ce", "--scale", "3", "--run-id-file", "ce.rid"],
    )
    ce = (wd / "ce.rid").read_text().strip()
    for name, args in (("logs", ["logs", f"{ce}/middle"]), ("dump", ["dump", f"{ce}/gather"])):
        cp = _run(lib, wd, "custom_ends_flow.py", args)
        (wd / f"{name}.out").write_text((cp.stdout + cp.stderr).replace(ce, "<RUN>"))
    _run(lib, wd, "custom_ends_flow.py", ["resume", "middle"])
    _run(lib, wd, "project_flow.py", ["run", "--tag", "p1", "--run-id-file", "project.rid"])
    rid = (wd / "project.rid").read_text().strip()
    _run(
        lib, wd, "project_flow.py", ["run"], user="bob", env={"METAFLOW_PRODUCTION_TOKEN": "tok123"}
    )
    for edit in (["add", "cli_a", "cli_b"], ["remove", "cli_b"]):
        _run(lib, wd, "project_flow.py", ["tag", *edit, "--run-id", rid])
    _run(
        lib,
        wd,
        "project_flow.py",
        ["tag", "replace", "--run-id", rid, "--remove", "p1", "--add", "p2"],
    )
    _client(
        lib,
        wd,
        f"r = Run('ProjectFlow/{rid}', _namespace_check=False)\n"
        "r.add_tag('client_c')\nr.remove_tag('cli_a')\nr.replace_tag('client_c', 'client_d')",
        user="bob",
    )
    _run(lib, wd, "timeout_flow.py", ["run"])
    failed = _run(lib, wd, "timeout_flow.py", ["run", "--fail_hard", "1"], check=False)
    assert failed.returncode != 0
    _killed(lib, wd)


@pytest.fixture(scope="module")
def more_histories(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mfext_more")
    for lib in ("metaflow", MFDB):
        build_more(lib, root / lib)
    return root


#: Clock times Metaflow prints into task logs (``Step hard timed out ...``).
_CLOCK = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+")
#: A tag edit makes Metaflow's local backend rewrite the run's created_at (mfdb keeps it:
#: docs/metaflow.md, "Differences"), which reorders the runs of ProjectFlow (its first run's
#: tags are edited after the second run): these are compared by id, not by order.
_TAG_EDITED = "ProjectFlow"
_ORDER = ("global_order", "run_order", "latest_run", "latest_successful_run")


#: Metaflow 2.19.39's client (on both backends) finds no end task in a resumed run whose
#: end step has a custom name, so it calls it unsuccessful; mfstore's Client finds it.
_RESUMED_CUSTOM_END = {
    "runs.0.successful",
    "runs.0.end_task",
    "runs.0.data_is_none",
    "latest_successful_run",
    "errors.none_ns_run_successful",
}


def _unclocked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unclocked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unclocked(v) for v in value]
    return _CLOCK.sub("<TIME>", value) if isinstance(value, str) else value


def _snapshots(lib: str, root: Path) -> dict[str, Any]:
    out = {}
    for f, namespaces in MORE.items():
        for ns in namespaces:
            snap = _unclocked(snapshot(lib, root, flow_class_name(f), ns, tag=MORE_TAGS.get(f)))
            out[f"{flow_class_name(f)}@{ns}"] = snap
    return out


def _by_id(snap: dict[str, Any]) -> dict[str, Any]:
    """``snap`` with its runs in id order and without the order fields."""
    snap = {k: v for k, v in snap.items() if k not in _ORDER}
    snap["runs"] = sorted(snap["runs"], key=lambda r: str(r["id"]))
    return snap


def test_more_scenarios(more_histories: Path) -> None:
    """Local vs mfdb through Metaflow's client; then `logs`/`dump` output; then Metaflow's
    client vs mfstore's Client on the .mfdb (one test: the histories are built once)."""
    local = _snapshots("metaflow", more_histories / "metaflow")
    mfdb = _snapshots(MFDB, more_histories / MFDB)
    problems = []
    for key in sorted(local):
        a, b = dict(local[key], lib=None), dict(mfdb[key], lib=None)
        if key.startswith(_TAG_EDITED):
            a, b = _by_id(a), _by_id(b)
        problems += [f"{key}: {d}" for d in diff(a, b, MFDB_VS_LOCAL)]
    assert problems == []
    # on mfdb the tag edits left creation order alone: the production run is the newest
    assert mfdb["ProjectFlow@None"]["latest_run"] == "R1"
    assert mfdb["ProjectFlow@project:mfext_diff"]["run_order"] == ["R1", "R0"]
    # the scenarios did what they say (read through Metaflow's client on the .mfdb)
    ends = mfdb["CustomEndsFlow@None"]["runs"]
    # (Metaflow 2.19.39's client shows the resumed run, whose start step was cloned, as
    # not successful on both backends: it finds no end task for custom step names there)
    assert ends[1]["successful"] is True and ends[1]["end_task"] == "finish/6"
    assert [set(r["steps"]) for r in ends] == [{"begin", "middle", "gather", "finish"}] * 2
    project = mfdb["ProjectFlow@user:alice"]["runs"]
    assert len(project) == 1 and project[0]["user_tags"] == ["client_d", "p2"]
    production = mfdb["ProjectFlow@production:tok123"]["runs"]
    assert len(production) == 1 and "production:tok123" in production[0]["system_tags"]
    timeouts = mfdb["TimeoutFlow@user:alice"]["runs"]
    assert [r["successful"] for r in timeouts] == [False, True]
    hard = timeouts[0]["steps"]["hard"]["tasks"]
    assert "TimeoutException" in json.dumps(next(iter(hard.values()))["exception"])
    killed = mfdb["KilledFlow@None"]["runs"]
    assert [(r["finished"], r["successful"]) for r in killed] == [(False, False)]

    _logs_and_dump_print_the_same(more_histories)
    _both_clients_agree_on_more(more_histories)


def _logs_and_dump_print_the_same(more_histories: Path) -> None:
    for name in ("logs", "dump"):
        local = (more_histories / "metaflow" / f"{name}.out").read_text()
        mfdb = (more_histories / MFDB / f"{name}.out").read_text()
        # the same lines; tasks in the order each backend lists them (ties: see task_order)
        assert sorted(local.splitlines()) == sorted(mfdb.splitlines()), name
    logs = (more_histories / MFDB / "logs.out").read_text()
    assert all(f"middle {v}" in logs for v in (3, 6, 9)), logs
    assert "total" in (more_histories / MFDB / "dump.out").read_text()


def _both_clients_agree_on_more(more_histories: Path) -> None:
    wd = more_histories / MFDB
    metaflow_view = _snapshots(MFDB, wd)
    mfstore_view = _snapshots("mfstore", wd / "metaflow.mfdb")
    assert _client_differences(metaflow_view, mfstore_view) == []
    # mfstore's Client finds the resumed run's custom end step (Metaflow's client does not)
    resumed = mfstore_view["CustomEndsFlow@None"]["runs"][0]
    assert resumed["successful"] is True and resumed["end_task"] == "finish/6"

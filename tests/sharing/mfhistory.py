"""Build a real Metaflow local history (a ``.metaflow`` directory) for the sharing tests.

``python -m tests.sharing.mfhistory WORKDIR`` or ``build_sharing_history(workdir)``. Runs flows
in parallel (one thread per flow, each flow's runs in order) with real Metaflow 2.19.39:
linear with parameters (alice, bob, production token), foreach, branch/join, failing,
@retry, @catch, run + resume, tags added with ``--tag`` and with ``Run.add_tag``/
``remove_tag``, and a run whose runtime is killed with SIGKILL mid-step.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.compat.harness import Execution, run_scenarios
from tests.flowfiles import DEFAULT_TIMEOUT, FLOWS, lib_env

KILL_FLOW = FLOWS / "kill_flow.py"

#: flow file -> [(user, args, extra env, expect failure)]
SCENARIOS: dict[str, list[Execution]] = {
    "linear_params_flow.py": [
        ("alice", ["run", "--tag", "exp1"], {}, False),
        ("bob", ["run", "--tag", "exp1", "--alpha", "5"], {}, False),
        ("alice", ["run", "--tag", "prod-ish"], {"METAFLOW_PRODUCTION_TOKEN": "tok"}, False),
    ],
    "foreach_flow.py": [("alice", ["run", "--max-workers", "2"], {}, False)],
    "branch_join_flow.py": [("alice", ["run", "--tag", "ünïcøde tag"], {}, False)],
    "failing_flow.py": [("alice", ["run"], {}, True)],
    "retry_flow.py": [("alice", ["run"], {}, False)],
    "catch_flow.py": [("alice", ["run"], {}, False)],
    "current_flow.py": [
        ("alice", ["run", "--tag", "t1"], {}, False),
        ("alice", ["resume", "end"], {}, False),
    ],
}

#: Client-side tag edits, applied after the runs: (flow, which run (0 = oldest), add, remove)
TAG_EDITS = [
    ("LinearParamsFlow", 0, ["shared", "added-later"], []),
    ("LinearParamsFlow", 1, ["shared"], ["exp1"]),
]


def _killed_run(workdir: Path) -> None:
    """Start KillFlow and SIGKILL its whole process group while `sleepy` runs."""
    dest = workdir / KILL_FLOW.name
    dest.write_text(KILL_FLOW.read_text())
    env = lib_env("metaflow", workdir)
    env["METAFLOW_USER"] = "alice"
    marker = workdir / "kill_flow.started"
    marker.unlink(missing_ok=True)
    env["KILL_FLOW_MARKER"] = str(marker)
    proc = subprocess.Popen(
        [sys.executable, dest.name, "run"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + DEFAULT_TIMEOUT  # a safety net: the kill waits for the marker
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("kill_flow never reached its sleepy step")
        time.sleep(0.05)
    time.sleep(0.3)  # let the step print something
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _tag_edits(workdir: Path) -> None:
    code = (
        "import json, sys\n"
        "from metaflow import Flow, namespace\n"
        "namespace(None)\n"
        "for flow, k, add, rm in json.loads(sys.argv[1]):\n"
        "    runs = sorted(Flow(flow), key=lambda r: int(r.id))\n"
        "    r = runs[k]\n"
        "    for t in add: r.add_tag(t)\n"
        "    for t in rm: r.remove_tag(t)\n"
    )
    env = lib_env("metaflow", workdir)
    env["METAFLOW_USER"] = "carol"
    subprocess.run(
        [sys.executable, "-c", code, json.dumps(TAG_EDITS)],
        cwd=workdir,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=DEFAULT_TIMEOUT,
    )


def build_sharing_history(workdir: Path) -> Path:
    """Build the history in ``workdir`` (the scenarios and the killed run at once, then
    the tag edits); return the ``.metaflow`` directory."""
    workdir = Path(workdir)
    (workdir / ".metaflow").mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=1) as pool:
        killed = pool.submit(_killed_run, workdir)
        run_scenarios("metaflow", workdir, SCENARIOS, parallel=True)
        killed.result()
    _tag_edits(workdir)
    return workdir / ".metaflow"


if __name__ == "__main__":  # pragma: no cover
    t0 = time.time()
    print(build_sharing_history(Path(sys.argv[1])), "%.1fs" % (time.time() - t0))

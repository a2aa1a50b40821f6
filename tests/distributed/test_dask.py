"""Runs on a real Dask cluster: the same run as locally, workers never touch the .mfdb,
a worker killed mid-task, a lost scheduler then ``resume``, Ctrl-C, a LocalCluster."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import mfstore

from .conftest import Cluster, Runner, wait_for

#: Artifacts that differ by design between executors (process ids).
PER_PROCESS = {"runner", "runners"}


def norm(value: Any) -> Any:
    """A value with classes defined in the flow file compared by name and fields."""
    if isinstance(value, dict):
        return {k: norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [norm(v) for v in value]
    if type(value).__name__ == "MetaflowExceptionWrapper":
        return ("exception", value.type, value.exception)
    if hasattr(value, "__dict__") and type(value).__module__ not in ("builtins",):
        return (type(value).__name__, norm(vars(value)))
    return value


def graph_info_without_dask(info: dict[str, Any]) -> dict[str, Any]:
    steps = {
        name: {**s, "decorators": [d for d in s["decorators"] if d["name"] != "dask"]}
        for name, s in info["steps"].items()
    }
    return {**info, "steps": steps}


def summary(run: Any) -> dict[str, Any]:
    """Everything comparable about a run: per step, per task (keyed by foreach path)."""
    out: dict[str, Any] = {
        "successful": run.successful,
        "finished": run.finished,
        "tags": sorted(run.tags),
        "system_tags": sorted(run.system_tags),
    }
    for step in run:
        tasks = {}
        for task in step:
            md = task.metadata_dict
            arts = {}
            for art in task:
                if art.id in PER_PROCESS:
                    continue
                value = art.data
                if art.id == "_graph_info":
                    value = graph_info_without_dask(value)
                arts[art.id] = norm(value)
            tasks[md.get("foreach-execution-path", "")] = {
                "successful": task.successful,
                "finished": task.finished,
                "attempt": task.current_attempt,
                "artifacts": arts,
                "metadata": sorted((m.name, str(m.value), m.type) for m in task.metadata),
                "stdout": task.stdout if step.id == "fan" else None,
            }
        out[step.id] = tasks
    return out


def run_of(flow_out: str) -> Any:
    run_id = re.search(r"Workflow starting \(run-id (\d+)\)", flow_out)
    assert run_id, flow_out[-3000:]
    return mfstore.Run(f"DaskFlow/{run_id.group(1)}")


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


class OpenFileWatch(threading.Thread):
    """Polls /proc/<pid>/fd of the workers and their task processes while a run goes."""

    def __init__(self, worker_pids: list[int], db: Path) -> None:
        super().__init__(daemon=True)
        self.worker_pids = worker_pids
        self.db = str(db)
        self.stop = threading.Event()
        self.violations: list[str] = []
        self.task_processes: set[int] = set()
        self.scans = 0

    def run(self) -> None:
        while not self.stop.is_set():
            for wpid in self.worker_pids:
                for pid in descendants(wpid):
                    if pid != wpid:
                        self.task_processes.add(pid)
                    try:
                        fds = os.listdir(f"/proc/{pid}/fd")
                    except OSError:
                        continue
                    for fd in fds:
                        try:
                            target = os.readlink(f"/proc/{pid}/fd/{fd}")
                        except OSError:
                            continue
                        if target.startswith(self.db):
                            self.violations.append(f"pid {pid}: {target}")
            self.scans += 1
            time.sleep(0.05)


def test_same_run_as_local_and_workers_never_open_the_file(cluster: Cluster, flows: Runner) -> None:
    _, local_out = flows.run("run", "--tag", "exp", "--sleep", "0.2")
    watch = OpenFileWatch([w.pid for w in cluster.workers], flows.db)
    watch.start()
    try:
        _, dask_out = flows.run(
            "run", "--tag", "exp", "--sleep", "0.2", "--with", f"dask:scheduler={cluster.address}"
        )
    finally:
        watch.stop.set()
        watch.join(timeout=10)
    assert cluster.address not in flows.workdir.as_posix()
    local, remote = run_of(local_out), run_of(dask_out)
    assert local.id != remote.id
    assert summary(remote) == summary(local)
    assert remote.successful and remote["end"].task.data.total == sum(i * i for i in range(20))
    assert remote["flaky"].task.current_attempt == 1
    assert remote["end"].task.data.failure_type is not None
    # The foreach ran in more than one worker process (a task's parent is its worker).
    runners = set(remote["gather"].task.data.runners)
    assert len(runners) > 1 and runners <= {w.pid for w in cluster.workers}
    assert watch.scans > 10 and watch.task_processes, "the open-file check never saw a task"
    assert watch.violations == []
    # Lines reached the console with Metaflow's prefix while the run went.
    assert re.search(r"\[\d+/fan/\d+ \(pid \d+ on [^)]+\)\] fan 3 done", dask_out)


def test_worker_killed_mid_task_retries_elsewhere(cluster: Cluster, flows: Runner) -> None:
    proc = flows.popen(
        "run", "--n", "4", "--sleep", "6", "--with", f"dask:scheduler={cluster.address}"
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        victim = cluster.workers[0]

        def victim_runs_a_fan_task() -> bool:
            # A "fan N starting" line whose task process is a live child of the victim.
            for line in list(lines):
                m = re.search(r"\(pid (\d+) on [^)]*\)\] fan \d+ starting", line)
                if not m:
                    continue
                try:
                    stat = Path(f"/proc/{m.group(1)}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if stat[0] not in "ZX" and int(stat[1]) == victim.pid:
                    return True
            return False

        wait_for("a fan task on the first worker", victim_runs_a_fan_task, 120)
        os.kill(victim.pid, signal.SIGKILL)
        proc.wait(timeout=150)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    reader.join(timeout=10)
    out = "".join(lines)
    assert proc.returncode == 0, out[-4000:]
    run = run_of(out)
    assert run.successful
    retried = [t for t in run["fan"] if t.current_attempt > 0]
    assert retried, out[-4000:]
    assert "running the task was lost" in out or "KilledWorker" in out, out[-4000:]
    assert run["gather"].task.data.total == 0 + 1 + 4 + 9


def test_lost_scheduler_leaves_the_run_unfinished_and_resume_completes_it(
    cluster: Cluster, flows: Runner
) -> None:
    proc = flows.popen(
        "run", "--n", "3", "--sleep", "30", "--with", f"dask:scheduler={cluster.address}"
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        wait_for("a fan task to start", lambda: any("fan 0 starting" in x for x in lines), 120)
        os.killpg(cluster.scheduler.pid, signal.SIGKILL)
        proc.wait(timeout=300)  # a safety net: reconnect attempts, then a checkpoint
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    reader.join(timeout=10)
    out = "".join(lines)
    assert proc.returncode == 1, out[-4000:]
    assert "Lost the Dask scheduler" in out and "resume" in out, out[-3000:]
    run = run_of(out)
    assert not run.finished and not run.successful
    _, resumed_out = flows.run("resume", "--origin-run-id", run.id)
    resumed = run_of(resumed_out)
    assert resumed.successful
    assert resumed["gather"].task.data.total == 0 + 1 + 4
    assert "Cloning results of a previously run task" in resumed_out


def test_ctrl_c_cancels_the_tasks_on_the_cluster(cluster: Cluster, flows: Runner) -> None:
    proc = flows.popen(
        # tasks that would sleep far longer than the waits below: gone only if cancelled
        "run",
        "--n",
        "2",
        "--sleep",
        "600",
        "--with",
        f"dask:scheduler={cluster.address}",
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    workers = [w.pid for w in cluster.workers]
    try:
        wait_for(
            "both fan tasks to run",
            lambda: sum("starting" in x and "] fan " in x for x in lines) >= 2,
            120,
        )
        wait_for(
            "both task processes on the workers",
            lambda: sum(len(descendants(w)) - 1 for w in workers) >= 2,
            120,
        )
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    reader.join(timeout=10)
    assert proc.returncode == 1
    # The task processes on the workers are gone (not left sleeping for a minute).
    wait_for(
        "the cluster's task processes to end",
        lambda: all(descendants(w) == [w] for w in workers),
        120,
    )


def test_dask_on_one_step_runs_it_on_a_local_cluster(flows: Runner) -> None:
    mixed = Runner(flows.workdir, "mixed_flow.py")
    _, out = mixed.run("run", timeout=600)
    run_id = re.search(r"Workflow starting \(run-id (\d+)\)", out)
    assert run_id, out[-3000:]
    run = mfstore.Run(f"MixedFlow/{run_id.group(1)}")
    assert run.successful
    # start and end were forked by the runtime; the foreach tasks by cluster workers.
    runtime = run["end"].task.data.end_parent
    assert run["join"].task.data.local_parent == runtime
    assert runtime not in run["join"].task.data.parents
    assert [c.value for c in run["join"].task.data.cells] == [10, 20, 30]
    work = sorted(run["work"], key=lambda t: t.index)
    assert [t.stdout.strip() for t in work] == ["work on 1", "work on 2", "work on 3"]

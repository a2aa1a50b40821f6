"""The worker side of remote executors: run one task attempt where the .mfdb is not.

``run_attempt`` runs inside a cluster worker (Dask today). It gets the ``TaskSpec``, the
flow's code package (the tar.gz mfstore stores with every run, loaded once per worker
process and code version) and the blobs of the input artifacts by sha. It forks a
process for the step -- exactly as the local executor does, so a crash, ``os._exit`` or
an out-of-memory kill fails only that attempt -- streams the step's output lines while
it runs, and returns by value the pickled ``TaskResult`` (new artifacts already
pickled, hashed and compressed), every output line, and how the process ended.

Nothing here opens a .mfdb or needs the directory it is in.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mfstore.code_packages import open_code_package, read_member
from mfstore.exception import MetaflowDataCorruption, MetaflowException

from ..task import BlobSource, TaskSpec, run_task
from .local import LineSplitter, exit_reason, fork_child

__all__ = ["MemoryBlobs", "load_flow", "run_attempt", "run_forked"]

#: How often a running attempt sends its new output lines (seconds).
LINE_BATCH_SECONDS = 0.5

#: Flow classes already loaded in this worker process, by code package sha.
_FLOWS: dict[str, tuple[type, Any]] = {}


class MemoryBlobs(BlobSource):
    """Input blobs the cluster delivered with the task: ``{sha: pickled bytes}``."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs

    def get(self, sha: str, what: str) -> bytes:
        try:
            return self.blobs[sha]
        except KeyError:
            raise MetaflowDataCorruption(
                f"artifact {what}: blob {sha} was not sent with the task"
            ) from None


def load_flow(code_sha: str, script_name: str, flow_name: str, package: bytes) -> tuple[type, Any]:
    """The flow class and graph from a code package (cached per worker process).

    The flow file is written to this machine's temp directory (keyed by sha) and
    imported under a private module name, never as ``__main__``; cloudpickle pickles
    its classes by value, so artifacts of types defined in the flow load anywhere."""
    found = _FLOWS.get(code_sha)
    if found is not None:
        return found
    if not code_sha.isalnum() or "/" in script_name or script_name.startswith("."):
        raise MetaflowException(f"Bad code package {code_sha!r} / {script_name!r}")
    root = Path(tempfile.gettempdir()) / f"mfstore-code-{os.getuid()}" / code_sha
    root.mkdir(parents=True, exist_ok=True)
    path = root / script_name
    with open_code_package(package) as tar:
        src = read_member(tar, script_name)
    if src is None:
        raise MetaflowException(f"The code package has no file {script_name}")
    tmp = root / f".{script_name}.{os.getpid()}.tmp"
    tmp.write_bytes(src)
    os.replace(tmp, path)
    module_name = f"mfstore_flow_{code_sha[:16]}"
    # (any file name: a flow file need not end in .py)
    loader = importlib.machinery.SourceFileLoader(module_name, str(path))
    spec = importlib.util.spec_from_file_location(module_name, path, loader=loader)
    if spec is None or spec.loader is None:
        raise MetaflowException(f"Cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)
    flow_cls = getattr(module, flow_name, None)
    if not isinstance(flow_cls, type):
        raise MetaflowException(f"{script_name} defines no flow {flow_name}")
    from ..graph import FlowGraph

    _FLOWS[code_sha] = (flow_cls, FlowGraph(flow_cls))
    return _FLOWS[code_sha]


def run_forked(
    body: Callable[[], int],
    send: Callable[[str, int, list[tuple[int, str]]], None],
    cancelled: Callable[[], bool],
    started: Callable[[int], None] = lambda pid: None,
) -> tuple[dict[str, list[tuple[int, str]]], int | None, bool]:
    """Run ``body`` in a forked child; return (all output lines, wait status, cancelled).

    ``started(pid)`` is called once the child exists.
    New lines go to ``send(stream, index of the first, lines)`` in batches while the child
    runs; ``cancelled()`` is checked twice a second and kills the child when true."""
    pid, r_out, r_err = fork_child(body)
    started(pid)
    streams = {r_out: "stdout", r_err: "stderr"}
    lines: dict[str, list[tuple[int, str]]] = {"stdout": [], "stderr": []}
    sent = {"stdout": 0, "stderr": 0}
    split = LineSplitter()
    status: int | None = None
    exited_at = 0.0
    last_send = time.monotonic()
    killed = False

    def flush() -> None:
        for stream, got in lines.items():
            if len(got) > sent[stream]:
                send(stream, sent[stream], got[sent[stream] :])
                sent[stream] = len(got)

    try:
        while True:
            if streams:
                ready, _, _ = select.select(list(streams), [], [], 0.25)
                for fd in ready:
                    data = os.read(fd, 65536)
                    lines[streams[fd]] += split.feed(streams[fd], data)
                    if not data:
                        os.close(fd)
                        del streams[fd]
            else:
                time.sleep(0.05)
            if status is None:
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    status, exited_at = st, time.monotonic()
            if status is not None and (not streams or time.monotonic() - exited_at > 2.0):
                break
            now = time.monotonic()
            if now - last_send >= LINE_BATCH_SECONDS:
                last_send = now
                flush()
                if not killed and cancelled():
                    killed = True
                    with contextlib.suppress(OSError):
                        os.killpg(pid, signal.SIGKILL)
    finally:
        for fd in streams:
            os.close(fd)
        if status is None:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                status = os.waitpid(pid, 0)[1]
    return lines, status, killed


def _task_is_cancelled(worker: Any, key: Any) -> bool:
    ts = worker.state.tasks.get(key)
    return ts is None or ts.state in ("cancelled", "released", "forgotten")


def run_attempt(job: dict[str, Any], package: bytes, blobs: dict[str, bytes]) -> dict[str, Any]:
    """The Dask task: run one attempt of ``job['spec']`` on this worker (see module doc)."""
    from distributed import get_worker

    worker = get_worker()
    dask_key = worker.get_current_task()
    topic, key = job["topic"], job["key"]
    flow_cls, graph = load_flow(job["code_sha"], job["script_name"], job["flow_name"], package)
    spec: TaskSpec = job["spec"]
    spec.db_path = ""
    tmp = tempfile.mkdtemp(prefix="mfstore-task-")
    spec.result_path = os.path.join(tmp, "result")
    where: dict[str, Any] = {
        "worker": worker.address,
        "host": socket.gethostname(),
        "worker_pid": os.getpid(),
    }

    def started(pid: int) -> None:
        where["pid"] = pid
        worker.log_event(topic, {"key": key, "started": where})

    def send(stream: str, start: int, new: list[tuple[int, str]]) -> None:
        msg = {"key": key, "stream": stream, "start": start, "lines": [list(x) for x in new]}
        worker.log_event(topic, msg)

    try:
        lines, status, killed = run_forked(
            lambda: run_task(flow_cls, graph, job["graph_info"], spec, MemoryBlobs(blobs)),
            send,
            lambda: _task_is_cancelled(worker, dask_key),
            started,
        )
        try:
            result = Path(spec.result_path).read_bytes()
        except OSError:
            result = None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    why = ""
    if result is None:
        why = "Task was cancelled" if killed else exit_reason(status or 0)
    return {"result": result, "why": why, "lines": lines, "where": where}

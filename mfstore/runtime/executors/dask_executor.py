"""The Dask executor: each task attempt is a Dask task on a cluster.

The runtime process stays the only writer of the .mfdb. Per attempt it submits
``worker.run_attempt`` with the ``TaskSpec``, the flow's code package (scattered once
per code version under the key ``mfstore-code-<sha>``; Dask copies it to a worker the
first time a task there needs it) and the input blobs (each scattered once under
``mfstore-blob-<sha>`` and kept while tasks need it). Output lines arrive as Dask
events (topic ``mfstore-<run>``) while the task runs; the attempt's result comes back
by value and the scheduler commits it in one transaction.

Dask's own retries are off: a task whose worker dies fails its attempt here (the
scheduler's ``@retry``/``@catch`` decide what happens next), and a lost scheduler ends
the run with ``ExecutorLostError`` (the run stays unfinished; ``resume`` completes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import queue
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any

from mfstore.exception import CommandException, ExecutorLostError

from ..task import TaskResult, TaskSpec, needs_blob
from .base import Executor, TaskDone, TaskLines

__all__ = ["DaskExecutor", "import_dask"]

#: Bytes of input blobs kept on the cluster after no running task needs them.
KEEP_BLOB_BYTES = 256 * 1024 * 1024
#: How long the scheduler may stay unreachable before the run is failed (seconds).
LOST_AFTER_SECONDS = 10.0
#: How often the cluster's worker list is checked for workers that died (seconds).
WORKER_CHECK_SECONDS = 1.0


def import_dask() -> Any:
    """``(dask, distributed)``, or a one-line error saying how to install them."""
    try:
        import dask
        import distributed
    except ImportError:
        raise CommandException(
            'Running tasks on Dask needs dask and distributed: pip install "mfstore[dask]"'
        ) from None
    return dask, distributed


class _Attempt:
    def __init__(self, key: int, spec: TaskSpec, future: Any, shas: list[str]) -> None:
        self.key = key
        self.spec = spec
        self.future = future
        self.shas = shas
        self.where: dict[str, Any] | None = None
        self.seen = {"stdout": 0, "stderr": 0}
        self.failed_why = ""


class DaskExecutor(Executor):
    """Runs attempts on a Dask cluster: ``scheduler`` (an address) or a LocalCluster."""

    name = "dask"

    def __init__(self, options: dict[str, Any], context: dict[str, Any]) -> None:
        dask, distributed = import_dask()
        code = context.get("code")
        if code is None:
            raise CommandException(
                "Running tasks on Dask needs the flow in a file (its code is shipped to the workers)"
            )
        self.code_sha, self.script_name, package = code
        self.flow_name = context["flow_name"]
        self.graph_info = context["graph_info"]
        self.read_blob = context["read_blob"]
        self.topic = "mfstore-" + uuid.uuid4().hex
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.attempts: dict[int, _Attempt] = {}
        self.blobs: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self.blob_users: dict[str, int] = {}
        self.cluster: Any = None
        self.last_check = 0.0
        self.unreachable_since: float | None = None
        address = options.get("scheduler")
        try:
            if address:
                self.address = str(address)
                self.client = distributed.Client(self.address, timeout="10s", set_as_default=False)
            else:
                with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                    self.cluster = distributed.LocalCluster(
                        n_workers=int(options.get("workers") or 2),
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        host="127.0.0.1",
                    )
                self.address = self.cluster.scheduler_address
                self.client = distributed.Client(self.cluster, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            self._close_cluster()
            raise ExecutorLostError(
                f"Cannot reach the Dask scheduler at {address}: {exc}"
            ) from None
        self.client.subscribe_topic(self.topic, lambda event: self.events.put(("event", event)))
        self.package = package
        self.code_future: Any = None

    def _code(self) -> Any:
        """The code package on the cluster (copied to every worker; again if all copies
        were lost with their workers)."""
        if self.code_future is None or self.code_future.status != "finished":
            key = f"mfstore-code-{self.code_sha}"
            self.code_future = self.client.scatter({key: self.package}, broadcast=True)[key]
        return self.code_future

    @property
    def in_flight(self) -> int:
        return len(self.attempts)

    # -- submitting ----------------------------------------------------------------

    def _blob_futures(self, spec: TaskSpec) -> dict[str, Any]:
        shas = sorted(
            {ref.sha for src in spec.inputs for ref in src.refs.values() if needs_blob(ref)}
        )
        missing = [
            sha for sha in shas if sha not in self.blobs or self.blobs[sha][0].status != "finished"
        ]
        if missing:
            data = {f"mfstore-blob-{sha}": self.read_blob(sha) for sha in missing}
            scattered = self.client.scatter(data, broadcast=False)
            for sha in missing:
                self.blobs[sha] = (
                    scattered[f"mfstore-blob-{sha}"],
                    len(data[f"mfstore-blob-{sha}"]),
                )
        for sha in shas:
            self.blobs.move_to_end(sha)
            self.blob_users[sha] = self.blob_users.get(sha, 0) + 1
        return {sha: self.blobs[sha][0] for sha in shas}

    def _release_blobs(self, shas: list[str]) -> None:
        for sha in shas:
            self.blob_users[sha] -= 1
            if not self.blob_users[sha]:
                del self.blob_users[sha]
        idle = sum(size for sha, (_, size) in self.blobs.items() if sha not in self.blob_users)
        for sha in list(self.blobs):
            if idle <= KEEP_BLOB_BYTES:
                break
            if sha not in self.blob_users:
                idle -= self.blobs.pop(sha)[1]

    def submit(self, key: int, spec: TaskSpec) -> str:
        try:
            return self._submit(key, spec)
        except (OSError, TimeoutError, asyncio.CancelledError) as exc:
            if self.client.status != "running":
                raise ExecutorLostError(self._lost_message()) from None
            raise ExecutorLostError(f"The Dask cluster at {self.address} failed: {exc}") from None

    def _submit(self, key: int, spec: TaskSpec) -> str:
        from .worker import run_attempt

        blobs = self._blob_futures(spec)
        job = {
            "key": key,
            "topic": self.topic,
            "spec": spec,
            "code_sha": self.code_sha,
            "script_name": self.script_name,
            "flow_name": self.flow_name,
            "graph_info": self.graph_info,
        }
        dask_key = f"mfstore-{spec.step_name}-{spec.run_id}-{spec.task_id}-{spec.attempt}-{uuid.uuid4().hex[:8]}"
        future = self.client.submit(
            run_attempt, job, self._code(), blobs, key=dask_key, pure=False, retries=0
        )
        self.attempts[key] = _Attempt(key, spec, future, list(blobs))
        future.add_done_callback(lambda f, k=key: self._fetch(k, f))
        return "dask"

    @staticmethod
    def _label(a: _Attempt) -> str | None:
        if a.where is None:
            return None
        return "pid {} on {}".format(a.where.get("pid"), a.where.get("host"))

    # -- results -------------------------------------------------------------------

    def poll(self, timeout: float) -> list[TaskLines | TaskDone]:
        out: list[TaskLines | TaskDone] = []
        try:
            item: tuple[str, Any] | None = self.events.get(timeout=timeout)
        except queue.Empty:
            item = None
        while item is not None:
            kind, payload = item
            if kind == "done":
                self._finished(payload[0], out, payload[1], payload[2])
            else:
                self._event(payload[1], out)
            try:
                item = self.events.get_nowait()
            except queue.Empty:
                item = None
        self._check_cluster(out)
        return out

    def _event(self, msg: Any, out: list[TaskLines | TaskDone]) -> None:
        if not isinstance(msg, dict):
            return
        a = self.attempts.get(msg.get("key", -1))
        if a is None:
            return
        if "started" in msg:
            if a.where is not None and not a.failed_why:
                # Dask ran the task again (its worker was lost): that attempt failed.
                a.failed_why = (
                    "Dask worker {} running the task was lost (the task started again)".format(
                        a.where.get("worker")
                    )
                )
                self.client.cancel([a.future], force=True)
                self._finished(a.key, out)
                return
            a.where = msg["started"]
            return
        stream = msg.get("stream")
        if stream in a.seen:
            self._lines(a, stream, msg.get("start", 0), msg.get("lines", []), out)

    def _lines(
        self,
        a: _Attempt,
        stream: str,
        start: int,
        lines: list[Any],
        out: list[TaskLines | TaskDone],
    ) -> None:
        new = lines[max(0, a.seen[stream] - start) :] if start <= a.seen[stream] else []
        if new:
            a.seen[stream] += len(new)
            lines_ = [(int(ts), str(text)) for ts, text in new]
            out.append(TaskLines(a.key, stream, lines_, self._label(a)))

    def _fetch(self, key: int, future: Any) -> None:
        """In Dask's callback thread: bring the finished task's value here (no timeout:
        a big result may take a while; the main loop keeps watching the cluster)."""
        try:
            value = future.result()
        except BaseException as exc:  # KilledWorker, CancelledError, a lost connection
            self.events.put(("done", (key, None, exc)))
        else:
            self.events.put(("done", (key, value, None)))

    def _finished(
        self,
        key: int,
        out: list[TaskLines | TaskDone],
        value: dict[str, Any] | None = None,
        exc: BaseException | None = None,
    ) -> None:
        a = self.attempts.pop(key, None)
        if a is None:
            return
        self._release_blobs(a.shas)
        why = a.failed_why
        result: TaskResult | None = None
        if not why:
            if value is None:
                if self.client.status != "running":
                    self.attempts[key] = a
                    raise ExecutorLostError(self._lost_message()) from None
                name = type(exc).__name__
                why = f"Dask could not run the task ({name}: {exc})".replace("\n", " ")
            else:
                a.where = a.where or value.get("where")
                for stream, lines in value["lines"].items():
                    if stream in a.seen:
                        self._lines(a, stream, 0, lines, out)
                if value["result"] is not None:
                    result = pickle.loads(value["result"])
                why = value["why"]
        out.append(TaskDone(key, result, why, self._label(a)))

    # -- failures ------------------------------------------------------------------

    def _scheduler_gone(self) -> bool:
        return self.client.status not in ("running", "connecting", "newly-created")

    def _lost_message(self) -> str:
        return (
            f"Lost the Dask scheduler at {self.address}: {len(self.attempts)} task(s) were "
            "running there."
        )

    def _check_cluster(self, out: list[TaskLines | TaskDone]) -> None:
        now = time.monotonic()
        if self.client.status != "running":
            self.unreachable_since = self.unreachable_since or now
            if self._scheduler_gone() or now - self.unreachable_since > LOST_AFTER_SECONDS:
                raise ExecutorLostError(self._lost_message())
            return
        self.unreachable_since = None
        if now - self.last_check < WORKER_CHECK_SECONDS:
            return
        self.last_check = now
        started = [a for a in self.attempts.values() if a.where is not None and not a.failed_why]
        if not started:
            return
        try:
            # Ask the scheduler itself: the client's cached identity is refreshed in the
            # background without the worker list.
            info = self.client.sync(self.client.scheduler.identity, n_workers=-1)
            workers = set(info["workers"])
        except Exception:
            return
        for a in started:
            assert a.where is not None
            if a.where.get("worker") not in workers:
                a.failed_why = "Dask worker {} running the task was lost".format(
                    a.where.get("worker")
                )
                with contextlib.suppress(Exception):
                    self.client.cancel([a.future], force=True)
                self._finished(a.key, out)

    def cancel_all(self) -> list[TaskLines | TaskDone]:
        futures = [a.future for a in self.attempts.values()]
        self.attempts.clear()
        if futures and not self._scheduler_gone():
            with contextlib.suppress(Exception):
                self.client.cancel(futures, force=True)
        return []

    def _close_cluster(self) -> None:
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close(timeout=10)
            self.cluster = None

    def close(self) -> None:
        done = threading.Event()

        def shut() -> None:
            with contextlib.suppress(Exception):
                self.client.unsubscribe_topic(self.topic)
            self.blobs.clear()
            with contextlib.suppress(Exception):
                self.client.close(timeout=5)
            self._close_cluster()
            done.set()

        # Closing a client whose scheduler is gone can hang: never wait on it for long.
        threading.Thread(target=shut, daemon=True).start()
        done.wait(15)

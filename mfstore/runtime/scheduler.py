"""The run loop: schedule tasks in graph order, fork one process per task attempt (up
to ``max_workers`` at once), relay and record their output, and write everything to the
.mfdb through ``Writer`` from this (the runtime) process only."""

from __future__ import annotations

import contextlib
import platform
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mfstore._version import __version__ as MFSTORE_VERSION
from mfstore.artifacts import ForeachFrame, prepare_artifacts
from mfstore.exception import ExecutorLostError, StoreFullError
from mfstore.writer import MetadataEntry, RunRef, TaskRef, Writer

from .decorators import EXECUTOR_DECORATORS, MAX_ATTEMPTS, get_decorator, max_retries_of
from .executors import Executor, TaskDone, TaskLines, make_executor
from .executors.local import SEGFAULT, LocalExecutor
from .local_task import run_local_task
from .task import (
    ArtifactRef,
    InputSource,
    TaskResult,
    TaskSpec,
    crash_result,
)

#: How often buffered log lines of running tasks are written (seconds).
LOG_FLUSH_SECONDS = 2.0


def console(msg: str, *, err: bool = False, ts: float | None = None) -> None:
    """Print a runtime line the way Metaflow does: ``<local time ms> <msg>``."""
    stamp = datetime.fromtimestamp(time.time() if ts is None else ts).strftime(
        "%Y-%m-%d %H:%M:%S.%f"
    )[:-3]
    stream = sys.stderr if err else sys.stdout
    stream.write(f"{stamp} {msg}\n")
    stream.flush()


def system_info() -> dict[str, str]:
    return {
        "runtime": "dev",
        "python_version": platform.python_version(),
        "metaflow_version": f"mfstore-{MFSTORE_VERSION}",
    }


@dataclass
class DoneTask:
    """A finished (or cloned) task the scheduler continues from."""

    step: str
    task_id: str
    refs: dict[str, ArtifactRef]
    stack: list[ForeachFrame]
    transition: tuple[list[str], str | None] | None
    num_splits: int | None = None
    values: list[str] | None = None
    cloned: bool = False
    iteration: list[int] = field(default_factory=list)
    #: a @parallel worker given up without a fallback attempt: counted at the join, not an input
    dropped: bool = False


@dataclass
class Pending:
    """A task attempt waiting for a free worker: its step and inputs, and where it stands."""

    step: str
    #: The finished parents (one, or all of a join's).
    inputs: list[DoneTask]
    stack: list[ForeachFrame]
    #: The task's row once recorded (None until its first attempt starts).
    task: TaskRef | None = None
    attempt: int = 0
    #: Run @catch's fallback instead of the step's code (the process kept dying).
    fallback: bool = False
    iteration: list[int] = field(default_factory=list)


@dataclass
class Running:
    """An attempt handed to an executor (``Scheduler.running`` holds it by the key given to the
    executor's ``submit``), with the log lines read from it so far."""

    pending: Pending
    #: How the console names the attempt's worker (``submit``'s answer, e.g. ``pid 1234``).
    label: str
    lines: dict[str, list[tuple[int, str]]] = field(
        default_factory=lambda: {"stdout": [], "stderr": []}
    )

    @property
    def prefix(self) -> str:
        t = self.pending.task
        assert t is not None
        return f"[{t.run.run_number}/{t.step_name}/{t.task_id} ({self.label})]"


def execution_path(stack: list[ForeachFrame]) -> str:
    return ",".join(f"{f.step}:{f.index}" for f in stack)


def clone_key(step: str, stack: list[ForeachFrame], iteration: list[int]) -> tuple[str, str, str]:
    """Which task of the origin run a resume can reuse: the step, the foreach path and the
    loop iteration (Metaflow's ``finished_id``)."""
    return step, execution_path(stack), ",".join(map(str, iteration))


def next_iteration(graph: Any, parent: DoneTask, child: str) -> list[int]:
    """Metaflow's ``_iteration_stack`` of ``child`` run after ``parent``: a recursive switch
    step counts its iterations from 0; every other step is outside any loop."""
    if not graph[child].is_recursive:
        return []
    if parent.step == child and parent.iteration:
        return [*parent.iteration[:-1], parent.iteration[-1] + 1]
    return [*parent.iteration, 0]


class Runtime:
    """Runs one flow run (``run`` or ``resume``) to its end."""

    def __init__(
        self,
        *,
        flow_cls: type,
        graph: Any,
        graph_info: dict[str, Any],
        writer: Writer,
        run: RunRef,
        db_path: str,
        script_name: str,
        username: str | None,
        identity: str,
        user_tags: list[str],
        namespace: str | None,
        max_workers: int = 16,
        max_num_splits: int = 100,
        origin_run_id: str | None = None,
        clone_index: dict[tuple[str, str, str], Any] | None = None,
        rerun_steps: set[str] | None = None,
        code: tuple[str, str, bytes] | None = None,
    ) -> None:
        self.flow_cls = flow_cls
        self.graph = graph
        self.graph_info = graph_info
        self.writer = writer
        self.run = run
        self.db_path = db_path
        self.script_name = script_name
        self.username = username
        self.identity = identity
        self.user_tags = user_tags
        self.namespace = namespace
        self.max_workers = max(1, int(max_workers))
        self.max_num_splits = int(max_num_splits)
        self.origin_run_id = origin_run_id
        self.clone_index = clone_index or {}
        self.rerun_steps = rerun_steps or set()
        self.code = code
        self.queue: deque[Pending] = deque()
        self.running: dict[int, Running] = {}
        self.executors: dict[tuple[str, ...], Executor] = {}
        self.next_key = 0
        self.join_buckets: dict[tuple[Any, ...], list[tuple[int, DoneTask]]] = {}
        self.failed: list[tuple[str, str]] = []
        self.end_done = False
        self.last_flush = time.monotonic()

    # -- metadata ------------------------------------------------------------------

    def _identity_metadata(self) -> tuple[str, str]:
        """Metaflow's identity metadata: ``user``: NAME, or ``production``: TOKEN."""
        kind, _, value = self.identity.partition(":")
        if kind in ("user", "production") and value:
            return kind, value
        return "user", self.username or ""

    def _attempt_metadata(self, p: Pending, attempt: int) -> list[MetadataEntry]:
        md = [
            MetadataEntry("attempt", str(attempt), attempt=attempt),
            MetadataEntry("origin-run-id", str(self.origin_run_id), attempt=attempt),
        ]
        md += [MetadataEntry(k, v, attempt=attempt) for k, v in system_info().items()]
        md += [
            MetadataEntry(*self._identity_metadata(), attempt=attempt),
            MetadataEntry("script-name", self.script_name, attempt=attempt),
            MetadataEntry("ds-type", "mfstore", attempt=attempt),
            MetadataEntry("ds-root", self.db_path, attempt=attempt),
        ]
        if p.stack and self.graph[p.step].parallel_step and p.stack[-1].index == 0:
            # Metaflow's marker of the control task of a @parallel step (Step.control_tasks)
            md.append(
                MetadataEntry("internal_task_type", "control_task", "internal_task_type", attempt)
            )
        if p.stack:
            md.append(
                MetadataEntry(
                    "foreach-stack", [f"{f.var}={f.value}" for f in p.stack], attempt=attempt
                )
            )
            md.append(
                MetadataEntry("foreach-execution-path", execution_path(p.stack), attempt=attempt)
            )
        return md

    # -- _parameters -----------------------------------------------------------------

    def record_parameters(self, values: dict[str, Any], constants: dict[str, Any]) -> DoneTask:
        info = system_info()
        task = self.writer.add_task(
            self.run,
            "_parameters",
            "0",
            metadata=[
                MetadataEntry("start_step", self.graph.start_step, "graph_structure"),
                MetadataEntry("end_step", self.graph.end_step, "graph_structure"),
            ],
        )
        md = [MetadataEntry(k, v, attempt=0) for k, v in info.items()]
        md += [
            MetadataEntry(*self._identity_metadata(), attempt=0),
            MetadataEntry("script-name", self.script_name, attempt=0),
        ]
        self.writer.begin_attempt(task, 0, metadata=md)
        arts = prepare_artifacts({"name": self.flow_cls.__name__, **constants, **values})
        self.writer.end_attempt(task, 0, artifacts=arts, task_ok=True, success=True)
        refs = {k: ArtifactRef(a.sha, a.type, a.value_json) for k, a in arts.items()}
        return DoneTask("_parameters", "0", refs, [], ([self.graph.start_step], None))

    # -- scheduling ------------------------------------------------------------------

    def schedule_children(self, done: DoneTask) -> None:
        node = self.graph[done.step] if done.step != "_parameters" else None
        if node is not None and node.type == "end":
            self.end_done = True
            return
        if done.transition is None and node is not None and node.parallel_step:
            # a @parallel worker that returned without self.next(): it goes where the step
            # goes (Metaflow follows the control task's transition)
            funcs, foreach = list(node.out_funcs), None
        else:
            assert done.transition is not None
            funcs, foreach = done.transition
        if foreach:
            n = int(done.num_splits or 0)
            values: list[str | None] = list(done.values) if done.values else [None] * n
            for i in range(n):
                frame = ForeachFrame(funcs[0], foreach, n, i, values[i])
                iteration = next_iteration(self.graph, done, funcs[0])
                self.queue.append(
                    Pending(funcs[0], [done], [*done.stack, frame], iteration=iteration)
                )
            return
        for f in funcs:
            child = self.graph[f]
            if child.type == "join" and done.step != "_parameters":
                self._arrive_at_join(f, done)
            else:
                iteration = next_iteration(self.graph, done, f)
                self.queue.append(Pending(f, [done], list(done.stack), iteration=iteration))

    def _arrive_at_join(self, join: str, done: DoneTask) -> None:
        node = self.graph[join]
        split = self.graph[node.split_parents[-1]]
        if split.type == "foreach":
            ctx = tuple((f.step, f.index) for f in done.stack[:-1])
            expected = done.stack[-1].num_splits
            order = done.stack[-1].index
            stack = done.stack[:-1]
        else:
            ctx = tuple((f.step, f.index) for f in done.stack)
            expected = len(split.out_funcs)
            branches = self.graph[done.step].split_branches
            order = (
                split.out_funcs.index(branches[-1])
                if branches and branches[-1] in split.out_funcs
                else 0
            )
            stack = list(done.stack)
        bucket = self.join_buckets.setdefault((join, ctx), [])
        bucket.append((order, done))
        if len(bucket) == expected:
            del self.join_buckets[(join, ctx)]
            inputs = [d for _, d in sorted(bucket, key=lambda x: x[0]) if not d.dropped]
            self.queue.append(Pending(join, inputs, stack))

    def _try_clone(self, p: Pending) -> DoneTask | None:
        if p.step in self.rerun_steps or not all(i.cloned for i in p.inputs):
            return None
        origin = self.clone_index.get(clone_key(p.step, p.stack, p.iteration))
        if origin is None:
            return None
        task = self.writer.clone_task(
            self.run,
            origin["task_pk"],
            metadata=[
                MetadataEntry("origin-run-id", str(self.origin_run_id), attempt=origin["attempt"]),
                MetadataEntry("origin-task-id", origin["task_id"], attempt=origin["attempt"]),
                *[MetadataEntry(k, v, attempt=origin["attempt"]) for k, v in system_info().items()],
                MetadataEntry(*self._identity_metadata(), attempt=origin["attempt"]),
                MetadataEntry("script-name", self.script_name, attempt=origin["attempt"]),
                MetadataEntry("ds-type", "mfstore", attempt=origin["attempt"]),
                MetadataEntry("ds-root", self.db_path, attempt=origin["attempt"]),
            ],
        )
        console(
            "[{}/{}/{}] Cloning results of a previously run task {}/{}/{}".format(
                self.run.run_number,
                p.step,
                task.task_id,
                self.origin_run_id,
                p.step,
                origin["task_id"],
            )
        )
        return DoneTask(
            p.step,
            task.task_id,
            origin["refs"],
            p.stack,
            origin["transition"],
            origin["num_splits"],
            origin["values"],
            cloned=True,
            iteration=list(p.iteration),
        )

    def _clone_queued(self) -> None:
        """Clone every queued task the origin run has, and what those clones make ready,
        before any task runs, as Metaflow does: a resumed run's cloned steps are its oldest."""
        kept: deque[Pending] = deque()
        while self.queue:
            p = self.queue.popleft()
            done = self._try_clone(p)
            if done is None:
                kept.append(p)
            else:
                self.schedule_children(done)
        self.queue = kept

    # -- executors -------------------------------------------------------------------

    def executor_for(self, step: str) -> Executor:
        """Where ``step`` runs: the executor its ``@dask`` (or ``--with dask``) names, else
        the local fork executor."""
        func = self.graph[step].func
        for kind in EXECUTOR_DECORATORS:
            deco = get_decorator(func, kind)
            if deco is not None:
                options = {k: v for k, v in deco.attributes.items() if v is not None}
                ident = (kind, *sorted(f"{k}={v}" for k, v in options.items()))
                found = self.executors.get(ident)
                if found is None:
                    found = make_executor(kind, options, self.executor_context())
                    self.executors[ident] = found
                return found
        local = self.executors.get(("local",))
        if local is None:
            local = LocalExecutor(
                lambda spec: run_local_task(self.flow_cls, self.graph, self.graph_info, spec)
            )
            self.executors[("local",)] = local
        return local

    def executor_context(self) -> dict[str, Any]:
        """What a remote executor needs besides the TaskSpec: the flow's code package and
        a way to read input blobs (in this process; workers never open the file)."""
        return {
            "flow_name": self.flow_cls.__name__,
            "graph_info": self.graph_info,
            "code": self.code,
            "read_blob": self.read_blob,
            "run": f"{self.run.flow_id}/{self.run.run_number}",
        }

    def read_blob(self, sha: str) -> bytes:
        from mfstore.blobs import get_blob

        return get_blob(self.writer.store, sha)

    # -- the loop --------------------------------------------------------------------

    def execute(self, start_from: DoneTask) -> bool:
        """Run everything after ``start_from``; True if the end step succeeded."""
        old_term = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self.executor_for(self.graph.start_step)  # the local executor's signal set-up
            self.schedule_children(start_from)
            if self.clone_index:
                self._clone_queued()
            while (self.queue or self.running) and not self.failed:
                while self.queue and len(self.running) < self.max_workers and not self.failed:
                    p = self.queue.popleft()
                    done = self._try_clone(p) if self.clone_index else None
                    if done is not None:
                        self.schedule_children(done)
                    else:
                        self.launch(p)
                # Wait only for running tasks: when the last task was a clone (a resume
                # that only clones) nothing would wake the wait before its timeout.
                if self.running:
                    self.poll()
            if self.failed:
                self.terminate_running()
            return self.end_done and not self.failed
        except KeyboardInterrupt:
            self.terminate_running(interrupted=True)
            raise
        except ExecutorLostError as exc:
            console(str(exc), err=True)
            self.terminate_running(lost=True)
            raise
        except StoreFullError:
            # The disk filled while recording a task: stop the other tasks (their
            # results would find no room either); the caller says what was kept.
            self.terminate_running()
            raise
        finally:
            signal.signal(signal.SIGTERM, old_term)
            for ex in self.executors.values():
                with contextlib.suppress(Exception):
                    ex.close()
            self.executors.clear()

    def launch(self, p: Pending) -> None:
        if p.task is None:
            p.task = self.writer.add_task(self.run, p.step)
        node = self.graph[p.step]
        max_retries = max_retries_of(node.func)
        self.writer.begin_attempt(p.task, p.attempt, metadata=self._attempt_metadata(p, p.attempt))
        spec = TaskSpec(
            flow_name=self.run.flow_id,
            run_id=self.run.run_number,
            step_name=p.step,
            task_id=p.task.task_id,
            attempt=p.attempt,
            max_retries=max_retries,
            inputs=[InputSource(i.step, i.task_id, i.refs) for i in p.inputs],
            foreach_stack=list(p.stack),
            db_path=self.db_path,
            result_path="",
            origin_run_id=self.origin_run_id,
            namespace=self.namespace,
            identity=self.identity,
            username=self.username,
            user_tags=list(self.user_tags),
            is_production=self.identity.startswith("production:"),
            fallback=p.fallback,
            iteration_stack=list(p.iteration),
        )
        executor = self.executor_for(p.step)
        self.next_key += 1
        label = executor.submit(self.next_key, spec)
        r = self.running[self.next_key] = Running(p, label)
        console("{} Task is starting{}.".format(r.prefix, " (retry)" if p.attempt else ""))

    def poll(self) -> None:
        busy = [ex for ex in self.executors.values() if ex.in_flight]
        timeout = 0.5 if len(busy) <= 1 else 0.05
        for ex in busy or list(self.executors.values())[:1]:
            for event in ex.poll(timeout):
                self._handle(event)
        now = time.monotonic()
        if now - self.last_flush > LOG_FLUSH_SECONDS:
            self.last_flush = now
            for r in self.running.values():
                self._flush_logs(r)

    def _handle(self, event: TaskLines | TaskDone) -> None:
        r = self.running.get(event.key)
        if r is None:
            return
        r.label = event.label or r.label
        if isinstance(event, TaskLines):
            self._emit(r, event.stream, event.lines)
        else:
            del self.running[event.key]
            self.finish(r, event.result, event.why)

    def _emit(self, r: Running, stream: str, lines: list[tuple[int, str]]) -> None:
        if not lines:
            return
        r.lines[stream].extend(lines)
        stamp = datetime.fromtimestamp(lines[0][0] / 1e6).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        sys.stdout.write("".join(f"{stamp} {r.prefix} {line}\n" for _, line in lines))
        sys.stdout.flush()

    def _flush_logs(self, r: Running) -> None:
        t = r.pending.task
        assert t is not None
        for stream, lines in r.lines.items():
            if lines:
                self.writer.add_log_lines(t, r.pending.attempt, stream, lines)
                r.lines[stream] = []

    def finish(self, r: Running, result: TaskResult | None, why: str) -> None:
        p = r.pending
        t = p.task
        assert t is not None
        crashed = result is None
        if result is None:
            # Metaflow's system messages, also kept at the end of the task's stderr log
            # ("Task failed with a segmentation fault." alone, as Metaflow prints it)
            said = [f"{why}."] if why == SEGFAULT else [f"{why}.", "Task failed."]
            now = time.time()
            for msg in said:
                console(f"{r.prefix} {msg}", ts=now)
                r.lines["stderr"].append((int(now * 1e6), msg))
            result = crash_result(why + " (os._exit, a crash or out of memory?)")
        self._flush_logs(r)
        self.writer.end_attempt(
            t, p.attempt, artifacts=result.artifacts, task_ok=result.task_ok, success=result.success
        )
        for name, ref in (getattr(result, "files", None) or {}).items():  # cards
            self.writer.set_task_file(t, p.attempt, name, ref)
        splits = result.foreach_num_splits or 0
        if (
            result.task_ok
            and result.transition
            and result.transition[1]
            and splits > self.max_num_splits
        ):
            console(
                f"{r.prefix} Foreach in step *{p.step}* yielded {splits} child steps which is "
                f"more than the current maximum of {self.max_num_splits} children. You can "
                "raise the maximum with the --max-num-splits option."
            )
            self.failed.append((p.step, t.task_id))
            return
        if result.task_ok:
            if result.transition and result.transition[1]:
                console(f"{r.prefix} Foreach yields {result.foreach_num_splits} child steps.")
            console(f"{r.prefix} Task finished successfully.")
            self.schedule_children(
                DoneTask(
                    p.step,
                    t.task_id,
                    result.refs,
                    p.stack,
                    result.transition,
                    result.foreach_num_splits,
                    result.foreach_values,
                    iteration=list(p.iteration),
                )
            )
            return
        node = self.graph[p.step]
        max_retries = max_retries_of(node.func)
        has_catch = get_decorator(node.func, "catch") is not None
        if p.attempt < max_retries or (crashed and has_catch and p.attempt < MAX_ATTEMPTS - 1):
            fallback = p.attempt >= max_retries
            if fallback and node.parallel_step and p.stack and p.stack[-1].index != 0:
                # Metaflow: @catch's fallback attempt of a @parallel step is the control
                # task's alone (it starts no workers); a worker keeps its failed attempts
                # and the join gets the control task without it
                given_up = DoneTask(p.step, t.task_id, {}, p.stack, (list(node.out_funcs), None))
                given_up.dropped = True
                self.schedule_children(given_up)
                return
            self.queue.appendleft(
                Pending(p.step, p.inputs, p.stack, t, p.attempt + 1, fallback, list(p.iteration))
            )
            return
        self.failed.append((p.step, t.task_id))

    def terminate_running(self, interrupted: bool = False, lost: bool = False) -> None:
        if interrupted:
            console("Workflow interrupted.")
        elif not lost:
            console("Workflow failed.")
        console(f"Terminating {len(self.running)} active tasks...")
        for ex in list(self.executors.values()):
            try:
                events = ex.cancel_all()
            except Exception:  # a lost cluster: nothing left to cancel or read
                events = []
            for event in events:
                r = self.running.get(event.key)
                if r is not None and isinstance(event, TaskLines):
                    self._emit(r, event.stream, event.lines)
        for r in list(self.running.values()):
            with contextlib.suppress(Exception):
                self._flush_logs(r)
        self.running.clear()
        console("Flushing logs...")


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt()

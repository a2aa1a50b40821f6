"""The local executor: one forked process per task attempt on this machine.

The child's stdout/stderr go to pipes the runtime reads without blocking; the child
writes its ``TaskResult`` to a file the runtime loads when the process is reaped.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..task import TaskSpec, die_with_parent, load_result
from .base import Executor, TaskDone, TaskLines

__all__ = ["LineSplitter", "LocalExecutor", "exit_reason", "run_in_child"]


class LineSplitter:
    """Turns pipe reads into complete, timestamped lines (per stream)."""

    def __init__(self) -> None:
        self.partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def feed(self, stream: str, data: bytes) -> list[tuple[int, str]]:
        """Lines completed by ``data``; empty ``data`` (end of stream) flushes the tail."""
        if not data:
            tail, self.partial[stream] = self.partial[stream], b""
            raw = [tail] if tail else []
        else:
            *raw, self.partial[stream] = (self.partial[stream] + data).split(b"\n")
        ts = int(time.time() * 1_000_000)
        return [(ts, r.decode("utf-8", errors="replace").rstrip("\r")) for r in raw]


def run_in_child(
    w_out: int, w_err: int, close: Iterable[int], parent_pid: int, body: Callable[[], int]
) -> None:
    """In a freshly forked child: own process group, stdout/stderr to the pipes, run
    ``body`` and ``os._exit`` with its code (never returns)."""
    code = 1
    try:
        os.setpgid(0, 0)
        die_with_parent(parent_pid)
        signal.set_wakeup_fd(-1)
        for fd in close:
            with contextlib.suppress(OSError):
                os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(w_out, 1)
        os.dup2(w_err, 2)
        os.close(w_out)
        os.close(w_err)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        for fd, name in ((1, "stdout"), (2, "stderr")):
            setattr(sys, name, os.fdopen(fd, "w", 1, "utf-8", "replace", closefd=False))
        code = body()
    except BaseException:
        with contextlib.suppress(BaseException):
            traceback.print_exc()
            sys.stderr.flush()
    finally:
        os._exit(code)


def fork_child(body: Callable[[], int], close: Iterable[int] = ()) -> tuple[int, int, int]:
    """Fork a child that runs ``body`` with its stdout and stderr on two new pipes and
    ``close`` closed (see ``run_in_child``); return ``(pid, stdout fd, stderr fd)``, the
    pipes' read ends, in the parent."""
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    parent_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        run_in_child(w_out, w_err, [*close, r_out, r_err], parent_pid, body)
    os.close(w_out)
    os.close(w_err)
    return pid, r_out, r_err


#: What Metaflow says of a task process killed by SIGSEGV.
SEGFAULT = "Task failed with a segmentation fault"


def exit_reason(status: int) -> str:
    """Why a task process that wrote no result ended (from its wait status)."""
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSEGV:
        return SEGFAULT
    if os.WIFSIGNALED(status):
        return f"Task process was killed by signal {os.WTERMSIG(status)}"
    return f"Task process exited with code {os.WEXITSTATUS(status)} without reporting a result"


@dataclass
class _Child:
    key: int
    pid: int
    spec: TaskSpec
    fds: dict[int, str]
    split: LineSplitter = field(default_factory=LineSplitter)
    exit_status: int | None = None
    reaped_at: float | None = None


class LocalExecutor(Executor):
    """Forks one process per attempt; ``run_task`` runs in the child."""

    name = "local"

    def __init__(self, run_task: Callable[[TaskSpec], int]) -> None:
        self.run_task = run_task
        self.selector = selectors.DefaultSelector()
        self.tmpdir = tempfile.mkdtemp(prefix="mfstore-run-")
        self.children: dict[int, _Child] = {}
        self.fd_owner: dict[int, _Child] = {}
        # Wake the select() as soon as a task process exits (SIGCHLD through a pipe).
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.old_chld = signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        self.old_wakeup = signal.set_wakeup_fd(self.wake_w)
        self.selector.register(self.wake_r, selectors.EVENT_READ)

    @property
    def in_flight(self) -> int:
        return len(self.children)

    def submit(self, key: int, spec: TaskSpec) -> str:
        spec.result_path = os.path.join(self.tmpdir, f"{key}.result")
        pid, r_out, r_err = fork_child(
            lambda: self.run_task(spec), close=[*self.fd_owner, self.wake_r, self.wake_w]
        )
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        child = _Child(key, pid, spec, {r_out: "stdout", r_err: "stderr"})
        self.children[pid] = child
        for fd in (r_out, r_err):
            os.set_blocking(fd, False)
            self.fd_owner[fd] = child
            self.selector.register(fd, selectors.EVENT_READ)
        return f"pid {pid}"

    def poll(self, timeout: float) -> list[TaskLines | TaskDone]:
        events: list[TaskLines | TaskDone] = []
        for key, _ in self.selector.select(timeout=timeout):
            if key.fd == self.wake_r:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self.wake_r, 4096):
                        pass
            else:
                self._read(key.fd, events)
        self._reap()
        now = time.monotonic()
        for child in list(self.children.values()):
            if child.exit_status is None:
                continue
            if child.fds and now - (child.reaped_at or now) < 2.0:
                for fd in list(child.fds):
                    self._read(fd, events)
                if child.fds:
                    continue
            for fd in list(child.fds):
                self._close_fd(fd)
            del self.children[child.pid]
            result = load_result(child.spec.result_path)
            why = "" if result is not None else exit_reason(child.exit_status)
            events.append(TaskDone(child.key, result, why))
        return events

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            child = self.children.get(pid)
            if child is not None:
                child.exit_status = status
                child.reaped_at = time.monotonic()

    def _read(self, fd: int, events: list[TaskLines | TaskDone]) -> None:
        child = self.fd_owner.get(fd)
        if child is None:
            return
        stream = child.fds[fd]
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        lines = child.split.feed(stream, data)
        if lines:
            events.append(TaskLines(child.key, stream, lines))
        if not data:
            self._close_fd(fd)

    def _close_fd(self, fd: int) -> None:
        child = self.fd_owner.pop(fd, None)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(fd)
        with contextlib.suppress(OSError):
            os.close(fd)
        if child is not None:
            child.fds.pop(fd, None)

    def cancel_all(self) -> list[TaskLines | TaskDone]:
        events: list[TaskLines | TaskDone] = []
        for pid in list(self.children):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while self.children and time.monotonic() < deadline:
            for pid in list(self.children):
                with contextlib.suppress(ChildProcessError):
                    done, _ = os.waitpid(pid, os.WNOHANG)
                    if done == 0:
                        continue
                child = self.children.pop(pid)
                for fd in list(child.fds):
                    self._read(fd, events)
                    self._close_fd(fd)
            time.sleep(0.01)
        return events

    def close(self) -> None:
        signal.set_wakeup_fd(self.old_wakeup)
        signal.signal(signal.SIGCHLD, self.old_chld)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.wake_r)
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.selector.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

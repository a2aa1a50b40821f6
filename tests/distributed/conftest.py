"""A real Dask cluster for the tests: ``dask scheduler`` and ``dask worker`` processes
(dask's own command line) on 127.0.0.1, in a directory other than the flow's, without
the .mfdb's location in their environment. Every wait is bounded; every process is
stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import mfstore
from tests.flowfiles import MFSTORE_ROOT, child_env, install


def wait_for(what: str, check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Cluster:
    """A scheduler and ``n`` single-threaded worker processes (no nanny)."""

    def __init__(self, home: Path, n_workers: int = 2) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.env = child_env(PYTHONPATH=str(MFSTORE_ROOT))
        self.scheduler_file = home / "scheduler.json"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.scheduler = self._start(
            "scheduler",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(self.scheduler_file),
        )
        wait_for("the scheduler file", self.scheduler_file.exists, 300)
        wait_for("the scheduler address", lambda: "address" in self._info(), 60)
        self.address = self._info()["address"]
        self.workers = [
            self._start(
                f"worker{i}",
                "worker",
                self.address,
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--host",
                "127.0.0.1",
                "--death-timeout",
                "30",
                "--local-directory",
                str(home / f"w{i}"),
            )
            for i in range(n_workers)
        ]
        wait_for(
            f"{n_workers} workers to register",
            lambda: self.log("scheduler").count("Register worker") >= n_workers,
            300,  # safety nets only: each is an interpreter importing distributed
        )

    def _info(self) -> dict[str, object]:
        try:
            return json.loads(self.scheduler_file.read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return {}

    def _start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.home / f"{name}.log", "wb")  # noqa: SIM115 (the process writes it)
        proc = subprocess.Popen(
            [sys.executable, "-m", "dask", *args],
            cwd=self.home,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.home / f"{name}.log").read_text(errors="replace")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            proc.wait(timeout=30)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path / "cluster")
    try:
        yield c
    finally:
        c.stop()


class Runner:
    """Runs ``python dask_flow.py <args>`` in its own directory with its own .mfdb."""

    def __init__(self, workdir: Path, name: str = "dask_flow.py") -> None:
        self.workdir = workdir
        self.db = workdir / "test.mfdb"
        self.script = install(name, workdir)

    def env(self) -> dict[str, str]:
        return child_env(
            METAFLOW_USER="alice", MFSTORE_DB=str(self.db), PYTHONPATH=str(MFSTORE_ROOT)
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, self.script.name, *args],
            cwd=self.workdir,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def run(self, *args: str, check: bool = True, timeout: float = 150) -> tuple[int, str]:
        proc = self.popen(*args)
        try:
            out, _ = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} failed ({proc.returncode}):\n{out[-4000:]}")
        return proc.returncode, out


@pytest.fixture
def flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runner]:
    work = tmp_path / "flowdir"
    work.mkdir()
    runner = Runner(work)
    monkeypatch.setenv("MFSTORE_DB", str(runner.db))
    from mfstore import provider

    provider.reset()
    mfstore.namespace(None)
    yield runner
    provider.reset()

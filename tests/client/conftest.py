"""Fixtures: histories written through ``Writer`` into a tmp .mfdb, selected with ``metadata()``."""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from mfstore import provider
from mfstore.artifacts import prepare_artifacts
from mfstore.store import Store
from mfstore.writer import MetadataEntry, RunRef, Writer

ns_mod = importlib.import_module("mfstore.client.namespace")

GRAPH = {
    "file": "flow.py",
    "start_step": "start",
    "end_step": "end",
    "steps": {
        "start": {"name": "start", "type": "start", "next": ["end"]},
        "end": {"name": "end", "type": "end", "next": []},
    },
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in (
        "MFSTORE_DB",
        "MFSTORE_NAMESPACE",
        "METAFLOW_PRODUCTION_TOKEN",
        "SUDO_USER",
        "USERNAME",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("METAFLOW_USER", "alice")
    ns_mod._reset()
    yield
    ns_mod._reset()
    provider.default_metadata()
    provider.reset()


class History:
    """Builds runs through the Writer; timestamps increase by 1 s per object."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.store = Store(path, create=True)
        self.writer = Writer(self.store)
        self._clock = itertools.count(1_700_000_000_000, 1000)

    def tick(self) -> int:
        return next(self._clock)

    def run(
        self,
        flow: str = "HelloFlow",
        *,
        user: str | None = "alice",
        tags: Sequence[str] = (),
        system_tags: Sequence[str] | None = None,
        status: str = "successful",
        ts: int | None = None,
        run_number: str | None = None,
        values: dict[str, Any] | None = None,
        parameters: dict[str, Any] | None = None,
        end_step: str = "end",
        origin_run_number: str | None = None,
        code_sha: str | None = None,
    ) -> RunRef:
        """A linear run start -> end_step; ``status`` successful / failed / running;
        ``values`` join each step's artifacts, ``parameters`` the _parameters task's."""
        w = self.writer
        if system_tags is None:
            system_tags = [f"user:{user}"] if user else []
        t0 = self.tick() if ts is None else ts
        run = w.begin_run(
            flow,
            user_name=user,
            user_tags=tags,
            system_tags=[*system_tags, "runtime:dev"],
            run_number=run_number,
            ts_epoch=t0,
            end_step=end_step,
            origin_run_number=origin_run_number,
            code_sha=code_sha,
        )
        graph = dict(GRAPH, end_step=end_step)
        graph["steps"] = {
            "start": {"name": "start", "type": "start", "next": [end_step]},
            end_step: {"name": end_step, "type": "end", "next": []},
        }
        params = w.add_task(
            run,
            "_parameters",
            "0",
            ts_epoch=t0,
            metadata=[
                MetadataEntry("start_step", "start", "graph_structure", None, t0),
                MetadataEntry("end_step", end_step, "graph_structure", None, t0),
            ],
        )
        w.begin_attempt(params, 0, ts_epoch=t0)
        w.end_attempt(
            params,
            0,
            artifacts=prepare_artifacts({"name": flow, **(parameters or {})}),
            task_ok=True,
            success=True,
            ts_epoch=t0,
        )
        steps = ["start", end_step]
        for i, step in enumerate(steps):
            ts_step = t0 + 10 * (i + 1)
            task = w.add_task(run, step, ts_epoch=ts_step)
            w.begin_attempt(
                task,
                0,
                ts_epoch=ts_step,
                metadata=[MetadataEntry("attempt", "0", "attempt", 0, ts_step)],
            )
            w.add_log_lines(task, 0, "stdout", [(ts_step * 1000 + 1, f"hello from {step}")])
            last = step == end_step
            if last and status == "running":
                break
            failed = last and status == "failed"
            art = {
                "name": flow,
                "_graph_info": graph,
                "_task_ok": not failed,
                "_success": not failed,
                "step_no": i,
            }
            if values:
                art.update(values)
            w.end_attempt(
                task,
                0,
                artifacts=prepare_artifacts(art),
                task_ok=not failed,
                success=not failed,
                ts_epoch=ts_step + 5,
            )
        if status != "running":
            w.end_run(run, successful=status == "successful", ts_epoch=t0 + 100, checkpoint=False)
        return run


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    h = History(tmp_path / "test.mfdb")
    provider.metadata(str(h.path))
    yield h
    h.store.close()

"""Metaflow's other step decorators: ``@timeout``, ``@environment``, ``@secrets`` and
``@resources`` work locally; ``@kubernetes``, ``@batch``, ``@conda``, ``@pypi`` (which need a
cloud or a package environment) import fine and stop the run before it starts, saying why.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any, ClassVar

from mfstore.env import METAFLOW_DEFAULT_SECRETS_BACKEND_TYPE
from mfstore.exception import MetaflowException, TimeoutException, UnsupportedFeature

from .decorators import (
    RefusedAtRun,
    StepDecorator,
    make_step_decorator,
    register_step_decorator,
)


@register_step_decorator
class TimeoutDecorator(StepDecorator):
    """``@timeout(seconds=, minutes=, hours=)``: fail the task (``TimeoutException``) when
    the step runs longer; ``@retry`` and ``@catch`` see it like any other exception."""

    name = "timeout"
    defaults: ClassVar[dict[str, Any]] = {"seconds": 0, "minutes": 0, "hours": 0}

    @property
    def total_seconds(self) -> int:
        """The limit in seconds (Metaflow's ``get_run_time_limit_for_task``)."""
        a = self.attributes
        return int(a["hours"] or 0) * 3600 + int(a["minutes"] or 0) * 60 + int(a["seconds"] or 0)

    def task_pre_step(self, step_name: str, task_id: str) -> None:
        """Arm an alarm that raises ``TimeoutException`` inside the step."""
        limit = self.total_seconds
        if limit <= 0:
            return
        a = self.attributes

        def expired(signum: int, frame: Any) -> None:
            raise TimeoutException(
                "Step {} (task-id {}) timed out after {} hours, {} minutes, {} seconds".format(
                    step_name, task_id, a["hours"], a["minutes"], a["seconds"]
                )
            )

        signal.signal(signal.SIGALRM, expired)
        signal.alarm(limit)

    def task_post_step(self) -> None:
        """Disarm the alarm."""
        signal.alarm(0)


@register_step_decorator
class EnvironmentDecorator(StepDecorator):
    """``@environment(vars={"K": "v"})``: set environment variables for the step."""

    name = "environment"
    defaults: ClassVar[dict[str, Any]] = {"vars": {}}

    def task_pre_step(self, step_name: str, task_id: str) -> None:
        """Export ``vars`` into the task's environment."""
        for key, value in (self.attributes["vars"] or {}).items():
            os.environ[str(key)] = str(value)


@register_step_decorator
class SecretsDecorator(StepDecorator):
    """``@secrets(sources=[...])``: put secrets into the step's environment.

    Local sources: ``{"type": "inline", "options": {"env_vars": {...}}}`` and
    ``{"type": "file", "options": {"path": "secrets.json"}}`` (a JSON object or ``KEY=VALUE``
    lines). Sources kept by a secrets manager (a plain name, or another ``type``) need that
    service, which a local run has not: the task fails saying so.
    """

    name = "secrets"
    defaults: ClassVar[dict[str, Any]] = {"sources": [], "role": None, "allow_override": False}

    def task_pre_step(self, step_name: str, task_id: str) -> None:
        """Read every source and export its variables."""
        for source in self.attributes["sources"] or []:
            for key, value in _read_secret_source(source).items():
                if key in os.environ and not self.attributes["allow_override"]:
                    raise MetaflowException(
                        f"Secret *{key}* would overwrite an existing environment variable"
                    )
                os.environ[key] = value


def _read_secret_source(source: Any) -> dict[str, str]:
    if isinstance(source, str):
        source = {"id": source, "type": os.environ.get(METAFLOW_DEFAULT_SECRETS_BACKEND_TYPE)}
    if not isinstance(source, dict):
        raise MetaflowException(f"Invalid secrets source {source!r}: give a name or a dict")
    kind = source.get("type")
    options = source.get("options") or {}
    if kind == "inline":
        return {str(k): str(v) for k, v in (options.get("env_vars") or {}).items()}
    if kind == "file":
        path = Path(str(options.get("path", "")))
        text = path.read_text()
        try:
            data = json.loads(text)
        except ValueError:
            data = dict(
                line.split("=", 1)
                for line in text.splitlines()
                if "=" in line and not line.lstrip().startswith("#")
            )
        return {str(k).strip(): str(v).strip() for k, v in data.items()}
    if kind is None:
        raise MetaflowException(
            f"Default secrets backend type is not set. Set {METAFLOW_DEFAULT_SECRETS_BACKEND_TYPE} "
            "or give the source as a dict with a *type* (mfstore runs 'inline' and 'file' sources)."
        )
    raise UnsupportedFeature(
        f"Secrets backend *{kind}* needs its secrets service, which a local mfstore run has not: "
        "use an 'inline' or 'file' source."
    )


@register_step_decorator
class ParallelDecorator(StepDecorator):
    """``@parallel``: the step runs as ``num_parallel`` tasks (``self.next(self.step,
    num_parallel=N)`` before it); ``current.parallel`` tells each task its ``node_index``.
    Locally all N tasks run as processes on this machine."""

    name = "parallel"
    defaults: ClassVar[dict[str, Any]] = {}


@register_step_decorator
class ResourcesDecorator(StepDecorator):
    """``@resources(cpu=, memory=, gpu=, ...)``: requests for remote compute; a local run
    records them and runs the step as is (as Metaflow does)."""

    name = "resources"
    defaults: ClassVar[dict[str, Any]] = {
        "cpu": 1,
        "gpu": None,
        "disk": None,
        "memory": 4096,
        "shared_memory": None,
    }


class RemoteDecorator(RefusedAtRun):
    """A decorator that sends the step to a cloud or a package environment: accepted at
    import, refused when the run starts."""

    needs = "a remote compute backend"
    refusal = (
        "Step *{step}* of *{flow}* is decorated with @{name}, which needs {needs}. mfstore "
        "runs every step locally: remove @{name} to run it here, or run the flow with Metaflow."
    )


def _remote(name: str, needs: str) -> type[RemoteDecorator]:
    cls = type(
        f"{name.title().replace('_', '')}Decorator",
        (RemoteDecorator,),
        {"name": name, "needs": needs, "defaults": {}, "__doc__": f"``@{name}``: needs {needs}."},
    )
    register_step_decorator(cls)
    return cls


timeout = make_step_decorator(TimeoutDecorator)
environment = make_step_decorator(EnvironmentDecorator)
secrets = make_step_decorator(SecretsDecorator)
resources = make_step_decorator(ResourcesDecorator)
parallel = make_step_decorator(ParallelDecorator)
kubernetes = make_step_decorator(_remote("kubernetes", "a Kubernetes cluster"))
batch = make_step_decorator(_remote("batch", "AWS Batch"))
conda = make_step_decorator(_remote("conda", "a Conda environment built by Metaflow"))
pypi = make_step_decorator(_remote("pypi", "a PyPI environment built by Metaflow"))

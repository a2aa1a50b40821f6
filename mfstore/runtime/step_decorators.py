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
    """Fail the task when the step runs longer than a time limit.

    The limit is ``hours``, ``minutes`` and ``seconds`` added up. The task process arms an
    alarm (``SIGALRM``) right before the step function runs and disarms it when it
    returns; on expiry a ``TimeoutException`` is raised inside the step, so ``@retry``
    retries it and ``@catch`` catches it like any other exception. A limit of 0 (all
    three 0, the default) sets no limit. The limit is per attempt, as in Metaflow; the
    alarm interrupts Python code (a long call into C code is interrupted when it returns).

    Parameters
    ----------
    seconds : int, default 0
        Seconds of the limit.
    minutes : int, default 0
        Minutes of the limit.
    hours : int, default 0
        Hours of the limit.

    Example
    -------
    ::

        @timeout(minutes=5)
        @step
        def poll(self):
            ...
    """

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
    """Set environment variables for the step.

    The task process exports ``vars`` into ``os.environ`` right before the step function
    runs (so the step, and every process it starts, sees them); keys and values are
    turned into strings. Other steps' tasks are not affected.

    Parameters
    ----------
    vars : dict of str to str, default {}
        The variables to set, name to value.

    Example
    -------
    ::

        @environment(vars={"OMP_NUM_THREADS": "1"})
        @step
        def train(self):
            ...
    """

    name = "environment"
    defaults: ClassVar[dict[str, Any]] = {"vars": {}}

    def task_pre_step(self, step_name: str, task_id: str) -> None:
        """Export ``vars`` into the task's environment."""
        for key, value in (self.attributes["vars"] or {}).items():
            os.environ[str(key)] = str(value)


@register_step_decorator
class SecretsDecorator(StepDecorator):
    """Put secrets into the step's environment.

    Right before the step function runs, the task process reads every source and exports
    its variables into ``os.environ``. mfstore reads two kinds of source locally:

    - ``{"type": "inline", "options": {"env_vars": {"KEY": "value"}}}``: the variables
      given in the flow itself;
    - ``{"type": "file", "options": {"path": "secrets.json"}}``: a file holding a JSON
      object or ``KEY=VALUE`` lines (``#`` comments allowed).

    A source kept by a secrets manager (a plain name, resolved with
    ``METAFLOW_DEFAULT_SECRETS_BACKEND_TYPE``, or another ``type`` such as
    ``aws-secrets-manager``) needs that service, which a local mfstore run does not talk
    to: the task fails saying so.

    Parameters
    ----------
    sources : list of str or dict, default []
        The secret sources, read in order.
    role : str, optional, default None
        Metaflow's role for fetching from a secrets manager; accepted and unused (no
        source mfstore reads needs one).
    allow_override : bool, default False
        Whether a secret may replace an environment variable that is already set (by the
        environment, ``@environment`` or an earlier source); when False that is an error.

    Example
    -------
    ::

        @secrets(sources=[{"type": "file", "options": {"path": "db.env"}}])
        @step
        def load(self):
            password = os.environ["DB_PASSWORD"]
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
    """Run the step as a gang of ``num_parallel`` tasks.

    The step before names the size: ``self.next(self.train, num_parallel=4)``; the step
    after ``train`` is a join receiving the tasks' outputs (``inputs``). Each task gets
    ``current.parallel`` (``num_nodes``, ``node_index``, ``main_ip``,
    ``control_task_id``); node 0 is the control task. Metaflow starts the tasks on
    several machines of a cluster (with ``@kubernetes`` or ``@batch``); mfstore runs all
    of them as processes on this machine, ``main_ip`` being ``127.0.0.1``.

    Parameters
    ----------
    (none)
        ``@parallel`` takes no attributes.

    Example
    -------
    After ``self.next(self.train, num_parallel=2)``::

        @parallel
        @step
        def train(self):
            self.rank = current.parallel.node_index
            self.next(self.join)
    """

    name = "parallel"
    defaults: ClassVar[dict[str, Any]] = {}


@register_step_decorator
class ResourcesDecorator(StepDecorator):
    """Say what the step needs (CPU, memory, GPU, disk) whatever it runs on.

    Metaflow gives these to the compute layer that runs the step (``@kubernetes``,
    ``@batch``); a local run records them and runs the step as is, without reserving or
    limiting anything (as Metaflow's local runs do). In mfstore every run is local, so
    ``@resources`` is recorded with the step (in the run's ``_graph_info`` artifact, which
    the Client reads) and has no other effect.

    Parameters
    ----------
    cpu : int, default 1
        Number of CPUs.
    gpu : int, optional, default None
        Number of GPUs.
    disk : int, optional, default None
        Disk size in MB (Metaflow uses it on Kubernetes only).
    memory : int, default 4096
        Memory size in MB.
    shared_memory : int, optional, default None
        Size in MiB of the ``/dev/shm`` volume (Docker's ``--shm-size``).

    Example
    -------
    ::

        @resources(memory=16000, cpu=4)
        @step
        def train(self):
            ...
    """

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

    #: The public function's docstring (``{name}``, ``{needs}`` filled in by ``_remote``).
    doc_template = """Metaflow's ``@{name}``, which needs {needs}: refused by mfstore.

    mfstore runs every step locally: a flow using ``@{name}`` imports fine (a Metaflow
    flow file loads, ``python flow.py show`` works), but ``run`` and ``resume`` stop
    before the run starts, naming the step and what it needs. Remove ``@{name}`` to run
    the flow with mfstore, or run it with Metaflow.

    Parameters
    ----------
    **attributes : any
        Whatever Metaflow's ``@{name}`` takes; accepted without checking, never used.
    """

    needs = "a remote compute backend"
    refusal = (
        "Step *{step}* of *{flow}* is decorated with @{name}, which needs {needs}. mfstore "
        "runs every step locally: remove @{name} to run it here, or run the flow with Metaflow."
    )


def _remote(name: str, needs: str) -> type[RemoteDecorator]:
    cls = type(
        f"{name.title().replace('_', '')}Decorator",
        (RemoteDecorator,),
        {
            "name": name,
            "needs": needs,
            "defaults": {},
            "__doc__": RemoteDecorator.doc_template.format(name=name, needs=needs),
        },
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

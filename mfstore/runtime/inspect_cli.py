"""``python flow.py dump`` and ``python flow.py logs``: a run's artifacts and logs, read
through the Client API, with Metaflow's options and output."""

from __future__ import annotations

import pickle
from typing import Any

import click

from mfstore.exception import CommandException

from .cli_common import State
from .console import echo


def _tasks(state: State, input_path: str) -> list[Any]:
    """The tasks of ``RUN/STEP`` or the task ``RUN/STEP/TASK`` of this flow."""
    from mfstore.client import Step, Task

    parts = input_path.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise CommandException(
            "input_path should either be run_id/step_name or run_id/step_name/task_id"
        )
    state.store()  # the file must exist; the Client API then reads it (MFSTORE_DB)
    pathspec = "/".join([state.flow_name, *parts])
    if len(parts) == 3:
        return [Task(pathspec, _namespace_check=False)]
    return list(Step(pathspec, _namespace_check=False))


def _artifacts(task: Any, private: bool, include: set[str]) -> dict[str, Any]:
    out = {}
    for art in task.artifacts:
        name = art.id
        if include and name not in include:
            continue
        if name.startswith("_") and not private:
            continue
        out[name] = art
    return out


@click.command(
    help="Get data artifacts of a task or all tasks in a step. The format for input-path is "
    "either <run_id>/<step_name> or <run_id>/<step_name>/<task_id>.\n\n"
    "Example: python flow.py dump 12/start --include alpha"
)
@click.argument("input-path")
@click.option(
    "--private/--no-private",
    default=False,
    show_default=True,
    help="Show also private attributes.",
)
@click.option(
    "--max-value-size",
    default=1000,
    show_default=True,
    type=int,
    help="Show only values that are smaller than this number. Set to 0 to see only keys.",
)
@click.option(
    "--include",
    type=str,
    default="",
    help="Include only artifacts in the given comma-separated list.",
)
@click.option("--file", type=str, default=None, help="Serialize artifacts in the given file.")
@click.pass_obj
def dump(
    state: State,
    input_path: str,
    private: bool,
    max_value_size: int,
    include: str,
    file: str | None,
) -> None:
    """Print (or pickle into ``--file``) the artifacts of the tasks at ``input_path``."""
    wanted = {t for t in include.split(",") if t}
    output: dict[str, dict[str, Any]] = {}
    for task in _tasks(state, input_path):
        run_id, step, task_id = task.pathspec.split("/")[1:]
        state.echo(f"Dumping output of run_id=*{run_id}* step=*{step}* task_id=*{task_id}*")
        arts = _artifacts(task, private, wanted)
        if file is not None:
            output[f"{run_id}/{step}/{task_id}"] = {k: a.data for k, a in arts.items()}
            continue
        lines = []
        for name, art in sorted(arts.items()):
            size = art.size
            data = art.data
            kind = f"{type(data).__module__}.{type(data).__name__}"
            value = "<artifact too large>" if size == 0 or size > max_value_size else data
            lines.append(f"*{name}* [size: {size} type: {kind}] = {value}")
        echo("\n".join(lines), err=False)
    if file is not None:
        with open(file, "wb") as fh:
            pickle.dump(output, fh, protocol=pickle.HIGHEST_PROTOCOL)
        state.echo(f"Artifacts written to *{file}*")


@click.command(
    help="Show stdout/stderr produced by a task or all tasks in a step. The format for "
    "input-path is either <run_id>/<step_name> or <run_id>/<step_name>/<task_id>.\n\n"
    "Example: python flow.py logs 12/start --stderr"
)
@click.argument("input-path")
@click.option("--stdout/--no-stdout", default=False, show_default=True, help="Show stdout.")
@click.option("--stderr/--no-stderr", default=False, show_default=True, help="Show stderr.")
@click.option(
    "--both/--no-both", default=True, show_default=True, help="Show both stdout and stderr."
)
@click.option(
    "--timestamps/--no-timestamps", default=False, show_default=True, help="Show timestamps."
)
@click.option(
    "--attempt",
    default=None,
    type=int,
    help="Attempt number of a task to show, defaults to the latest attempt.",
)
@click.pass_obj
def logs(
    state: State,
    input_path: str,
    stdout: bool,
    stderr: bool,
    both: bool,
    timestamps: bool,
    attempt: int | None,
) -> None:
    """Print the log lines of the tasks at ``input_path``."""
    from mfstore.client import Task

    streams = [s for s, on in (("stdout", stdout), ("stderr", stderr)) if on]
    if not streams and both:
        streams = ["stdout", "stderr"]
    tasks = _tasks(state, input_path)
    if not tasks:
        raise CommandException(
            "No Tasks found at the given path -- either none exist or none have started yet"
        )
    for task in tasks:
        if attempt is not None:
            task = Task(task.pathspec, attempt=attempt, _namespace_check=False)
        run_id, step, task_id = task.pathspec.split("/")[1:]
        state.echo(f"Dumping logs of run_id=*{run_id}* step=*{step}* task_id=*{task_id}*")
        for stream in streams:
            state.echo(stream)
            for ts, line in task.loglines(stream):
                if timestamps and ts is not None:
                    click.echo(ts.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " ", nl=False)
                click.echo(line)

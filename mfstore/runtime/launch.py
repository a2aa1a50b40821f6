"""Starting a run: ``run`` and ``resume`` record the run, its parameters and code package,
then hand the graph to the scheduler (``Runtime``). ``resume`` first indexes the origin run's
successful tasks so unchanged steps are cloned instead of re-run."""

from __future__ import annotations

import json
import os
import sys
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from mfstore import query
from mfstore.env import MFSTORE_NAMESPACE
from mfstore.exception import (
    CommandException,
    ExecutorLostError,
    StoreError,
    StoreFullError,
    disk_full,
)
from mfstore.tags import validate_tags

from . import deployed
from .cli_common import (
    State,
    code_package,
    get_constants,
    identity_and_user,
    script_path,
)
from .config import ConfigValue, resolve_configs
from .console import echo
from .current import update_env
from .decorators import attach_decospecs
from .executors import check_executors
from .flow_decorators import flow_runtime_init, project_info
from .graph import FlowGraph
from .parameters import Parameter, get_parameters


def _system_tags(identity: str) -> list[str]:
    from .scheduler import system_info

    info = system_info()
    return [
        identity,
        "runtime:{}".format(info["runtime"]),
        "python_version:{}".format(info["python_version"]),
        "metaflow_version:{}".format(info["metaflow_version"]),
    ]


def _graph_info(state: State) -> tuple[dict[str, Any], list[tuple[str, Parameter]], dict[str, Any]]:
    params = get_parameters(state.flow_cls)
    constants = get_constants(state.flow_cls)
    info = state.graph.graph_info(
        [{"name": var, "type": type(p).__name__} for var, p in params],
        [{"name": var, "type": type(val).__name__} for var, val in constants.items()],
    )
    return info, params, constants


def _preimport_client() -> None:
    # Import the Client API once here, so forked task processes do not each import it.
    with suppress(Exception):
        import mfstore.client  # noqa: F401


@dataclass(frozen=True)
class RunOptions:
    """The command-line options ``run`` and ``resume`` share."""

    tags: tuple[str, ...]
    user_namespace: str | None
    """``--namespace``: None when not given ("" is the global namespace)."""
    max_workers: int
    max_num_splits: int
    run_id_file: str | None
    decospecs: tuple[str, ...]
    """``--with`` decorator specs for every step."""


def start_run(
    state: State,
    opts: RunOptions,
    *,
    param_values: dict[str, Any] | None,
    origin: Any = None,
    resume_step: str | None = None,
) -> None:
    """Record a new run (``run``, or ``resume`` when ``origin`` is given) and execute it."""
    from mfstore.writer import Writer

    from .scheduler import Runtime, console

    state.decospecs += opts.decospecs
    namespace, namespace_given = opts.user_namespace, opts.user_namespace is not None
    user_tags = validate_tags(opts.tags)
    state.graph.check()
    attach_decospecs(state.graph, state.decospecs)
    check_executors(state.graph)
    identity, username = identity_and_user()
    system_tags = _system_tags(identity)
    project = project_info(state.flow_cls, state.branch, state.production, username)
    if project is not None:
        state.echo(f"Project: *{project['project_name']}*, Branch: *{project['branch_name']}*")
        system_tags += [
            f"project:{project['project_name']}",
            f"project_branch:{project['branch_name']}",
        ]
        update_env(**project)  # forked task processes inherit it
    flow_runtime_init(state.flow_cls)
    if origin is None:
        configs = (
            state.resolved_configs
            if state.resolved_configs is not None
            else resolve_configs(state.flow_cls, state.configs, state.config_values)
        )
        # Stored as plain dicts, as Metaflow stores them (the Client reads a dict); a
        # task gives its steps a ConfigValue again (``Config.load_parameter``).
        param_values = {
            **(param_values or {}),
            **{k: v.to_dict() if isinstance(v, ConfigValue) else v for k, v in configs.items()},
        }
    for node in state.graph:
        for deco in node.decorators:
            deco.runtime_init(state.flow_name, node.name)
    info, _params, constants = _graph_info(state)
    flow_name = state.flow_name
    state.echo("Validating your flow...\n    The graph looks good!")
    store = state.store(create=True)
    writer = Writer(store)
    script = script_path()
    code_sha = None
    code = None
    if script.is_file():
        package = code_package(script)
        code_sha = writer.put_code_package(
            package,
            script_name=script.name,
            info={"script": script.name, "flow_name": flow_name},
        )
        code = (code_sha, script.name, package)  # executors ship it to remote workers
    clone_index = None
    rerun: set[str] = set()
    origin_id = None
    if origin is not None:
        origin_id = origin.run_number
        clone_index, param_refs = _clone_index(store, origin)
        if resume_step:
            rerun = _descendants(state.graph, resume_step)
    run = writer.begin_run(
        flow_name,
        user_name=username,
        user_tags=user_tags,
        system_tags=system_tags,
        end_step=state.graph.end_step or "end",
        origin_run_number=origin_id,
        code_sha=code_sha,
    )
    trigger_events = deployed.current().events  # a run of a deployment: what started it
    if trigger_events:
        writer.add_trigger_events(run, trigger_events)
    if opts.run_id_file:
        Path(opts.run_id_file).write_text(run.run_number)
    _preimport_client()
    runtime = Runtime(
        flow_cls=state.flow_cls,
        graph=state.graph,
        graph_info=info,
        writer=writer,
        run=run,
        db_path=str(store.path),
        script_name=script.name,
        username=username,
        identity=identity,
        user_tags=user_tags,
        namespace=(namespace or None) if namespace_given else identity,
        max_workers=opts.max_workers,
        max_num_splits=opts.max_num_splits,
        origin_run_id=origin_id,
        clone_index=clone_index,
        rerun_steps=rerun,
        code=code,
    )
    if namespace_given:
        os.environ[MFSTORE_NAMESPACE] = namespace or ""
    console(f"Workflow starting (run-id {run.run_number}):")
    try:
        if origin is None:
            start = runtime.record_parameters(param_values or {}, constants)
        else:
            start = _clone_parameters(
                writer,
                run,
                origin,
                param_refs,
                state.graph.start_step or "start",
                state.graph.end_step or "end",
            )
        ok = runtime.execute(start)
    except KeyboardInterrupt:
        store.checkpoint()
        echo(f"Workflow interrupted: run {flow_name}/{run.run_number} was left unfinished.")
        sys.exit(1)
    except ExecutorLostError:
        store.checkpoint()
        echo(
            f"Run {flow_name}/{run.run_number} was left unfinished: "
            f"`python {script.name} resume --origin-run-id {run.run_number}` completes it."
        )
        sys.exit(1)
    except StoreFullError:
        _stopped_by_full_disk(store, writer, run, f"python {script.name}")
    try:
        folded = writer.end_run(run, successful=ok)
    except StoreFullError:
        _stopped_by_full_disk(store, writer, run, f"python {script.name}")
    unfolded_note = (
        # Never silent (issue 12): `cp` of the file alone would miss this run for now.
        f"Run {flow_name}/{run.run_number} is still in {store.path}'s write-ahead log (another "
        "program held the file open): copy it with "
        f"`mfstore snapshot {store.path} COPY.mfdb`, not `cp`."
    )
    if ok:
        console("Done!")
        if identity.startswith("production:"):
            from mfstore.production import on_run_finished

            on_run_finished(store, run, state.graph.end_step or "end", state.echo)
        if not folded:
            state.echo(unfolded_note)
        return
    if not folded:
        state.echo(unfolded_note)
    msg = ["    Step failure:"]
    for step, task_id in runtime.failed:
        msg.append(f"    Step {step} (task-id {task_id}) failed.")
    if not runtime.failed:
        msg.append("    The end step was never reached.")
    echo("\n".join(msg))
    sys.exit(1)


def _stopped_by_full_disk(store: Any, writer: Any, run: Any, command: str) -> NoReturn:
    """The run's one-line ending when the disk filled: what was kept (every task that
    finished before; the run's end if it was recorded), how the run is marked, and how
    to go on. Reading needs no room, so the file says what was committed."""
    pathspec = f"{run.flow_id}/{run.run_number}"
    row = store.one(*query.compile_run_lookup(run.flow_id, run.run_number))
    status = row[query.RUN_COLUMNS.index("status")] if row else None
    if status in ("successful", "failed"):
        kept = (
            f"run {pathspec} finished and is recorded as {status}; it is kept in "
            f"{store.path.name}-wal beside the file until there is room (copy the two together)"
        )
        todo = "free some space: the next write to the file folds it in"
    else:
        marked = "is left marked running"
        try:  # a small update usually still fits where the failed write was
            writer.end_run(run, successful=False, checkpoint=False)
            marked = "is marked failed"
        except StoreError:
            pass
        kept = (
            f"run {pathspec} stopped; the tasks that finished before are kept and the run {marked}"
        )
        todo = f"free some space, then `{command} resume --origin-run-id {run.run_number}`"
    echo(str(disk_full(store.path, kept, todo)))
    sys.exit(1)


def _descendants(graph: FlowGraph, step: str) -> set[str]:
    seen = {step}
    todo = [step]
    while todo:
        for n in graph[todo.pop()].out_funcs:
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return seen


def _task_refs(store: Any, task_pk: int, attempt: int) -> dict[str, Any]:
    from .task import ArtifactRef

    return {
        name: ArtifactRef(sha, typ, vj)
        for name, sha, typ, vj in store.query(*query.compile_artifact_refs(task_pk, attempt))
    }


def _clone_index(
    store: Any, origin: Any
) -> tuple[dict[tuple[str, str, str], Any], tuple[int, dict[str, Any]]]:
    """Successful tasks of the origin run, by (step, foreach execution path, loop iteration)."""
    from mfstore.artifacts import loads, loads_internal
    from mfstore.blobs import get_blob

    def value(refs: dict[str, Any], name: str, internal: bool = True) -> Any:
        ref = refs.get(name)
        if ref is None:
            return None
        if (
            ref.value_json is not None
            and ref.type.startswith("builtins.")
            and ref.type != "builtins.tuple"
        ):
            return json.loads(ref.value_json)
        raw = get_blob(store, ref.sha)
        # The runtime's own values never run code from the file (docs/security.md);
        # foreach values are the user's data, loaded like any artifact a step reads.
        return loads_internal(raw, what=f"artifact {name}") if internal else loads(raw)

    index: dict[tuple[str, str, str], Any] = {}
    params: tuple[int, dict[str, Any]] | None = None
    rows = store.query(*query.compile_done_tasks(origin.run_pk))
    for task_pk, step, task_id, attempt, success in rows:
        refs = _task_refs(store, task_pk, attempt)
        if step == "_parameters":
            params = (task_pk, refs)
            continue
        if not success:
            continue
        path = store.scalar(*query.compile_task_metadata_value(task_pk, "foreach-execution-path"))
        transition = value(refs, "_transition")
        iteration = ",".join(map(str, value(refs, "_iteration_stack") or []))
        index[(step, path or "", iteration)] = {
            "task_pk": task_pk,
            "task_id": task_id,
            "attempt": attempt,
            "refs": refs,
            "transition": (list(transition[0]), transition[1]) if transition else None,
            "num_splits": value(refs, "_foreach_num_splits"),
            "values": value(refs, "_foreach_values", internal=False),
        }
    if params is None:
        raise _nothing_to_resume(origin)
    return index, params


def _nothing_to_resume(origin: Any) -> CommandException:
    return CommandException(
        f"Run {origin.pathspec} stopped before its parameters were recorded, so nothing of it can be resumed: "
        "start a new run with `run`"
    )


def _clone_parameters(
    writer: Any,
    run: Any,
    origin: Any,
    param_refs: tuple[int, dict[str, Any]],
    start_step: str,
    end_step: str,
) -> Any:
    from mfstore.writer import MetadataEntry

    from .scheduler import DoneTask

    task_pk, refs = param_refs
    writer.clone_task(
        run,
        task_pk,
        metadata=[
            MetadataEntry("start_step", start_step, "graph_structure"),
            MetadataEntry("end_step", end_step, "graph_structure"),
            MetadataEntry("origin-run-id", origin.run_number, attempt=0),
        ],
    )
    return DoneTask("_parameters", "0", refs, [], ([start_step], None), cloned=True)


def origin_configs(state: State, origin: Any) -> dict[str, Any]:
    """``{attribute: value}`` of the flow's Configs as the origin run recorded them (its
    ``_parameters`` task): ``resume`` runs with the origin run's configs, as in Metaflow
    (which stops with a KeyError when the origin run has no value for one)."""
    from mfstore.artifacts import loads
    from mfstore.blobs import get_blob

    store = state.store(create=False)
    row = store.one(
        *query.compile_task_lookup(
            origin.flow_id, origin.run_number, "_parameters", "0", pk_only=True
        )
    )
    if row is None:
        raise _nothing_to_resume(origin)
    refs = _task_refs(store, int(row[0]), 0)
    out = {}
    for var, p in get_parameters(state.flow_cls):
        if not p.IS_CONFIG_PARAMETER:
            continue
        ref = refs.get(var)
        if ref is None:
            raise CommandException(
                f"Run {origin.pathspec} has no value for Config '{p.name}' (the flow declared "
                "it after that run), and resume runs with the configs of the run it resumes: "
                "start a new run with `run`"
            )
        if (
            ref.value_json is not None
            and ref.type.startswith("builtins.")
            and ref.type != "builtins.tuple"
        ):
            value = json.loads(ref.value_json)
        else:
            value = loads(get_blob(store, ref.sha))
        out[var] = p.load_parameter(value)
    return out


def find_origin(state: State, origin_run_id: str | None) -> Any:
    """The run ``resume`` continues: ``--origin-run-id`` or this user's latest run."""
    from mfstore.writer import RunRef

    store = state.store(create=False)
    flow_name = state.flow_cls.__name__
    if origin_run_id:
        row = store.one(
            *query.compile_run_by_key(flow_name, origin_run_id, query.RunFields.PK_AND_NUMBER)
        )
        if row is None:
            raise CommandException(f"Run {flow_name}/{origin_run_id} does not exist")
    else:
        identity, _ = identity_and_user()
        row = store.one(*query.compile_latest_original_run(flow_name, identity))
        if row is None:
            raise CommandException("A previous run id was not found. Specify --origin-run-id.")
    return RunRef(int(row[0]), flow_name, row[1])

"""The flow command line (Metaflow's, on click): ``python flow.py [--mfdb PATH] run|resume|tag|show``."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import sys
import tarfile
from pathlib import Path
from typing import Any

import click

from mfstore.exception import (
    CommandException,
    ExecutorLostError,
    MetaflowException,
    MetaflowTaggingError,
)
from mfstore.tags import validate_tags

from .graph import FlowGraph
from .parameters import Parameter

_RESERVED_OPTIONS = {
    "tag",
    "namespace",
    "max_workers",
    "run_id_file",
    "origin_run_id",
    "mfdb",
    "help",
}


def get_parameters(flow_cls: type) -> list[tuple[str, Parameter]]:
    """``(attribute name, Parameter)`` of a flow class, sorted by name."""
    out = []
    for var in dir(flow_cls):
        if var.startswith("__"):
            continue
        val = getattr(flow_cls, var, None)
        if isinstance(val, Parameter):
            out.append((var, val))
    return out


def get_constants(flow_cls: type) -> dict[str, Any]:
    """Class-level plain values, persisted like Metaflow's flow constants."""
    import types

    seen = {var for var, _ in get_parameters(flow_cls)}
    out = {}
    for var in dir(flow_cls):
        if (
            var[0] == "_"
            or var in seen
            or var in ("name", "index", "input", "cmd", "foreach_stack", "script_name")
        ):
            continue
        val = getattr(flow_cls, var, None)
        if isinstance(
            val, (types.MethodType, types.FunctionType, property, type, staticmethod, classmethod)
        ):
            continue
        if callable(val):
            continue
        out[var] = val
    return out


def _fail(msg: str, code: int = 1) -> None:
    click.echo(msg, err=True)
    sys.exit(code)


def _code_package(script: Path) -> bytes:
    """Deterministic tar.gz of the flow file (so identical code dedups)."""
    data = script.read_bytes()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo(script.name)
        info.size = len(data)
        info.mtime = 0
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _create_file(path: Path) -> None:
    """Create a new .mfdb atomically: readers never see a half-initialized file."""
    from mfstore.store import Store

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    store = Store(tmp, create=True)
    store.checkpoint()  # fold the schema into the file itself
    store.close()
    try:
        os.link(tmp, path)  # no-clobber: another process may have created it meanwhile
    except FileExistsError:
        pass
    finally:
        for leftover in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)


class State:
    def __init__(self, flow_cls: type, graph: FlowGraph, mfdb: str | None, quiet: bool) -> None:
        self.flow_cls = flow_cls
        self.graph = graph
        self.mfdb = mfdb
        self.quiet = quiet
        self._store: Any = None

    def echo(self, msg: str, err: bool = True) -> None:
        if not self.quiet:
            click.echo(msg, err=err)

    def path(self) -> Path:
        from mfstore import provider

        if self.mfdb:
            return Path(self.mfdb).expanduser().absolute()
        return provider.default_write_path()

    def store(self, create: bool = False) -> Any:
        if self._store is None:
            from mfstore.store import Store

            path = self.path()
            if not path.exists():
                if not create:
                    raise CommandException(f"No mfstore file found ({path}): run the flow first")
                where = "current directory " if path.parent == Path.cwd().absolute() else ""
                self.echo(f"Creating local datastore in {where}({path})")
            if not path.exists():
                _create_file(path)
            self._store = Store(path, create=create)
            # Task processes and the Client API inside them use the same file.
            os.environ["MFSTORE_DB"] = str(path)
        return self._store


def _identity_and_user() -> tuple[str, str | None]:
    from mfstore.identity import get_username, resolve_identity

    return resolve_identity(), get_username()


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
        [{"name": var, "type": "Parameter"} for var, _ in params],
        [{"name": var, "type": type(val).__name__} for var, val in constants.items()],
    )
    return info, params, constants


def _preimport_client() -> None:
    # Import the Client API once here, so forked task processes do not each import it.
    try:
        import mfstore.client  # noqa: F401
    except Exception:
        pass


def _start_run(
    state: State,
    *,
    tags: tuple[str, ...],
    namespace: str | None,
    namespace_given: bool,
    max_workers: int,
    run_id_file: str | None,
    param_values: dict[str, Any] | None,
    origin: Any = None,
    resume_step: str | None = None,
    max_num_splits: int = 100,
    with_decos: tuple[str, ...] = (),
) -> None:
    from mfstore.writer import Writer

    from .decorators import attach_everywhere
    from .executors import check_executors
    from .scheduler import Runtime, console

    try:
        user_tags = validate_tags(tags)
    except MetaflowTaggingError as exc:
        _fail(f"Tagging error: {exc}")
    try:
        state.graph.check()
    except MetaflowException as exc:
        _fail(f"Validity checker found an issue: {exc}")
    try:
        for spec in with_decos:
            attach_everywhere(state.graph, spec)
        check_executors(state.graph)
    except MetaflowException as exc:
        _fail(f"Error: {exc}", 2)
    identity, username = _identity_and_user()
    info, _params, constants = _graph_info(state)
    flow_name = state.flow_cls.__name__
    state.echo("mfstore {} executing {} for {}".format("0.1.0", flow_name, identity))
    state.echo("Validating your flow...\n    The graph looks good!")
    store = state.store(create=True)
    writer = Writer(store)
    script = Path(sys.argv[0]).absolute()
    code_sha = None
    code = None
    if script.is_file():
        package = _code_package(script)
        code_sha = writer.put_code_package(
            package,
            script_name=script.name,
            info={"script": script.name, "flow_name": flow_name},
        )
        code = (code_sha, script.name, package)
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
        system_tags=_system_tags(identity),
        end_step=state.graph.end_step or "end",
        origin_run_number=origin_id,
        code_sha=code_sha,
    )
    trigger_events = os.environ.pop("MFSTORE_TRIGGER_EVENTS", None)  # set by mfstore.production
    if trigger_events:
        writer.add_trigger_events(run, json.loads(trigger_events))
    if run_id_file:
        Path(run_id_file).write_text(run.run_number)
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
        max_workers=max_workers,
        max_num_splits=max_num_splits,
        origin_run_id=origin_id,
        clone_index=clone_index,
        rerun_steps=rerun,
        code=code,
    )
    if namespace_given:
        os.environ["MFSTORE_NAMESPACE"] = namespace or ""
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
        _fail(f"Workflow interrupted: run {flow_name}/{run.run_number} was left unfinished.", 1)
    except ExecutorLostError:
        store.checkpoint()
        _fail(
            f"Run {flow_name}/{run.run_number} was left unfinished: "
            f"`python {script.name} resume --origin-run-id {run.run_number}` completes it.",
            1,
        )
    writer.end_run(run, successful=ok)
    if ok:
        console("Done!")
        if identity.startswith("production:"):
            from mfstore.production import on_run_finished

            on_run_finished(
                store, flow_name, run.run_number, state.graph.end_step or "end", state.echo
            )
        return
    msg = ["    Step failure:"]
    for step, task_id in runtime.failed:
        msg.append(f"    Step {step} (task-id {task_id}) failed.")
    if not runtime.failed:
        msg.append("    The end step was never reached.")
    _fail("\n".join(msg), 1)


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
    from mfstore import query

    from .task import ArtifactRef

    return {
        name: ArtifactRef(sha, typ, vj)
        for name, sha, typ, vj in store.query(*query.compile_artifact_refs(task_pk, attempt))
    }


def _clone_index(
    store: Any, origin: Any
) -> tuple[dict[tuple[str, str], Any], tuple[int, dict[str, Any]]]:
    """Successful tasks of the origin run, by (step, foreach execution path)."""
    from mfstore import query
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

    index: dict[tuple[str, str], Any] = {}
    params: tuple[int, dict[str, Any]] | None = None
    rows = store.query(
        "SELECT t.task_pk, t.step_name, t.task_id, a.attempt, a.success FROM tasks t "
        "JOIN attempts a ON a.task_pk = t.task_pk AND a.attempt = ("
        "  SELECT max(attempt) FROM attempts WHERE task_pk = t.task_pk AND ended_at IS NOT NULL) "
        "WHERE t.run_pk = ?",
        (origin.run_pk,),
    )
    for task_pk, step, task_id, attempt, success in rows:
        refs = _task_refs(store, task_pk, attempt)
        if step == "_parameters":
            params = (task_pk, refs)
            continue
        if not success:
            continue
        path = store.scalar(*query.compile_task_metadata_value(task_pk, "foreach-execution-path"))
        transition = value(refs, "_transition")
        index[(step, path or "")] = {
            "task_pk": task_pk,
            "task_id": task_id,
            "attempt": attempt,
            "refs": refs,
            "transition": (list(transition[0]), transition[1]) if transition else None,
            "num_splits": value(refs, "_foreach_num_splits"),
            "values": value(refs, "_foreach_values", internal=False),
        }
    if params is None:
        raise CommandException(
            f"Run {origin.pathspec} stopped before its parameters were recorded, so nothing of it can be resumed: "
            "start a new run with `run`"
        )
    return index, params


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


def _find_origin(state: State, origin_run_id: str | None) -> Any:
    from mfstore.writer import RunRef

    store = state.store(create=False)
    flow_name = state.flow_cls.__name__
    if origin_run_id:
        row = store.one(
            "SELECT run_pk, run_number FROM runs WHERE flow_id = ? AND run_number = ?",
            (flow_name, origin_run_id),
        )
        if row is None:
            raise CommandException(f"Run {flow_name}/{origin_run_id} does not exist")
    else:
        identity, _ = _identity_and_user()
        row = store.one(
            "SELECT r.run_pk, r.run_number FROM runs r WHERE r.flow_id = ? AND r.origin_run_number IS NULL "
            "AND EXISTS (SELECT 1 FROM tagset_tags g WHERE g.tagset_id = r.tagset_id AND g.tag = ?) "
            "ORDER BY r.ts_epoch DESC, r.run_number DESC LIMIT 1",
            (flow_name, identity),
        )
        if row is None:
            raise CommandException("A previous run id was not found. Specify --origin-run-id.")
    return RunRef(int(row[0]), flow_name, row[1])


# -- tags -------------------------------------------------------------------------


def _run_tags(store: Any, run_pk: int) -> tuple[set[str], set[str]]:
    from mfstore.writer import Writer

    tagset = store.scalar("SELECT tagset_id FROM runs WHERE run_pk = ?", (run_pk,))
    return Writer(store).read_tagset(int(tagset))


def _get_run_for_tagging(state: State, run_id: str | None, user_namespace: str | None) -> Any:
    """The run to tag, with Metaflow's messages; index lookups only (no scan of the flow's runs)."""
    from mfstore import query
    from mfstore.writer import RunRef

    store = state.store(create=False)
    flow_name = state.flow_cls.__name__
    if store.scalar("SELECT 1 FROM runs WHERE flow_id = ? LIMIT 1", (flow_name,)) is None:
        raise CommandException(
            f"No run found for *{flow_name}*. Please run the flow before tagging."
        )
    wanted = [] if user_namespace is None else [user_namespace]
    latest = (
        store.one(*query.compile_runs(flow_name, wanted, latest=True))
        if query.storable(*wanted)
        else None
    )
    if latest is None:
        raise CommandException(
            f"No run found for *{flow_name}* in namespace *{user_namespace}*. You can switch the namespace using --namespace"
        )
    if run_id is None:
        raise CommandException(
            f"Please specify a run-id using --run-id.\n*{flow_name}*'s latest run in namespace *{user_namespace}* has id *{latest[2]}*."
        )
    if "/" in run_id:
        raise CommandException(f"Run-id *{run_id}* is not a valid run-id")
    path_spec = f"{flow_name}/{run_id}"
    row = (
        store.one(*query.compile_run_lookup(flow_name, run_id)) if query.storable(run_id) else None
    )
    if row is None:
        raise CommandException(f"No run *{path_spec}* found for flow *{flow_name}*")
    if (
        user_namespace is not None
        and store.one(*query.compile_tagset_has(row[4], user_namespace)) is None
    ):
        raise CommandException(
            f"Run *{path_spec}* for flow *{flow_name}* does not belong to namespace *{user_namespace}*"
        )
    return RunRef(int(row[0]), flow_name, run_id)


def _print_run_tags(state: State, run: Any) -> None:
    user, system = _run_tags(state.store(), run.run_pk)
    _print_groups(state, {run.pathspec: system}, {run.pathspec: user | system}, by_tag=False)


def _print_groups(
    state: State, system_by: dict[str, Any], all_by: dict[str, Any], by_tag: bool
) -> None:
    if state.quiet:
        for group in sorted(set(all_by) | set(system_by)):
            if by_tag:
                if group in all_by:
                    click.echo("user:{} ; {}".format(group, ",".join(all_by[group])))
                if group in system_by:
                    click.echo("system:{} ; {}".format(group, ",".join(system_by[group])))
            else:
                click.echo("{} ; {}".format(group, ",".join(sorted(all_by.get(group, ())))))
        return
    lines = [
        "",
        "System tags and *tags*; only *tags* can be modified",
        "--------------------------------------------------------",
        "",
    ]
    for group in sorted(set(all_by) | set(system_by)):
        if by_tag:
            if group in all_by:
                lines.append(f"For tag *{group}*")
                lines += [f"    {p}" for p in all_by[group]]
            if group in system_by:
                lines.append(f"For tag {group}")
                lines += [f"    {p}" for p in system_by[group]]
        else:
            system = system_by.get(group, set())
            tags = sorted(all_by.get(group, set()))
            if len(all_by) > 1:
                lines.append(f"For run {group}")
            lines += ["    " + (t if t in system else f"*{t}*") for t in tags]
        lines.append("")
    click.echo("\n".join(lines))


def build_cli(flow_cls: type) -> click.Group:
    graph = FlowGraph(flow_cls)

    @click.group(
        help=f"Run and inspect {flow_cls.__name__} (mfstore: everything goes into one .mfdb file).",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    @click.option(
        "--mfdb",
        default=None,
        envvar="MFSTORE_DB",
        help="The .mfdb file to use (default: metaflow.mfdb found in this directory or a parent, else created here).",
    )
    @click.option("--quiet/--not-quiet", default=False, help="Suppress unnecessary messages.")
    @click.pass_context
    def cli(ctx: click.Context, mfdb: str | None, quiet: bool) -> None:
        ctx.obj = State(flow_cls, graph, mfdb, quiet)

    def param_options(f: Any) -> Any:
        for _var, param in reversed(get_parameters(flow_cls)):
            opt_name = param.name
            dest = param.name.replace("-", "_").lower()
            if dest in _RESERVED_OPTIONS:
                raise MetaflowException(
                    f"Parameter name '{param.name}' is a reserved word. Please use a different name."
                )
            f = click.option(
                "--" + opt_name, dest, default=None, type=str, help=param.help, show_default=False
            )(f)
        return f

    @cli.command(help="Run the workflow locally.")
    @click.option(
        "--tag",
        "tags",
        multiple=True,
        help="Annotate this run with the given tag. You can specify this option multiple times to attach multiple tags.",
    )
    @click.option(
        "--namespace",
        "user_namespace",
        default=None,
        help="Change namespace from the default (your username) to the specified tag. Note that this option does not alter tags assigned to the objects produced by this run, just what existing objects are visible in the client API. You can enable the global namespace with an empty string. --namespace=",
    )
    @click.option(
        "--max-workers",
        default=16,
        show_default=True,
        type=int,
        help="Maximum number of parallel processes.",
    )
    @click.option(
        "--max-num-splits",
        default=100,
        show_default=True,
        type=int,
        help="Maximum number of splits allowed in a foreach.",
    )
    @click.option(
        "--run-id-file", default=None, help="Write the ID of this run to the file specified."
    )
    @click.option(
        "--with",
        "with_decos",
        multiple=True,
        help="Add a decorator to all steps: --with dask, --with dask:scheduler=tcp://host:8786, --with retry:times=2.",
    )
    @param_options
    @click.pass_obj
    def run(
        state: State,
        /,
        tags: tuple[str, ...],
        user_namespace: str | None,
        max_workers: int,
        max_num_splits: int,
        run_id_file: str | None,
        with_decos: tuple[str, ...],
        **kwargs: Any,
    ) -> None:
        values = {}
        for var, param in get_parameters(flow_cls):
            dest = param.name.replace("-", "_").lower()
            raw = kwargs.get(dest)
            if raw is None:
                if param.required and param.default is None:
                    _fail(f"Error: Missing option '--{param.name}'.", 2)
                value = param.resolve_default()
                if isinstance(value, str) and param.type is not str:
                    raw = value
                else:
                    values[var] = value
                    continue
            try:
                values[var] = param.convert(raw)
            except MetaflowException as exc:
                _fail(f"Error: {exc}", 2)
        _start_run(
            state,
            tags=tags,
            namespace=user_namespace,
            namespace_given=user_namespace is not None,
            max_workers=max_workers,
            run_id_file=run_id_file,
            param_values=values,
            max_num_splits=max_num_splits,
            with_decos=with_decos,
        )

    @cli.command(help="Resume execution of a previous run of this flow.")
    @click.argument("step-to-rerun", required=False)
    @click.option(
        "--origin-run-id",
        default=None,
        help="Which run to resume (default: your latest run of this flow).",
    )
    @click.option("--tag", "tags", multiple=True, help="Annotate this run with the given tag.")
    @click.option(
        "--namespace",
        "user_namespace",
        default=None,
        help="Namespace the Client API uses inside the steps.",
    )
    @click.option(
        "--max-workers",
        default=16,
        show_default=True,
        type=int,
        help="Maximum number of parallel processes.",
    )
    @click.option(
        "--run-id-file", default=None, help="Write the ID of this run to the file specified."
    )
    @click.option(
        "--with",
        "with_decos",
        multiple=True,
        help="Add a decorator to all steps: --with dask, --with dask:scheduler=tcp://host:8786, --with retry:times=2.",
    )
    @click.pass_obj
    def resume(
        state: State,
        step_to_rerun: str | None,
        origin_run_id: str | None,
        tags: tuple[str, ...],
        user_namespace: str | None,
        max_workers: int,
        run_id_file: str | None,
        with_decos: tuple[str, ...],
    ) -> None:
        if step_to_rerun is not None and step_to_rerun not in graph:
            _fail(
                f"Error: invalid value for STEP_TO_RERUN: step *{step_to_rerun}* is not a step of {flow_cls.__name__}",
                2,
            )
        try:
            origin = _find_origin(state, origin_run_id)
        except MetaflowException as exc:
            _fail(str(exc))
        _start_run(
            state,
            tags=tags,
            namespace=user_namespace,
            namespace_given=user_namespace is not None,
            max_workers=max_workers,
            run_id_file=run_id_file,
            param_values=None,
            origin=origin,
            resume_step=step_to_rerun,
            with_decos=with_decos,
        )

    @cli.command(help="Show the structure of the flow.")
    @click.option("--json", "as_json", is_flag=True, help="Print the steps as one JSON document.")
    @click.pass_obj
    def show(state: State, as_json: bool) -> None:
        if as_json:
            steps = [
                {
                    "name": name,
                    "type": graph.nodes[name].type,
                    "doc": graph.nodes[name].doc,
                    "next": list(graph.nodes[name].out_funcs),
                }
                for name in graph.sorted_nodes
            ]
            _echo_json({"flow": graph.name, "doc": graph.doc, "steps": steps})
            return
        click.echo("\n%s\n" % (graph.doc or ""))
        click.echo(str(graph))

    @cli.command(help="Check that the flow is valid (this is done automatically by run).")
    @click.pass_obj
    def check(state: State) -> None:
        try:
            graph.check()
        except MetaflowException as exc:
            _fail(f"Validity checker found an issue: {exc}")
        click.echo("The graph looks good!")

    @cli.group(help="Commands related to tagging.")
    def tag() -> None:
        pass

    def tag_opts(f: Any) -> Any:
        f = click.option(
            "--namespace",
            "user_namespace",
            default=None,
            type=str,
            help="Change namespace from the default (your username) to the one specified.",
        )(f)
        f = click.option(
            "--run-id", default=None, type=str, help="Run ID of the specific run to tag. [required]"
        )(f)
        return f

    def mutate(
        state: State, run_id: str | None, user_namespace: str | None, remove: Any, add: Any
    ) -> None:
        from mfstore.writer import Writer

        identity, _username = (
            _identity_and_user() if user_namespace is None else (user_namespace, None)
        )
        run = _get_run_for_tagging(state, run_id, identity)
        from mfstore.identity import get_username

        Writer(state.store()).replace_user_tags(
            run.run_pk, list(remove), list(add), user_name=get_username()
        )
        state.echo("Operation successful. New tags:", err=False)
        _print_run_tags(state, run)

    @tag.command("add", help="Add tags to a run.")
    @tag_opts
    @click.argument("tags", required=True, type=str, nargs=-1)
    @click.pass_obj
    def tag_add(
        state: State, run_id: str | None, user_namespace: str | None, tags: tuple[str, ...]
    ) -> None:
        _guard(lambda: mutate(state, run_id, user_namespace, [], tags))

    @tag.command("remove", help="Remove tags from a run.")
    @tag_opts
    @click.argument("tags", required=True, type=str, nargs=-1)
    @click.pass_obj
    def tag_remove(
        state: State, run_id: str | None, user_namespace: str | None, tags: tuple[str, ...]
    ) -> None:
        _guard(lambda: mutate(state, run_id, user_namespace, tags, []))

    @tag.command("replace", help="Replace tags of a run.")
    @tag_opts
    @click.option(
        "--add",
        "tags_to_add",
        multiple=True,
        default=None,
        help="Add this tag to a run. Must specify one or more tags to add.",
    )
    @click.option(
        "--remove",
        "tags_to_remove",
        multiple=True,
        default=None,
        help="Remove this tag from a run. Must specify one or more tags to remove.",
    )
    @click.pass_obj
    def tag_replace(
        state: State,
        run_id: str | None,
        user_namespace: str | None,
        tags_to_add: Any,
        tags_to_remove: Any,
    ) -> None:
        def go() -> None:
            if not tags_to_add and not tags_to_remove:
                raise CommandException(
                    "Specify at least one tag to add (--add) and one tag to remove (--remove)"
                )
            if not tags_to_remove:
                raise CommandException(
                    "Specify at least one tag to remove; else please use *tag add*."
                )
            if not tags_to_add:
                raise CommandException(
                    "Specify at least one tag to add, else please use *tag remove*."
                )
            mutate(state, run_id, user_namespace, tags_to_remove, tags_to_add)

        _guard(go)

    @tag.command("list", help="List tags of a run.")
    @click.option("--run-id", default=None, type=str, help="Run ID of the specific run to list.")
    @click.option(
        "--all",
        "list_all",
        is_flag=True,
        default=False,
        help="List tags across all runs of this flow.",
    )
    @click.option(
        "--my-runs",
        is_flag=True,
        default=False,
        help="List tags across all runs of the flow under the default namespace.",
    )
    @click.option("--hide-system-tags", is_flag=True, default=False, help="Hide system tags.")
    @click.option(
        "--group-by-tag",
        is_flag=True,
        default=False,
        help="Display results by showing runs grouped by tags",
    )
    @click.option("--group-by-run", is_flag=True, default=False, help="Display tags grouped by run")
    @click.option(
        "--flat",
        is_flag=True,
        default=False,
        hidden=True,
        help="List tags, one line per tag, no groupings",
    )
    @click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON list: each run and its tags."
    )
    @click.argument("arg_run_id", required=False, default=None, type=str)
    @click.pass_obj
    def tag_list(
        state: State,
        run_id: str | None,
        list_all: bool,
        my_runs: bool,
        hide_system_tags: bool,
        group_by_tag: bool,
        group_by_run: bool,
        flat: bool,
        as_json: bool,
        arg_run_id: str | None,
    ) -> None:
        def go() -> None:
            nonlocal run_id, list_all
            if run_id is None and arg_run_id is None and not list_all and not my_runs:
                list_all = True
            if list_all and my_runs:
                raise CommandException("Option --all cannot be used together with --my-runs.")
            if run_id is not None and arg_run_id is not None:
                raise CommandException(
                    "Specify a run either using --run-id or as an argument but not both"
                )
            if arg_run_id is not None:
                run_id = arg_run_id
            if group_by_run and group_by_tag:
                raise CommandException("Option --group-by-tag cannot be used with --group-by-run")
            if flat and (group_by_run or group_by_tag):
                raise CommandException("Option --flat cannot be used with any --group-by-* option")
            store = state.store()
            flow_name = flow_cls.__name__
            if run_id is not None and not list_all and not my_runs:
                runs = [_get_run_for_tagging(state, run_id, None)]
            else:
                from mfstore.writer import RunRef

                ns = _identity_and_user()[0] if my_runs else None
                rows = store.query(
                    "SELECT run_pk, run_number FROM runs WHERE flow_id = ? ORDER BY ts_epoch DESC, run_number DESC",
                    (flow_name,),
                )
                if not rows:
                    raise CommandException(
                        f"Cannot list tags because the flow {flow_name} has never been run."
                    )
                runs = []
                for pk, number in rows:
                    user, system = _run_tags(store, pk)
                    if ns is None or ns in user or ns in system:
                        runs.append(RunRef(int(pk), flow_name, number))
            if as_json:
                listing = []
                for r in runs:
                    user, system = _run_tags(store, r.run_pk)
                    entry = {"pathspec": r.pathspec, "tags": sorted(user)}
                    if not hide_system_tags:
                        entry["system_tags"] = sorted(system)
                    listing.append(entry)
                _echo_json(listing)
                return
            system_by: dict[str, Any] = {}
            all_by: dict[str, Any] = {}
            for r in runs:
                user, system = _run_tags(store, r.run_pk)
                if group_by_run:
                    all_by[r.pathspec] = user if hide_system_tags else user | system
                    if not hide_system_tags:
                        system_by[r.pathspec] = system
                elif group_by_tag:
                    for t in user:
                        all_by.setdefault(t, []).append(r.pathspec)
                    if not hide_system_tags:
                        for t in system:
                            system_by.setdefault(t, []).append(r.pathspec)
                else:
                    all_by.setdefault("_", set()).update(
                        user if hide_system_tags else user | system
                    )
                    if not hide_system_tags:
                        system_by.setdefault("_", set()).update(system)
            if not group_by_run and not group_by_tag:
                key = ",".join(r.pathspec for r in runs)
                all_by = {key: all_by.get("_", set())}
                system_by = {key: system_by.get("_", set())}
            if flat:
                for v in all_by.values():
                    for t in sorted(v):
                        click.echo(t)
                return
            _print_groups(state, system_by, all_by, group_by_tag)

        _guard(go)

    from .production_cli import add_production_commands

    add_production_commands(cli, flow_cls, param_options)
    return cli


def _echo_json(doc: Any) -> None:
    """One JSON document; every non-ASCII or control character as a \\u escape."""
    import json

    click.echo(json.dumps(doc, indent=2))


def _guard(fn: Any) -> None:
    try:
        fn()
    except MetaflowException as exc:
        head = getattr(exc, "headline", "")
        _fail(f"{head}: {exc}" if isinstance(exc, MetaflowTaggingError) else str(exc))


def main(flow_cls: type) -> None:
    """Entry point used by ``FlowSpec.__init__`` when the flow file is run as a script."""
    try:
        cli = build_cli(flow_cls)
    except MetaflowException as exc:
        _fail(str(exc))
    try:
        cli.main(args=sys.argv[1:], prog_name=os.path.basename(sys.argv[0]), standalone_mode=True)
    except MetaflowException as exc:
        _fail(f"{exc.headline}: {exc}")

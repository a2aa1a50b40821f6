"""Executing one task attempt in a forked child process.

The child never writes the .mfdb: it reads parent artifacts from the ``BlobSource`` its
executor gives (the file, through a read-only connection of its own, in a process forked
from the runtime: ``local_task``; the blobs sent with the task on a Dask worker), runs
the step, pickles/hashes/compresses the artifacts with ``prepare_artifact`` and hands a
``TaskResult`` back to the runtime through a file. Everything a task needs arrives in a
``TaskSpec`` (plain data), so another engine could run it elsewhere given a way to fetch
blobs. This module imports ``artifacts`` (and through it ``blobs``), never ``store`` or
``writer``: a task process that is not a fork of the runtime loads neither.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from mfstore.artifacts import ForeachFrame, PreparedArtifact, loads, prepare_artifact
from mfstore.env import MFSTORE_NAMESPACE
from mfstore.exception import FailureHandledByCatch, MetaflowException, MetaflowExceptionWrapper

from .current import current, set_env, update_env
from .decorators import get_decorator
from .inputs import EPHEMERAL, Inputs
from .parameters import get_parameters

#: Types whose value is rebuilt from ``value_json`` without reading the blob.
_JSON_SCALARS = {
    "builtins.int",
    "builtins.str",
    "builtins.float",
    "builtins.bool",
    "builtins.NoneType",
}
_IMMUTABLE = (int, str, float, bool, bytes, frozenset, type(None))


class Parallel(NamedTuple):
    """``current.parallel`` of a ``@parallel`` task."""

    main_ip: str
    num_nodes: int
    node_index: int
    control_task_id: str | None


class ArtifactRef(NamedTuple):
    """An artifact already in the file: enough to pass it down without re-pickling."""

    sha: str
    type: str
    value_json: str | None


@dataclass
class InputSource:
    """A finished parent task whose artifacts this task reads."""

    step_name: str
    task_id: str
    refs: dict[str, ArtifactRef]


@dataclass
class TaskSpec:
    """What a task attempt needs to run (plain, picklable data)."""

    flow_name: str
    run_id: str
    step_name: str
    task_id: str
    attempt: int
    max_retries: int
    inputs: list[InputSource]
    foreach_stack: list[ForeachFrame]
    db_path: str
    result_path: str
    origin_run_id: str | None = None
    parameter_values: dict[str, Any] | None = None
    """Only for the start step of a run: parameter values (also in _parameters)."""
    namespace: str | None = None
    """The Client API namespace inside the task ('' given on the CLI means None)."""
    identity: str | None = None
    username: str | None = None
    user_tags: list[str] = field(default_factory=list)
    is_production: bool = False
    fallback: bool = False
    """Run @catch's fallback (the user code kept killing the process)."""
    iteration_stack: list[int] = field(default_factory=list)
    """The loop iteration of a recursive switch step (Metaflow's ``_iteration_stack``)."""


@dataclass
class TaskResult:
    """What a task attempt hands back to the runtime."""

    task_ok: bool
    success: bool
    artifacts: dict[str, PreparedArtifact]
    refs: dict[str, ArtifactRef]
    transition: tuple[list[str], str | None] | None
    foreach_num_splits: int | None = None
    foreach_values: list[str] | None = None
    files: dict[str, str] = field(default_factory=dict)
    """Task files to keep with the attempt (cards): ``{name: JSON reference}``."""


def needs_blob(ref: ArtifactRef) -> bool:
    """Whether loading ``ref`` reads its blob (JSON scalars are rebuilt from value_json)."""
    return not (ref.type in _JSON_SCALARS and ref.value_json is not None)


class BlobSource:
    """Where a task reads the blobs of its input artifacts: ``get(sha, what)`` -> bytes."""

    def get(self, sha: str, what: str) -> bytes:
        raise NotImplementedError


class InputDatastore:
    """The artifacts of one parent task, loaded on demand."""

    def __init__(self, source: InputSource, blobs: BlobSource) -> None:
        self.step_name = source.step_name
        self.task_id = source.task_id
        self.refs = source.refs
        self.blobs = blobs

    def __contains__(self, name: object) -> bool:
        return name in self.refs

    def names(self) -> list[str]:
        return list(self.refs)

    def ref(self, name: str) -> ArtifactRef:
        return self.refs[name]

    def load(self, name: str) -> Any:
        ref = self.refs[name]
        if not needs_blob(ref):
            return json.loads(ref.value_json or "null")
        return loads(self.blobs.get(ref.sha, f"{self.step_name}/{self.task_id}/{name}"))


def die_with_parent(parent_pid: int) -> None:
    """Linux: get SIGKILLed when the runtime dies (even by SIGKILL), so no task outlives it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the runtime died before prctl took effect
        os._exit(1)


def _prepare_child_process(spec: TaskSpec) -> None:
    """Reset what the fork inherited that must not be shared with the runtime."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.environ[MFSTORE_NAMESPACE] = "" if spec.namespace is None else spec.namespace
    client = sys.modules.get("mfstore.client")
    if client is not None and hasattr(client, "namespace"):
        with contextlib.suppress(Exception):
            client.namespace(spec.namespace)


#: The flow's own state at the start of every task (what the step then sets: its
#: transition, foreach, outcome and exception).
_FRESH_TASK_STATE: dict[str, Any] = {
    "_success": False,
    "_task_ok": None,
    "_exception": None,
    "_transition": None,
    "_foreach_var": None,
    "_foreach_num_splits": None,
    "_foreach_values": None,
}


def run_task(
    flow_cls: type[object],
    graph: Any,
    graph_info: dict[str, Any],
    spec: TaskSpec,
    blobs: BlobSource,
) -> int:
    """Run one attempt in this (child) process; write the TaskResult; return the exit code.

    Input blobs come from ``blobs``: the .mfdb for a process forked from the runtime
    (``local_task.run_local_task``), a Dask worker's memory for one of its tasks."""
    _prepare_child_process(spec)
    node = graph[spec.step_name]
    flow = flow_cls.__new__(flow_cls)
    flow.__dict__.update(
        _datastore=None, _cached_input={}, _passdown={}, _graph=graph, _loaded_refs={}
    )
    params = [p["name"] for p in graph_info["parameters"]]
    set_env(
        flow_name=spec.flow_name,
        run_id=spec.run_id,
        step_name=spec.step_name,
        task_id=spec.task_id,
        retry_count=spec.attempt,
        origin_run_id=spec.origin_run_id,
        namespace=spec.identity,
        username=spec.username,
        tags=set(spec.user_tags),
        parameter_names=params,
        graph=graph_info,
        is_production=spec.is_production or current.is_production,
    )
    if node.parallel_step and spec.foreach_stack:
        frame = spec.foreach_stack[-1]
        update_env(parallel=Parallel("127.0.0.1", frame.num_splits, frame.index, None))
    stores = [InputDatastore(src, blobs) for src in spec.inputs]
    is_join = node.type == "join"
    catch = get_decorator(node.func, "catch")
    inputs_obj = None
    if is_join:
        flows = []
        for ds in stores:
            f = flow_cls.__new__(flow_cls)
            f.__dict__.update(
                _datastore=ds,
                _cached_input={},
                _passdown={},
                _graph=graph,
                _current_step=ds.step_name,
            )
            flows.append(f)
        inputs_obj = Inputs(flows)
        # Parameters (and class constants) come from the first input, as in Metaflow.
        first = stores[0]
        for name in [c["name"] for c in graph_info["constants"]] + params:
            if name in first:
                flow.__dict__["_passdown"][name] = (first, first.ref(name))
    if stores:
        # Parameters and class constants are read-only values of the flow (as in Metaflow).
        constants = [c["name"] for c in graph_info["constants"]]
        declared = dict(get_parameters(flow_cls))
        _make_read_only(
            flow_cls,
            {
                n: declared[n].load_parameter(v) if n in declared else v
                for n in params
                if n in stores[0]
                for v in [stores[0].load(n)]
            },
            constants,
        )
        if not is_join:
            flow.__dict__["_datastore"] = stores[0]
    flow.__dict__.update(
        _FRESH_TASK_STATE,
        name=spec.flow_name,
        _current_step=spec.step_name,
        _foreach_stack=list(spec.foreach_stack),
        _iteration_stack=list(spec.iteration_stack),
        _graph_info=graph_info,
    )
    if spec.parameter_values is not None:
        flow.__dict__.update(spec.parameter_values)

    func = getattr(flow, spec.step_name)
    try:
        if spec.fallback:
            raise FailureHandledByCatch(spec.attempt)
        _call_step(func, inputs_obj if is_join else None, node, spec)
        if (
            node.type != "end"
            and flow.__dict__.get("_transition") is None
            and not _is_parallel_worker(node, spec)
        ):
            raise MetaflowException(
                f"Step *{spec.step_name}* did not call self.next(): add self.next(...) as the last line of the step."
            )
        if catch is not None and catch.attributes.get("var"):
            flow.__dict__[catch.attributes["var"]] = None
        flow.__dict__["_task_ok"] = True
        flow.__dict__["_success"] = True
    except Exception as ex:
        if catch is not None and spec.attempt >= spec.max_retries:
            text = _user_traceback(ex)
            if catch.attributes.get("print_exception", True):
                print(f"@catch caught an exception from {flow}")
                for line in text.splitlines():
                    print(f">  {line}")
            flow.__dict__["_transition"] = (list(node.out_funcs), None)
            if catch.attributes.get("var"):
                wrapper = MetaflowExceptionWrapper(ex)
                wrapper.stacktrace = text
                flow.__dict__[catch.attributes["var"]] = wrapper
            flow.__dict__["_task_ok"] = True
        else:
            wrapper = MetaflowExceptionWrapper(ex)
            wrapper.stacktrace = _user_traceback(ex)
            flow.__dict__["_task_ok"] = False
            flow.__dict__["_exception"] = wrapper
            # Metaflow's layout: the exception's headline, the traceback, "Task failed."
            print(f"{flow} failed:", file=sys.stderr)
            print("    {}".format(getattr(ex, "headline", "Internal error")), file=sys.stderr)
            sys.stderr.write(wrapper.stacktrace)
            print("\nTask failed.", file=sys.stderr)
    result = _persist(flow, stores, is_join)
    if current.card is not None:
        from .card_decorator import render_cards

        values = {k: v for k, v in flow.__dict__.items() if not k.startswith("_")}
        for name in params:
            values.setdefault(name, getattr(flow, name, None))
        result.files = render_cards(
            f"{spec.flow_name}/{spec.run_id}/{spec.step_name}/{spec.task_id}",
            values,
            task_ok=bool(result.task_ok),
            graph=graph_info.get("steps"),
            flow=flow,
        )
    sys.stdout.flush()
    sys.stderr.flush()
    tmp = spec.result_path + ".tmp"
    with open(tmp, "wb") as fh:
        pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, spec.result_path)
    return 0 if result.task_ok else 1


def _constant(value: Any) -> Any:
    def get(self: Any) -> Any:
        return value

    return get


def _make_read_only(flow_cls: type, values: dict[str, Any], constants: list[str]) -> None:
    """Turn Parameters and class constants into read-only properties of the flow class
    (in this task process only): ``self.alpha = 1`` raises AttributeError, as in Metaflow."""
    for name in constants:
        if hasattr(flow_cls, name):
            values.setdefault(name, getattr(flow_cls, name))
    for name, value in values.items():
        setattr(flow_cls, name, property(_constant(value)))


def _call_step(func: Any, inputs: Any, node: Any, spec: TaskSpec) -> None:
    """Run the step function between its decorators' pre- and post-step hooks."""
    decos = list(getattr(node.func, "decorators", ()))
    try:
        for deco in decos:
            deco.task_pre_step(spec.step_name, spec.task_id)
        if inputs is not None:
            func(inputs)
        else:
            func()
    finally:
        for deco in decos:
            deco.task_post_step()


_RUNTIME_DIR = os.path.dirname(os.path.abspath(__file__))


def _user_traceback(ex: BaseException) -> str:
    """The traceback without the runtime's own frames (they start every stack)."""
    tb = ex.__traceback__
    while (
        tb is not None
        and os.path.dirname(os.path.abspath(tb.tb_frame.f_code.co_filename)) == _RUNTIME_DIR
    ):
        if tb.tb_next is None:
            break
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(ex), ex, tb))


def _persist(flow: object, stores: list[InputDatastore], is_join: bool) -> TaskResult:
    d = flow.__dict__
    loaded = d.get("_loaded_refs", {})
    artifacts: dict[str, PreparedArtifact] = {}
    refs: dict[str, ArtifactRef] = {}
    failed_pickle: list[str] = []

    def passdown(name: str, ref: ArtifactRef) -> None:
        artifacts[name] = PreparedArtifact(None, ref.sha, ref.type, ref.value_json)
        refs[name] = ref

    for name, value in list(d.items()):
        if name in EPHEMERAL or name.startswith("__"):
            continue
        if name in loaded and loaded[name][0] is value and isinstance(value, _IMMUTABLE):
            passdown(name, loaded[name][1])
            continue
        try:
            art = prepare_artifact(value)
        except Exception as exc:
            failed_pickle.append(f"{name} ({exc})")
            continue
        artifacts[name] = art
        refs[name] = ArtifactRef(art.sha, art.type, art.value_json)
    for name, (_, ref) in d.get("_passdown", {}).items():
        if name not in artifacts:
            passdown(name, ref)
    if not is_join and stores:
        ds = stores[0]
        for name in ds.names():
            if name not in artifacts and name not in d:
                passdown(name, ds.ref(name))
    task_ok = bool(d.get("_task_ok"))
    if failed_pickle and task_ok:
        # An artifact that cannot be stored fails the task, like Metaflow's pickling error.
        try:
            raise MetaflowException(
                "Cannot pickle artifact(s): {}".format(", ".join(failed_pickle))
            )
        except MetaflowException as exc:
            print(f"{flow} failed:", file=sys.stderr)
            traceback.print_exc()
            wrapper = MetaflowExceptionWrapper(exc)
        task_ok = False
        for name, value in (("_task_ok", False), ("_success", False), ("_exception", wrapper)):
            art = prepare_artifact(value)
            artifacts[name] = art
            refs[name] = ArtifactRef(art.sha, art.type, art.value_json)
    transition = d.get("_transition")
    return TaskResult(
        task_ok=task_ok,
        success=bool(d.get("_success")) and task_ok,
        artifacts=artifacts,
        refs=refs,
        transition=(list(transition[0]), transition[1]) if transition else None,
        foreach_num_splits=d.get("_foreach_num_splits"),
        foreach_values=d.get("_foreach_values"),
    )


def _is_parallel_worker(node: Any, spec: TaskSpec) -> bool:
    """A task of a ``@parallel`` step other than its control task: as in Metaflow, only the
    control task's ``self.next`` counts (Metaflow's runtime never reads a worker's
    ``_transition``), so a worker may return without calling it."""
    return bool(node.parallel_step and spec.foreach_stack and spec.foreach_stack[-1].index != 0)


def crash_result(message: str) -> TaskResult:
    """The result recorded for an attempt whose process died without reporting."""
    try:
        raise MetaflowException(message)
    except MetaflowException as exc:
        wrapper = MetaflowExceptionWrapper(exc)
    wrapper.stacktrace = None
    values = {"_task_ok": False, "_success": False, "_exception": wrapper}
    artifacts = {k: prepare_artifact(v) for k, v in values.items()}
    refs = {k: ArtifactRef(a.sha, a.type, a.value_json) for k, a in artifacts.items()}
    return TaskResult(False, False, artifacts, refs, None)


def load_result(path: str) -> TaskResult | None:
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)  # type: ignore[no-any-return]
    except (OSError, EOFError, pickle.UnpicklingError):
        return None

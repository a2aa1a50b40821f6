"""``--metadata mfdb`` / ``metadata("mfdb@FILE")``: Metaflow's MetadataProvider on a .mfdb.

Writes (run and task ids, attempts, metadata, artifacts, tags) go through
``mfstore.writer.Writer``, each one transaction: Metaflow's task processes write in
parallel and the store retries on a busy file, so no "database is locked" reaches the
user. Reads (``_get_object_internal``) are indexed statements from ``mfstore.query``.

How Metaflow's steps map onto mfstore's records:

- ``new_run_id`` / ``register_run_id`` -> ``Writer.begin_run`` (tags = sticky + given);
- ``new_task_id`` / ``register_task_id`` -> a task (ids 0, 1, 2 ... per run, as
  Metaflow's local provider numbers them) plus Metaflow's system metadata;
- ``register_metadata`` -> metadata rows (``attempt_id:N`` tags -> the attempt column);
  the ``attempt`` field starts an attempt, ``code-package`` records the code package;
- ``register_data_artifacts`` (the last step of Metaflow's ``done()``) -> the attempt's
  artifacts and its end in one transaction; the end step's success ends the run;
- the runtime process leaving without a successful end step marks the run failed (a
  killed runtime leaves it running, as Metaflow shows it).
"""

# mypy: allow-untyped-calls
# (Metaflow ships no type information: its classes and helpers are untyped.)
from __future__ import annotations

import atexit
import re
from typing import Any

from metaflow.exception import MetaflowInternalError, MetaflowTaggingError
from metaflow.metadata_provider.metadata import MetadataProvider
from metaflow.util import get_username

from . import (
    TYPE,
    storage,  # its names are read at call time (Metaflow may import either first)
)
from .deps import artifacts, blobs, core, exception, query, writer

_ATTEMPT_RE = re.compile(r"attempt_id:([0-9]+)")
#: (task_pk, attempt) -> the attempt_ok Metaflow registered in this process.
_ATTEMPT_OK: dict[tuple[int, int], bool] = {}


def _attempt_of(tags: Any) -> int | None:
    for tag in tags or ():
        m = _ATTEMPT_RE.fullmatch(str(tag))
        if m:
            return int(m.group(1))
    return None


def _json_flag(value_json: str | None) -> bool | None:
    return {"true": True, "false": False}.get(value_json or "")


class MfdbMetadataProvider(MetadataProvider):
    """Metaflow's metadata provider answered from (and written to) one .mfdb file."""

    TYPE = TYPE  # type: ignore[assignment]

    @classmethod
    def compute_info(cls, val: str) -> str:
        file, _ = core.split_root(val)
        if not file.is_file():
            raise ValueError(f"Could not find the mfstore file {file}")
        return str(file)

    @classmethod
    def default_info(cls) -> str:
        root = storage.MfdbStorage.datastore_root
        if root:
            return str(core.split_root(root)[0])
        path = core.default_file(create=False)
        return str(path) if path else "<No metaflow.mfdb found in current working tree>"

    def version(self) -> str:
        """``"local"``, as Metaflow's local provider: a provider on this machine, not a
        metadata service (Argo's and Step Functions' ``create`` parse any other answer as
        a service version, then tell you what they need: an S3/Azure/GCS datastore)."""
        return "local"

    def __init__(self, environment: Any, flow: Any, event_logger: Any, monitor: Any) -> None:
        super().__init__(environment, flow, event_logger, monitor)
        root = storage.MfdbStorage.datastore_root or getattr(self.__class__, "_INFO", None)
        file = core.split_root(root)[0] if root else core.default_file(create=True)
        assert file is not None
        self._file = file
        self._end_step = "end"
        graph = getattr(flow, "_graph", None)
        for node in graph or ():
            if getattr(node, "type", None) == "end":
                self._end_step = node.name
        self._heartbeat_run: str | None = None

    # -- sessions ---------------------------------------------------------------------

    def _sess(self) -> core.Session:
        return core.session(self._file, create=True)

    @classmethod
    def _read_sess(cls) -> core.Session | None:
        info = str(getattr(cls, "INFO", "") or "")
        file = core.split_root(info)[0] if info and not info.startswith("<") else None
        if file is None or not file.exists():
            return None
        return core.session(file)

    def _run(self, run_id: Any) -> Any:
        ref = self._sess().run(self._flow_name, str(run_id))
        if ref is None:
            raise MetaflowInternalError(f"Run {self._flow_name}/{run_id} is not in {self._file}")
        return ref

    def _task(self, run_id: Any, step_name: str, task_id: Any) -> Any:
        self._run(run_id)
        return self._sess().task(self._flow_name, str(run_id), step_name, str(task_id), create=True)

    # -- runs and tasks -------------------------------------------------------------

    def _begin_run(self, run_id: str | None, tags: Any, sys_tags: Any) -> str:
        ref = self._sess().writer.begin_run(
            self._flow_name,
            user_name=get_username(),
            user_tags=self.sticky_tags.union(tags or ()),
            system_tags=self.sticky_sys_tags.union(sys_tags or ()),
            run_number=run_id,
            end_step=self._end_step,
        )
        return ref.run_number

    def new_run_id(self, tags: Any = None, sys_tags: Any = None) -> str:
        return self._begin_run(None, tags, sys_tags)

    def register_run_id(self, run_id: Any, tags: Any = None, sys_tags: Any = None) -> bool:
        if self._sess().run(self._flow_name, str(run_id)) is not None:
            return False
        try:
            self._begin_run(str(run_id), tags, sys_tags)
        except exception.MetaflowException:
            return False  # registered by another process meanwhile
        return True

    def new_task_id(
        self, run_id: Any, step_name: str, tags: Any = None, sys_tags: Any = None
    ) -> str:
        sess = self._sess()
        run = self._run(run_id)
        with sess.store.write():  # the id, the task and its system metadata: one transaction
            top = sess.store.scalar(*query.compile_max_task_id(run.run_pk))
            self._task_id_seq = max(self._task_id_seq + 1, 0 if top is None else int(top) + 1)
            task_id = str(self._task_id_seq)
            sess.writer.add_task(run, step_name, task_id)
            self._register_system_metadata(run_id, step_name, task_id, 0)
        return task_id

    def register_task_id(
        self,
        run_id: Any,
        step_name: str,
        task_id: Any,
        attempt: int = 0,
        tags: Any = None,
        sys_tags: Any = None,
    ) -> bool:
        sess = self._sess()
        existed = sess.task(self._flow_name, str(run_id), step_name, str(task_id)) is not None
        with sess.store.write():
            self._task(run_id, step_name, task_id)
            self._register_system_metadata(run_id, step_name, task_id, attempt)
        return not existed and not str(task_id).isdigit()

    # -- metadata and artifacts -----------------------------------------------------

    def register_metadata(self, run_id: Any, step_name: str, task_id: Any, metadata: Any) -> None:
        with self._sess().store.write():  # one transaction per call
            self._register_metadata(run_id, step_name, task_id, metadata)

    def _register_metadata(self, run_id: Any, step_name: str, task_id: Any, metadata: Any) -> None:
        sess = self._sess()
        task = self._task(run_id, step_name, task_id)
        entries = []
        fields: dict[str, tuple[Any, int | None]] = {}
        for datum in metadata:
            attempt = _attempt_of(datum.tags)
            value = datum.value
            fields[str(datum.field)] = (value, attempt)
            entries.append(
                writer.MetadataEntry(
                    str(datum.field), value, str(datum.type or datum.field), attempt
                )
            )
            if datum.field == "attempt":
                sess.writer.ensure_attempt(task, int(value))
            elif datum.field == "attempt_ok" and attempt is not None:
                _ATTEMPT_OK[(task.task_pk, attempt)] = str(value) == "True"
            elif datum.field == "code-package":
                self._code_package(task.run, value)
        if "origin-task-id" in fields and "origin-run-id" in fields:
            entries += self._clone(task, step_name, fields)
        elif str(fields.get("origin-run-id", ("None",))[0]) not in ("None", ""):
            sess.writer.set_run_origin(task.run, str(fields["origin-run-id"][0]))
        sess.writer.add_metadata(task, entries)

    def _clone(
        self, task: Any, step_name: str, fields: dict[str, tuple[Any, int | None]]
    ) -> list[writer.MetadataEntry]:
        """A task cloned by ``resume``: its origin task and run are recorded, and it gets
        the ``ds-type``/``ds-root`` Metaflow's client shows for it (copied from the origin
        by Metaflow's client, kept by mfstore's Client)."""
        sess = self._sess()
        origin_run = str(fields["origin-run-id"][0])
        origin = sess.task(self._flow_name, origin_run, step_name, str(fields["origin-task-id"][0]))
        if origin is not None:
            sess.writer.set_task_origin(task, origin.task_pk)
        sess.writer.set_run_origin(task.run, origin_run)
        attempt = fields["origin-task-id"][1]
        return [
            writer.MetadataEntry(name, value, name, attempt)
            for name, value in (("ds-type", TYPE), ("ds-root", str(self._file)))
            if name not in fields
        ]

    def _code_package(self, run: Any, value: Any) -> None:
        import json

        try:
            sha = json.loads(value)["sha"]
        except (ValueError, TypeError, KeyError):
            return
        sess = self._sess()
        script = self._environment.get_environment_info().get("script") or ""
        if sha and sess.writer.add_code_package_ref(str(sha), script_name=script):
            sess.writer.set_run_code(run, str(sha))

    def _describe(self, sha: str, type_repr: str | None) -> tuple[str, str | None]:
        sess = self._sess()
        found = storage.DESCRIBED.get(sha)
        if found is None:
            row = sess.store.one(*query.compile_blob_record(sha))
            found = (row[0], row[1]) if row is not None and row[0] is not None else None
        if found is None and blobs.has_blob(sess.store, sha):
            found = artifacts.describe_pickled(blobs.get_blob(sess.store, sha), type_repr)
        if found is None:
            raise MetaflowInternalError(
                f"Artifact blob {sha} is not in {self._file}: use --datastore mfdb with --metadata mfdb"
            )
        if found[1] is None and found[0] == "builtins.object" and type_repr:
            found = (artifacts.type_from_repr(type_repr), None)
        return found

    def register_data_artifacts(
        self, run_id: Any, step_name: str, task_id: Any, attempt_id: int, artifacts: Any
    ) -> None:
        sess = self._sess()
        task = self._task(run_id, step_name, task_id)
        pending = storage.PENDING_DATA.pop(
            (self._flow_name, str(run_id), step_name, str(task_id), attempt_id), {}
        )
        info = pending.get("info") or {}
        prepared = {}
        for art in artifacts:
            type_name, value_json = self._describe(art.sha, (info.get(art.name) or {}).get("type"))
            prepared[art.name] = writer.PreparedArtifact(None, art.sha, type_name, value_json)
        ok = _ATTEMPT_OK.pop((task.task_pk, attempt_id), None)
        if ok is None:
            ok = bool(_json_flag(getattr(prepared.get("_task_ok"), "value_json", None)))
        success = bool(_json_flag(getattr(prepared.get("_success"), "value_json", None)))
        with sess.store.write():  # the attempt's artifacts and end (and the run's): one transaction
            sess.writer.ensure_attempt(task, attempt_id)
            sess.writer.end_attempt(
                task,
                attempt_id,
                artifacts=prepared,
                task_ok=ok,
                success=success,
                status_metadata=False,
            )
            if step_name == self._end_step and success:
                sess.writer.end_run(task.run, successful=True, checkpoint=False)

    # -- heartbeats: the runtime process's start and end of a run ------------------

    def start_run_heartbeat(self, flow_id: str, run_id: Any) -> None:
        if self._heartbeat_run is None:
            self._heartbeat_run = str(run_id)
            atexit.register(self._finish_run)

    def stop_heartbeat(self) -> None:
        if self._heartbeat_run is not None:
            self._finish_run()

    def _finish_run(self) -> None:
        run_id, self._heartbeat_run = self._heartbeat_run, None
        if run_id is None:
            return
        try:
            sess = self._sess()
            row = sess.run_row(self._flow_name, run_id)
            if (
                row is not None
                and dict(zip(query.RUN_COLUMNS, row, strict=True))["status"] == "running"
            ):
                sess.writer.end_run(self._run(run_id), successful=False, checkpoint=False)
            sess.store.checkpoint()
        except Exception:  # never turn the end of a run into a traceback
            pass

    # -- tags -----------------------------------------------------------------------

    @classmethod
    def _mutate_user_tags_for_run(
        cls, flow_id: str, run_id: str, tags_to_add: Any = None, tags_to_remove: Any = None
    ) -> frozenset[str]:
        sess = cls._read_sess()
        ref = sess.run(flow_id, str(run_id)) if sess is not None else None
        if sess is None or ref is None:
            raise MetaflowTaggingError(msg=f"Run not found ({flow_id}, {run_id})")
        try:
            user, _system = sess.writer.replace_user_tags(
                ref.run_pk, tags_to_remove or (), tags_to_add or (), user_name=get_username()
            )
        except exception.MetaflowException as exc:
            raise MetaflowTaggingError(msg=str(exc)) from None
        return frozenset(user)

    # -- reads ----------------------------------------------------------------------

    @classmethod
    def filter_tasks_by_metadata(
        cls, flow_name: str, run_id: str, step_name: str, field_name: str, pattern: str
    ) -> list[str]:
        sess = cls._read_sess()
        ref = sess.run(flow_name, str(run_id)) if sess is not None else None
        if sess is None or ref is None or not query.storable(step_name, field_name):
            return []
        prefix = f"{flow_name}/{run_id}/{step_name}/"
        if pattern == ".*":
            ids = sess.store.query(*query.compile_task_ids(ref.run_pk, step_name))
            return [prefix + t for (t,) in ids]
        regex = re.compile(pattern)
        out: list[str] = []
        for task_id, value in sess.store.query(
            *query.compile_tasks_with_metadata(ref.run_pk, step_name, field_name)
        ):
            if regex.fullmatch(value) and prefix + task_id not in out:
                out.append(prefix + task_id)
        return out

    @classmethod
    def _get_object_internal(
        cls,
        obj_type: str,
        obj_order: int,
        sub_type: str,
        sub_order: int,
        filters: Any,
        attempt: int | None,
        *args: Any,
    ) -> Any:
        if obj_type == "artifact":
            obj_type, sub_type = "task", "artifact"
        sess = cls._read_sess()
        if sess is None:
            return None if sub_type == "self" else []
        args = tuple(str(a) for a in args)
        if sub_type == "self":
            return _self(sess, obj_type, args, filters)
        if sub_type == "artifact":
            name = args[4] if len(args) > 4 else None
            flow, run, step, task = args[:4]
            arts = core.artifact_dicts(sess, flow, run, step, task, attempt, name)
            arts = [a for a in arts if core.passes(a, filters)]
            if name is not None:
                return arts[0] if arts else None
            return arts
        if sub_type == "metadata":
            return core.metadata_dicts(sess, *args[:4])
        levels = ["root", "flow", "run", "step", "task"]
        parents = [args]
        for level in levels[levels.index(obj_type) + 1 : levels.index(sub_type)]:
            parents = [
                (*p, _ident(level, d)) for p in parents for d in _children(sess, level, p, None)
            ]
        return [d for p in parents for d in _children(sess, sub_type, p, filters)]


def _ident(level: str, d: dict[str, Any]) -> str:
    key = {"flow": "flow_id", "run": "run_number", "step": "step_name", "task": "task_id"}[level]
    return str(d[key])


def _self(sess: core.Session, level: str, args: tuple[str, ...], filters: Any) -> Any:
    """One object by its path components (one indexed lookup)."""
    if level == "flow":
        found = core.flow_dicts(sess, args[0])
    elif level == "run":
        one = core.run_dict(sess, args[0], args[1])
        found = [one] if one is not None else []
    elif level == "step":
        found = core.step_dicts(sess, args[0], args[1], args[2])
    elif level == "task":
        found = core.task_dicts(sess, args[0], args[1], args[2], args[3])
    else:
        return None
    found = [d for d in found if core.passes(d, filters)]
    return found[0] if found else None


def _children(
    sess: core.Session, level: str, parent: tuple[str, ...], filters: Any
) -> list[dict[str, Any]]:
    """Objects of type ``level`` under ``parent`` (its path components)."""
    if level == "flow":
        out = core.flow_dicts(sess, None)
        return [d for d in out if core.passes(d, filters)] if filters else out
    if level == "run":
        if parent:
            return core.run_dicts(sess, parent[0], filters)
        return []
    if level == "step":
        out = core.step_dicts(sess, *parent[:2])
    elif level == "task":
        out = core.task_dicts(sess, *parent[:3])
    else:
        return []
    return [d for d in out if core.passes(d, filters)] if filters else out

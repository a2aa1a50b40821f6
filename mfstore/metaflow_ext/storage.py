"""``--datastore mfdb``: Metaflow's DataStoreStorage on a .mfdb file.

Metaflow's datastore speaks in files under a root; this class maps each kind of file
onto mfstore's tables instead of keeping the file:

- ``<Flow>/data/<sh>/<sha>`` (content-addressed blobs, gzip from Metaflow) -> ``blobs``,
  unpacked and stored zstd the mfstore way under the same sha (sha1 of the raw bytes), so
  blobs written by Metaflow and by mfstore are shared. Read back raw (``cas_raw``).
- ``<task>/<n>.attempt.json`` -> an attempt; ``<n>.data.json`` and ``<n>.DONE.lock`` ->
  derived from the attempt's artifacts and end (the metadata provider ends the attempt);
  ``<n>.<source>_<stream>.log`` -> ``log_lines``;
- any other task file (``<n>.task_begin``, ``<n>.task_end``, cards under ``mf.cards/``)
  -> kept with the task (``Writer.set_task_file``).

``load_bytes`` hands Metaflow file paths: values are spilled chunk by chunk to a private
temporary directory that the closer removes.
"""

# mypy: allow-untyped-calls
# (Metaflow ships no type information: its classes and helpers are untyped.)
from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from metaflow.datastore.datastore_storage import CloseAfterUse, DataStoreStorage
from metaflow.datastore.exceptions import DataException

from ..env import MFSTORE_DB
from . import TYPE
from .deps import artifacts, blobs, core, importer, query

_CAS_META = {"cas_raw": True, "cas_version": 1}
#: Bytes (compressed) one ``save_bytes`` transaction carries at most before it commits.
BATCH_BYTES = 64 << 20

#: sha -> (type name, JSON) of the artifact blobs this process stored (the metadata
#: provider records artifacts from them without reading the blobs back).
DESCRIBED: dict[str, tuple[str, str | None]] = {}
#: (flow, run, step, task, attempt) -> the ``data.json`` Metaflow saved in this process.
PENDING_DATA: dict[tuple[str, str, str, str, int], dict[str, Any]] = {}


class _Remover:
    def __init__(self, path: str) -> None:
        self.path = path

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _task_state(sess: core.Session, task_pk: int) -> dict[str, Any]:
    attempts = {
        int(a): (started, ended, ok, success)
        for a, started, ended, ok, success in sess.store.query(
            *query.compile_child_rows("attempts", task_pk)
        )
    }
    files = {
        name: json.loads(ref)
        for _a, name, ref in sess.store.query(*query.compile_task_files(task_pk))
    }
    logs = {
        f"{a}.{source}_{stream}.log"
        for a, stream, source in sess.store.query(*query.compile_log_sources(task_pk))
    }
    return {"attempts": attempts, "files": files, "logs": logs}


def _iso(ts_us: int) -> bytes:
    return datetime.fromtimestamp(ts_us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").encode() + b"Z"


class MfdbStorage(DataStoreStorage):
    """Metaflow's storage interface answered from one .mfdb file."""

    TYPE = TYPE  # type: ignore[assignment]
    METADATA_DIR = "_meta"

    @classmethod
    def get_datastore_root_from_config(cls, echo: Any, create_on_absent: bool = True) -> str | None:
        """``$MFSTORE_DB``, else ``metaflow.mfdb`` from the current directory up, else a new
        ``./metaflow.mfdb`` (created) when ``create_on_absent``."""
        path = core.default_file(create=create_on_absent)
        if path is None:
            return None
        if create_on_absent and not path.exists():
            echo(f"Creating mfdb datastore in {path}")
            core.session(path, create=True)
        return str(path)

    # -- keys ---------------------------------------------------------------------

    def _where(self) -> tuple[Path, list[str]]:
        root = self.datastore_root or core.default_file(create=False)
        if root is None:
            raise DataException(
                f"No .mfdb file: set {MFSTORE_DB} or pass --datastore-root FILE.mfdb"
            )
        return core.split_root(root)

    def _key(self, path: str) -> core.Key:
        _, prefix = self._where()
        return core.parse_key(prefix + str(path).split("/"))

    def _session(self, *, create: bool) -> core.Session | None:
        file, _ = self._where()
        if not create and not file.exists():
            return None
        return core.session(file, create=create)

    # -- reads ----------------------------------------------------------------------

    def _lookup(
        self, sess: core.Session, key: core.Key, memo: dict[Any, Any]
    ) -> tuple[int, dict[str, Any]] | None:
        ident = (key.flow, key.run, key.step, key.task)
        if ident not in memo:
            task = sess.task(key.flow or "", key.run or "", key.step or "", key.task or "")
            memo[ident] = None if task is None else (task.task_pk, _task_state(sess, task.task_pk))
        found: tuple[int, dict[str, Any]] | None = memo[ident]
        return found

    def _render(
        self, sess: core.Session, key: core.Key, memo: dict[Any, Any]
    ) -> tuple[bytes | None, dict[str, Any] | None] | None:
        """``(bytes, metadata)`` of a task file, or None when it does not exist."""
        found = self._lookup(sess, key, memo)
        if found is None:
            return None
        task_pk, state = found
        attempt, suffix = key.attempt, key.suffix
        att = state["attempts"].get(attempt) if attempt is not None else None
        if suffix == "attempt.json" and att is not None:
            return json.dumps({"time": att[0] / 1000.0}).encode(), None
        if suffix in ("data.json", "DONE.lock") and att is not None and att[1] is not None:
            if suffix == "DONE.lock":
                return b'""', None
            return json.dumps(self._data_json(sess, task_pk, attempt)).encode(), None
        if key.name in state["logs"]:
            source, stream = core.log_name(suffix) or ("", "")
            rows = sess.store.query(*query.compile_log_lines(task_pk, attempt or 0, stream, source))
            return self._mflog(source, rows), None
        ref = state["files"].get(key.name)
        if ref is None:
            return None
        if "text" in ref:
            return str(ref["text"]).encode("utf-8"), ref.get("meta")
        return None, ref.get("meta")  # the caller spills blob ref["sha"]

    @staticmethod
    def _mflog(source: str, rows: Iterable[tuple[int, str]]) -> bytes:
        src = source.encode()
        return b"".join(
            b"[MFLOG|0|%s|%s|%d]%s\n" % (_iso(ts), src, i, line.encode("utf-8", "replace"))
            for i, (ts, line) in enumerate(rows)
        )

    @staticmethod
    def _data_json(sess: core.Session, task_pk: int, attempt: int | None) -> dict[str, Any]:
        objects: dict[str, str] = {}
        info: dict[str, dict[str, Any]] = {}
        for name, sha, type_name, _ts in sess.store.query(
            *query.compile_artifacts(task_pk, attempt or 0)
        ):
            objects[name] = sha
            info[name] = {
                "size": sess.store.scalar(*query.compile_blob_size(sha)) or 0,
                "type": core.type_repr(type_name),
                "encoding": core.ENCODING,
            }
        return {
            "datastore": TYPE,
            "version": "1.0",
            "attempt": attempt,
            "objects": objects,
            "info": info,
        }

    def _exists(self, sess: core.Session | None, path: str, memo: dict[Any, Any]) -> bool:
        if sess is None:
            return False
        key = self._key(path)
        if key.kind == "blob":
            return blobs.has_blob(sess.store, key.sha)
        if key.kind == "task":
            return self._render(sess, key, memo) is not None
        return False

    def is_file(self, paths: list[str]) -> list[bool]:
        sess = self._session(create=False)
        memo: dict[Any, Any] = {}
        return [self._exists(sess, p, memo) for p in paths]

    def info_file(self, path: str) -> tuple[bool, dict[str, Any] | None]:
        sess = self._session(create=False)
        if sess is None:
            return False, None
        key = self._key(path)
        if key.kind == "blob":
            return (True, dict(_CAS_META)) if blobs.has_blob(sess.store, key.sha) else (False, None)
        rendered = self._render(sess, key, {}) if key.kind == "task" else None
        return (False, None) if rendered is None else (True, rendered[1])

    def size_file(self, path: str) -> int | None:
        sess = self._session(create=False)
        if sess is None:
            return None
        key = self._key(path)
        if key.kind == "blob":
            size = sess.store.scalar(*query.compile_blob_size(key.sha))
            return None if size is None else int(size)
        rendered = self._render(sess, key, {}) if key.kind == "task" else None
        if rendered is None:
            return None
        data, _ = rendered
        if data is None:
            ref = self._lookup(sess, key, {})[1]["files"][key.name]  # type: ignore[index]
            blob_size = sess.store.scalar(*query.compile_blob_size(ref["sha"]))
            return None if blob_size is None else int(blob_size)
        return len(data)

    def list_content(self, paths: list[str]) -> list[Any]:
        sess = self._session(create=False)
        out: list[Any] = []
        if sess is None:
            return out
        for path in paths:
            for name, is_file in self._children(sess, path):
                out.append(self.list_content_result(self.path_join(path, name), is_file))
        return out

    def _children(self, sess: core.Session, path: str) -> list[tuple[str, bool]]:
        _, prefix = self._where()
        parts = [p for p in prefix + str(path).split("/") if p not in ("", ".")]
        store = sess.store
        if parts[:1] == [core.CARD_DIR]:
            r = parts[1:]
            if len(r) in (7, 8):
                if not (r[1] == "runs" and r[3] == "steps" and r[5] == "tasks"):
                    return []
                key = core.Key("task", tuple(parts), r[0], r[2], r[4], r[6], "")
                found = self._lookup(sess, key, {})
                if found is None:
                    return []
                want = f"{core.CARD_DIR}/" + (r[7] + "/" if len(r) == 8 else "")
                names = {
                    n[len(want) :].split("/")[0] for n in found[1]["files"] if n.startswith(want)
                }
                return [(n, len(r) == 8) for n in sorted(names)]
            return []
        if len(parts) == 0:
            return [(f, False) for (f,) in store.query(*query.compile_flows(None))]
        if len(parts) == 1:
            runs = [(r[2], False) for r in store.query(*query.compile_runs(parts[0]))]
            return [("data", False), *runs]
        ref = sess.run(parts[0], parts[1]) if parts[1] != "data" else None
        if ref is None:
            return []
        if len(parts) == 2:
            return [(s, False) for s, _ts in store.query(*query.compile_steps(ref.run_pk))]
        if len(parts) == 3:
            ids = store.query(*query.compile_task_ids(ref.run_pk, parts[2]))
            return [(t, False) for (t,) in ids]
        if len(parts) == 4:
            flow, run, step, task = parts
            found = self._lookup(
                sess, core.Key("task", tuple(parts), flow, run, step, task, ""), {}
            )
            if found is None:
                return []
            _, state = found
            names = set(state["logs"]) | {
                n for n in state["files"] if not n.startswith(core.CARD_DIR + "/")
            }
            for a, (_s, ended, _ok, _succ) in state["attempts"].items():
                names.add(f"{a}.attempt.json")
                if ended is not None:
                    names |= {f"{a}.data.json", f"{a}.DONE.lock"}
            return [(n, True) for n in sorted(names)]
        return []

    def load_bytes(self, keys: list[str]) -> CloseAfterUse:
        tmpdir = tempfile.mkdtemp(prefix="mfdb-")
        sess = self._session(create=False)

        def iter_results() -> Iterator[tuple[str, str | None, dict[str, Any] | None]]:
            memo: dict[Any, Any] = {}
            for i, path in enumerate(keys):
                if sess is None:
                    yield path, None, None
                    continue
                yield self._load_one(sess, path, os.path.join(tmpdir, str(i)), memo)

        return CloseAfterUse(iter_results(), _Remover(tmpdir))

    def _load_one(
        self, sess: core.Session, path: str, target: str, memo: dict[Any, Any]
    ) -> tuple[str, str | None, dict[str, Any] | None]:
        key = self._key(path)
        sha: str | None = None
        data: bytes | None = None
        meta: dict[str, Any] | None = None
        if key.kind == "blob":
            if not blobs.has_blob(sess.store, key.sha):
                return path, None, None
            sha, meta = key.sha, dict(_CAS_META)
        elif key.kind == "task":
            rendered = self._render(sess, key, memo)
            if rendered is None:
                return path, None, None
            data, meta = rendered
            if data is None:
                sha = memo[(key.flow, key.run, key.step, key.task)][1]["files"][key.name]["sha"]
        else:
            return path, None, None
        with open(target, "wb") as fh:
            if sha is not None:
                blobs.copy_blob_to(sess.store, sha, fh)
            else:
                fh.write(data or b"")
        return path, target, meta

    # -- writes ---------------------------------------------------------------------

    def save_bytes(
        self, path_and_bytes_iter: Any, overwrite: bool = False, len_hint: int = 0
    ) -> None:
        """Store every file of the call in one transaction (Metaflow's task processes
        write in parallel: fewer, shorter write locks). Blobs are checked and compressed
        before it; a call carrying more than ``BATCH_BYTES`` is stored in several."""
        sess = self._session(create=True)
        assert sess is not None
        batch: list[Callable[[], Any]] = []
        size = 0
        for path, obj in path_and_bytes_iter:
            byte_obj, meta = obj if isinstance(obj, tuple) else (obj, None)
            key = self._key(path)
            if key.kind == "blob":
                packed = self._pack_blob(sess, key, byte_obj, meta)
                if packed is None:
                    continue
                size += packed.stored_size
                batch.append(partial(sess.writer.put_blob, packed))
            elif key.kind == "task":
                data = byte_obj.read()
                kept = _kept_as_file(key) and _inline_text(data) is None
                packed = blobs.pack_blob(data) if kept else None
                size += len(data) if packed is None else packed.stored_size
                batch.append(
                    partial(self._save_task_file, sess, key, data, meta, overwrite, packed)
                )
            else:
                raise DataException(
                    "The mfdb datastore keeps runs, tasks, artifacts, logs and cards; "
                    f"it has no place for '{path}'"
                )
            if size > BATCH_BYTES:
                _apply(sess, batch)
                batch, size = [], 0
        _apply(sess, batch)

    @staticmethod
    def _pack_blob(
        sess: core.Session, key: core.Key, byte_obj: Any, meta: Any
    ) -> blobs.PackedBlob | None:
        """A Metaflow CAS blob unpacked, sha-checked and compressed the mfstore way (None
        when the file has it already)."""
        if blobs.has_blob(sess.store, key.sha):
            return None
        data = byte_obj.read()
        raw = data if (meta and meta.get("cas_raw")) else gzip.decompress(data)
        actual = hashlib.sha1(raw).hexdigest()
        if actual != key.sha:
            raise DataException(
                f"Blob {key.sha} has content sha {actual}: not stored (the mfdb datastore is content-addressed)"
            )
        if not (meta and meta.get("cas_raw")) and raw[:1] == b"\x80":
            DESCRIBED[key.sha] = artifacts.describe_pickled(raw)
        return blobs.pack_blob(raw, key.sha)

    @staticmethod
    def _save_task_file(
        sess: core.Session,
        key: core.Key,
        data: bytes,
        meta: Any,
        overwrite: bool,
        packed: blobs.PackedBlob | None = None,
    ) -> None:
        task = sess.task(
            key.flow or "", key.run or "", key.step or "", key.task or "", create=False
        )
        if task is None:
            ref = sess.run(key.flow or "", key.run or "")
            if ref is None:
                raise DataException(
                    f"Run {key.flow}/{key.run} is not in {sess.path}: use --metadata mfdb "
                    "together with --datastore mfdb"
                )
            task = sess.task(
                key.flow or "", key.run or "", key.step or "", key.task or "", create=True
            )
        assert task is not None
        attempt, suffix = key.attempt, key.suffix
        if attempt is not None and suffix == "attempt.json":
            started = json.loads(data or b"{}").get("time")
            ts = int(float(started) * 1000) if started is not None else None
            sess.writer.ensure_attempt(task, attempt, ts_epoch=ts)
            return
        if attempt is not None and suffix == "data.json":
            PENDING_DATA[
                (key.flow or "", key.run or "", key.step or "", key.task or "", attempt)
            ] = json.loads(data)
            sess.writer.ensure_attempt(task, attempt)
            return
        if attempt is not None and suffix == "DONE.lock":
            return  # the attempt ends when its artifacts are registered
        log = core.log_name(suffix) if attempt is not None else None
        if log is not None and attempt is not None:
            source, stream = log
            sess.writer.replace_log_lines(
                task, attempt, stream, importer.parse_mflog_bytes(data), source=source
            )
            return
        name = key.name or ""
        if not overwrite and name in _task_state(sess, task.task_pk)["files"]:
            return
        entry: dict[str, Any] = {"meta": meta}
        text = _inline_text(data)
        if text is not None:
            entry["text"] = text
        else:
            entry["sha"] = sess.writer.put_blob(data if packed is None else packed)
        sess.writer.set_task_file(task, attempt, name, json.dumps(entry, ensure_ascii=False))


def _kept_as_file(key: core.Key) -> bool:
    """A task file kept as it is (markers, cards), not mapped onto attempts or logs."""
    if key.attempt is None:
        return True
    mapped = key.suffix in ("attempt.json", "data.json", "DONE.lock")
    return not mapped and core.log_name(key.suffix) is None


def _inline_text(data: bytes) -> str | None:
    """A small UTF-8 task file's text (kept inline in its reference), else None."""
    if len(data) > core.INLINE_LIMIT:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _apply(sess: core.Session, batch: list[Callable[[], Any]]) -> None:
    """The prepared writes of one ``save_bytes`` call, in one transaction."""
    if batch:
        with sess.store.write():
            for write in batch:
                write()


def card_root() -> str | None:
    """Where Metaflow's card datastore writes for ``--datastore mfdb``: inside the file."""
    root = MfdbStorage.datastore_root or core.default_file(create=False)
    if root is None:
        return None
    file, _ = core.split_root(root)
    return f"{file}/{core.CARD_DIR}"


def install_card_root() -> None:
    """Teach Metaflow's card datastore (which lists its backends by name) about mfdb."""
    try:
        from metaflow.plugins.cards.card_datastore import CardDatastore
    except ImportError:  # pragma: no cover - cards are part of every Metaflow we test
        return
    original = CardDatastore.__dict__["get_storage_root"].__func__
    if getattr(original, "_mfdb", False):
        return

    def get_storage_root(cls: Any, storage_type: str) -> Any:
        if storage_type == TYPE:
            return card_root()
        return original(cls, storage_type)

    get_storage_root._mfdb = True  # type: ignore[attr-defined]
    CardDatastore.get_storage_root = classmethod(get_storage_root)  # type: ignore[method-assign,assignment]


def _mfdb_in_use() -> bool:
    from metaflow.datastore.flow_datastore import FlowDataStore

    impl = getattr(FlowDataStore, "default_storage_impl", None)
    return getattr(impl, "TYPE", None) == TYPE


def latest_run_id(flow_name: str) -> str | None:
    """The newest run of ``flow_name`` by the current user in the file (what Metaflow
    keeps in ``.metaflow/<Flow>/latest_run``, for ``resume`` and ``logs`` without an id)."""
    from metaflow.util import get_username

    sess = MfdbStorage()._session(create=False)
    if sess is None or not query.storable(flow_name):
        return None
    user = get_username()
    tags = [f"user:{user}"] if user else []
    row = sess.store.one(*query.compile_runs(flow_name, tags, latest=True))
    return (
        None if row is None else str(dict(zip(query.RUN_COLUMNS, row, strict=True))["run_number"])
    )


def install_latest_run() -> None:
    """Keep Metaflow's "latest run" in the file instead of a ``.metaflow`` directory."""
    import sys

    import metaflow.util as util

    if getattr(util.get_latest_run_id, "_mfdb", False):
        return
    get_original, write_original = util.get_latest_run_id, util.write_latest_run_id

    def get_latest_run_id(echo: Any, flow_name: str) -> Any:
        if _mfdb_in_use():
            return latest_run_id(flow_name)
        return get_original(echo, flow_name)

    def write_latest_run_id(obj: Any, run_id: Any) -> Any:
        if getattr(getattr(obj, "datastore_impl", None), "TYPE", None) == TYPE:
            return None  # the run is in the file already
        return write_original(obj, run_id)

    get_latest_run_id._mfdb = True  # type: ignore[attr-defined]
    replacements = {get_original: get_latest_run_id, write_original: write_latest_run_id}
    util.get_latest_run_id, util.write_latest_run_id = get_latest_run_id, write_latest_run_id
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("metaflow"):
            for name in ("get_latest_run_id", "write_latest_run_id"):
                fn = getattr(module, name, None)
                if fn in replacements:
                    setattr(module, name, replacements[fn])


install_card_root()
install_latest_run()

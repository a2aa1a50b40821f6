"""``DataArtifact``: one named value of a task attempt, loaded (and sha-checked) on demand."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any, Never

from .. import query
from ._object import MetaflowObject


class DataArtifact(MetaflowObject[Never]):
    """
    A single data artifact and associated metadata. Note that this object does
    not contain other objects as it is the leaf object in the hierarchy.

    Attributes
    ----------
    data : object
        The data contained in this artifact, that is, the object produced during
        execution of this run.
    sha : string
        A unique ID of this artifact.
    finished_at : datetime
        Corresponds roughly to the `Task.finished_at` time of the parent `Task`.
        An alias for `DataArtifact.created_at`.
    """

    _NAME = "artifact"
    _DEPTH = 5
    _EXPECTS = "Expects DataArtifact('FlowName/RunID/StepName/TaskID/ArtifactName')"

    _task_pk: int
    _artifact_attempt: int
    _sha: str
    _type: str

    def _lookup(self, ids: list[str]) -> tuple[Any, ...] | None:
        flow_id, run_number, step_name, task_id, name = ids
        return self._store.one(
            *query.compile_artifact_lookup(
                flow_id, run_number, step_name, task_id, name, attempt=self._attempt
            )
        )

    def _init_row(self, row: tuple[Any, ...]) -> None:
        (
            self._run_pk,
            self._tagset_id,
            self._task_pk,
            self._artifact_attempt,
            self._sha,
            self._type,
            self._ts,
        ) = row

    def _raw(self, max_bytes: int | None = None) -> bytes:
        from ..blobs import get_blob

        return get_blob(
            self._store, self._sha, what=f"artifact {self._pathspec}", max_bytes=max_bytes
        )

    def _value_json(self) -> str | None:
        row = self._store.one(
            *query.compile_artifact_json(self._task_pk, self._artifact_attempt, self.id)
        )
        return None if row is None else row[0]

    def navigation_value(self) -> Any:
        """The value of one of the runtime's own artifacts (``_foreach_stack``,
        ``_graph_info``, ``_exception``) for navigation: from its JSON when it has one,
        else through the restricted loader - never by running the pickle."""
        from ..artifacts import loads_internal
        from ..exception import MetaflowDataCorruption

        text = self._value_json()
        if text is not None:
            try:
                return json.loads(text)
            except (ValueError, RecursionError):
                raise MetaflowDataCorruption(
                    f"artifact {self._pathspec} has a damaged JSON value in {self._store.path}"
                ) from None
        return loads_internal(self._raw(), what=f"artifact {self._pathspec}")

    @property
    def data(self) -> Any:
        """
        Unpickled representation of the data contained in this artifact.

        The stored bytes are checked against the artifact's sha first: a mismatch raises
        ``MetaflowDataCorruption`` naming the artifact. Unpickling runs code from the
        file: use ``load_safe()`` for files you do not trust. A run's Config value as
        older mfstore recorded it (a ConfigValue) is the plain dict Metaflow records.

        Returns
        -------
        object
            Object contained in this artifact
        """
        from ..artifacts import (
            JSON_CONTAINER_TYPES,
            OLD_CONFIG_TYPE,
            PLAIN_TYPES,
            load,
            load_plain,
            loads,
        )
        from ..blobs import load_blob
        from ..exception import UnsafeArtifactError

        what = f"artifact {self._pathspec}"
        if self._is_old_config():
            raw_config = self._raw()
            try:
                return self._config_dict(raw_config)
            except UnsafeArtifactError:  # a parser's value that is not plain data
                value = loads(raw_config)  # as .data loads any value
                kind = type(value)
                is_config = f"{kind.__module__}.{kind.__qualname__}" == OLD_CONFIG_TYPE
                return value.to_dict() if is_config else value
        loader: Callable[[IO[bytes]], Any] = load
        # An artifact the file records as plain data (shown as such by show, the views and
        # the UI) is loaded as plain data: bytes that lie about it are refused, never run.
        if self._type in PLAIN_TYPES or (
            self._type in JSON_CONTAINER_TYPES and self._value_json() is not None
        ):
            type_name = self._type

            def loader(fh: IO[bytes]) -> Any:
                return load_plain(fh, type_name=type_name, what=what)

        raw = None if self._parent is None else self._parent._shared_value(self._sha)
        if raw is not None:
            import io

            return loader(io.BytesIO(raw))
        return load_blob(self._store, self._sha, loader, what=what)

    def load_safe(self) -> Any:
        """
        The value, rebuilt only if it is plain data (builtins, datetime, decimal, uuid,
        ...); never runs code from the file. Anything else raises ``UnsafeArtifactError``.

        Returns
        -------
        object
            Object contained in this artifact
        """
        from ..artifacts import loads_safe

        if self._is_old_config():
            return self._config_dict(self._raw())
        return loads_safe(self._raw(), what=f"artifact {self._pathspec}")

    def _is_old_config(self) -> bool:
        """True for one of the run's Config values as older mfstore recorded it: a
        ConfigValue, the run's ``_parameters`` task's value of the same name (tasks and
        resumed runs share it). Metaflow records a plain dict, as mfstore does now."""
        from ..artifacts import OLD_CONFIG_TYPE

        if self._type != OLD_CONFIG_TYPE:
            return False
        flow_id, run_number = self.path_components[:2]
        row = self._store.one(
            *query.compile_artifact_lookup(flow_id, run_number, "_parameters", "0", self.id, None)
        )
        return row is not None and row[4] == self._sha

    def _config_dict(self, raw: bytes) -> Any:
        """An old Config value (``_is_old_config``) as the plain dict Metaflow records."""
        from ..artifacts import loads_config

        return loads_config(raw, what=f"artifact {self._pathspec}")

    @property
    def data_safe(self) -> Any:
        """Same as ``load_safe()``: the value if it is plain data, never running code."""
        return self.load_safe()

    @property
    def size(self) -> int:
        """
        Returns the size (in bytes) of the pickled object representing this
        DataArtifact

        Returns
        -------
        int
            size of the pickled representation of data artifact (in bytes)
        """
        return int(self._store.scalar(*query.compile_blob_size(self._sha)))

    @property
    def sha(self) -> str:
        """
        Unique identifier for this artifact.

        This is a unique hash of the artifact (historically SHA1 hash)

        Returns
        -------
        str
            Hash of this artifact
        """
        return self._sha

    @property
    def finished_at(self) -> datetime:
        """
        Creation time for this artifact.

        Alias for created_at.

        Returns
        -------
        datetime
            Creation time
        """
        return self.created_at

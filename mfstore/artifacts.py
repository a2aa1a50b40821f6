"""Artifact values <-> pickled bytes (cloudpickle, protocol 4, as Metaflow).

``prepare_artifact(value)`` pickles, hashes and compresses a value into a
``PreparedArtifact`` ready for ``Writer.end_attempt``: task processes import this
module and ``blobs``, never the writer or the store.

Loading maps the class names that Metaflow histories pickle (``__main__.ForeachFrame``,
``metaflow.exception.MetaflowExceptionWrapper``) to mfstore's own, so reading needs no
Metaflow. ``loads_safe`` rebuilds only plain data and never imports arbitrary modules.
"""

from __future__ import annotations

import io
import json
import pickle
from collections import namedtuple
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .blobs import PackedBlob, pack_blob, sha1_hex
from .exception import UnsafeArtifactError

#: One level of a foreach: the ``_foreach_stack`` artifact is a list of these.
ForeachFrame = namedtuple("ForeachFrame", "step var num_splits index value")
ForeachFrame.__module__ = __name__

PICKLE_PROTOCOL = 4
#: Largest JSON text kept in ``artifacts.value_json``.
MAX_JSON_CHARS = 64 * 1024

_RENAMED: dict[tuple[str, str], tuple[str, str]] = {
    ("__main__", "ForeachFrame"): ("mfstore.artifacts", "ForeachFrame"),
    ("metaflow.datastore.task_datastore", "ForeachFrame"): ("mfstore.artifacts", "ForeachFrame"),
    ("metaflow.exception", "MetaflowExceptionWrapper"): (
        "mfstore.exception",
        "MetaflowExceptionWrapper",
    ),
    ("metaflow.exception", "MetaflowException"): ("mfstore.exception", "MetaflowException"),
}

#: Types ``loads_safe`` accepts: plain data only, never code.
SAFE_CLASSES: frozenset[tuple[str, str]] = frozenset(
    {
        ("builtins", name)
        for name in (
            "list",
            "dict",
            "set",
            "frozenset",
            "tuple",
            "bytes",
            "bytearray",
            "str",
            "int",
            "float",
            "complex",
            "bool",
            "slice",
            "range",
        )
    }
    | {
        ("collections", "OrderedDict"),
        ("collections", "deque"),
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("decimal", "Decimal"),
        ("fractions", "Fraction"),
        ("uuid", "UUID"),
        ("pathlib", "PurePosixPath"),
        ("pathlib", "PosixPath"),
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
        ("_codecs", "encode"),
        ("mfstore.artifacts", "ForeachFrame"),
    }
)


def dumps(value: Any) -> bytes:
    """Pickle ``value`` as mfstore stores it (cloudpickle, protocol 4)."""
    import cloudpickle

    raw: bytes = cloudpickle.dumps(value, protocol=PICKLE_PROTOCOL)
    return raw


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        module, name = _RENAMED.get((module, name), (module, name))
        return super().find_class(module, name)


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, fh: io.BytesIO, what: str) -> None:
        super().__init__(fh)
        self.what = what

    def find_class(self, module: str, name: str) -> Any:
        module, name = _RENAMED.get((module, name), (module, name))
        if (module, name) not in SAFE_CLASSES:
            raise UnsafeArtifactError(
                f"{self.what} holds a {module}.{name}, which is not plain data: safe loading refuses it; "
                "load it with .data only if you trust the file it came from"
            )
        return super().find_class(module, name)


def loads(raw: bytes) -> Any:
    """Unpickle stored bytes (runs code from the pickle: use on trusted files only)."""
    return _Unpickler(io.BytesIO(raw)).load()


def loads_safe(raw: bytes, *, what: str = "artifact") -> Any:
    """Unpickle only plain data (builtins, datetime, decimal, uuid ...); refuse the rest."""
    try:
        return _SafeUnpickler(io.BytesIO(raw), what).load()
    except UnsafeArtifactError:
        raise
    except Exception as exc:
        raise UnsafeArtifactError(f"{what} could not be loaded safely: {exc}") from None


def type_name(value: Any) -> str:
    """Qualified type name, e.g. ``'builtins.int'``."""
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def _plain(value: Any, depth: int = 0) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if depth > 8:
        return False
    if isinstance(value, (list, tuple, dict)) and len(value) > 4096:
        return False
    if isinstance(value, (list, tuple)):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def to_json(value: Any) -> str | None:
    """The value as JSON text when it is small plain data, else None (never a repr)."""
    if not _plain(value):
        return None
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return text if len(text) <= MAX_JSON_CHARS else None


@dataclass
class PreparedArtifact:
    """An artifact pickled, hashed and compressed, ready for ``Writer.end_attempt``."""

    blob: PackedBlob | None
    """Packed bytes, or None when only the sha is known to be in the file already."""
    sha: str
    """sha1 of the pickled bytes."""
    type: str
    """Qualified type name of the value."""
    value_json: str | None = None
    """The value as JSON when it is plain data."""


def prepare_artifact(value: Any, *, known_shas: Iterable[str] = ()) -> PreparedArtifact:
    """Pickle (cloudpickle, protocol 4), hash and compress one value.

    ``known_shas``: shas already in the file; a value with one of them is not packed again.
    """
    raw = dumps(value)
    sha = sha1_hex(raw)
    blob = None if sha in set(known_shas) else pack_blob(raw, sha)
    return PreparedArtifact(blob, sha, type_name(value), to_json(value))


def prepare_artifacts(values: Mapping[str, Any]) -> dict[str, PreparedArtifact]:
    """``prepare_artifact`` for each item."""
    return {name: prepare_artifact(value) for name, value in values.items()}


def prepare_raw_artifact(
    raw: bytes, *, type_name: str, value_json: str | None = None, sha: str | None = None
) -> PreparedArtifact:
    """An artifact from already-pickled bytes (the importer keeps Metaflow's sha)."""
    blob = pack_blob(raw, sha)
    return PreparedArtifact(blob, blob.sha, type_name, value_json)


def describe_pickled(raw: bytes, type_repr: str | None = None) -> tuple[str, str | None]:
    """``(type name, JSON or None)`` of pickled bytes written by someone else (Metaflow),
    without running code from the pickle: plain data is loaded safely; anything else is
    named from ``type_repr`` (Metaflow's ``"<class 'pandas.DataFrame'>"``) when given."""
    try:
        value = loads_safe(raw)
    except UnsafeArtifactError:
        return type_from_repr(type_repr), None
    return type_name(value), to_json(value)


def type_from_repr(type_repr: str | None) -> str:
    """``'pandas.DataFrame'`` from Metaflow's ``"<class 'pandas.DataFrame'>"``
    (``'builtins.object'`` when unknown)."""
    import re

    m = re.match(r"<class '([^']+)'>", str(type_repr or ""))
    name = m.group(1) if m else "builtins.object"
    return name if "." in name else "builtins." + name

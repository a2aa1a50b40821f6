"""Artifact values <-> pickled bytes (cloudpickle, protocol 4, as Metaflow).

Loading maps the class names that Metaflow histories pickle (``__main__.ForeachFrame``,
``metaflow.exception.MetaflowExceptionWrapper``) to mfstore's own, so reading needs no
Metaflow. ``loads_safe`` rebuilds only plain data and never imports arbitrary modules.
"""

from __future__ import annotations

import io
import json
import pickle
from collections import namedtuple
from typing import IO, Any

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
    def __init__(self, fh: IO[bytes], what: str) -> None:
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


def load(fh: IO[bytes]) -> Any:
    """``loads`` from a file (large values are read straight into place)."""
    return _Unpickler(fh).load()


def load_safe(fh: IO[bytes], *, what: str = "artifact") -> Any:
    """``loads_safe`` from a file."""
    try:
        return _SafeUnpickler(fh, what).load()
    except UnsafeArtifactError:
        raise
    except Exception as exc:
        raise UnsafeArtifactError(f"{what} could not be loaded safely: {exc}") from None


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

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
import os
import pickle
from collections import namedtuple
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from .blobs import PackedBlob, pack_blob, pack_parts, sha1_hex
from .env import MFSTORE_LOAD_SAFE_MAX_BYTES
from .exception import MetaflowDataCorruption, UnsafeArtifactError

#: One level of a foreach: the ``_foreach_stack`` artifact is a list of these.
ForeachFrame = namedtuple("ForeachFrame", "step var num_splits index value")
ForeachFrame.__module__ = __name__

PICKLE_PROTOCOL = 4
#: Largest JSON text kept in ``artifacts.value_json``.
MAX_JSON_CHARS = 64 * 1024
_INF = float("inf")

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


class _Parts:
    """A file for a pickler that keeps what it is given: a large ``bytes`` value is
    handed over as the value itself (protocol 4 writes it outside its frames), so the
    pickled form of a 100 MB value is never copied into one buffer."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[Any] = []

    def write(self, data: Any) -> int:
        self.parts.append(data)
        return len(data)


def _pickled_parts(value: Any, plain: bool) -> list[Any]:
    """The pickled bytes of ``value`` (as ``dumps``) as a list of buffers. Plain data
    pickles to the same bytes with the standard pickler (cloudpickle only changes how
    functions and classes are pickled), which is much cheaper."""
    if plain:  # small: one buffer is cheaper than a pickler writing to a file
        return [pickle.dumps(value, protocol=PICKLE_PROTOCOL)]
    import cloudpickle

    sink = _Parts()
    cloudpickle.Pickler(sink, protocol=PICKLE_PROTOCOL).dump(value)
    return sink.parts or [b""]


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        module, name = _RENAMED.get((module, name), (module, name))
        return super().find_class(module, name)


#: Types the runtime pickles for its own bookkeeping (foreach stack, exceptions): the
#: restricted loader of navigation (``loads_internal``) accepts these besides plain data.
INTERNAL_CLASSES: frozenset[tuple[str, str]] = frozenset(
    {
        ("mfstore.artifacts", "ForeachFrame"),
        ("mfstore.exception", "MetaflowExceptionWrapper"),
        ("mfstore.exception", "MetaflowException"),
    }
)

#: Default budget of ``loads_safe``: the most memory (bytes, estimated) a value may
#: take. Override with the environment variable ``MFSTORE_LOAD_SAFE_MAX_BYTES`` or the
#: ``max_bytes`` argument of ``loads_safe`` / ``DataArtifact.load_safe``.
LOAD_SAFE_MAX_BYTES = 256 * 1024 * 1024
#: Builtins a pickle may call (REDUCE) whose result can be far larger than the pickle:
#: their arguments are measured against the budget before they run.
_EXPANDING = frozenset(
    {
        ("builtins", n)
        for n in ("list", "tuple", "set", "frozenset", "bytes", "bytearray", "str", "dict")
    }
    | {("collections", "deque"), ("collections", "OrderedDict"), ("_codecs", "encode")}
)


def load_budget(max_bytes: int | None = None) -> int:
    """The ``loads_safe`` budget in bytes: ``max_bytes``, else $MFSTORE_LOAD_SAFE_MAX_BYTES,
    else ``LOAD_SAFE_MAX_BYTES``."""
    if max_bytes is not None:
        return int(max_bytes)
    env = os.environ.get(MFSTORE_LOAD_SAFE_MAX_BYTES)
    if env:
        try:
            return int(env)
        except ValueError:
            raise UnsafeArtifactError(
                f"{MFSTORE_LOAD_SAFE_MAX_BYTES}={env!r} is not a number of bytes (e.g. 268435456)"
            ) from None
    return LOAD_SAFE_MAX_BYTES


def _cost(value: Any) -> int:
    """Estimated bytes a constructor called on ``value`` may allocate."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value  # bytes(n), bytearray(n)
    if isinstance(value, (str, bytes, bytearray)):
        return len(value)
    if isinstance(value, range):
        return len(value) * 36  # a list of ints: pointer + int object each
    try:
        return len(value) * 8
    except TypeError:
        return 1 << 62  # an iterable of unknown length: refused


class _SafeUnpickler(pickle.Unpickler):
    def __init__(
        self,
        fh: IO[bytes],
        what: str,
        budget: int,
        allowed: frozenset[tuple[str, str]] = SAFE_CLASSES,
        renamed: Mapping[tuple[str, str], tuple[str, str]] = _RENAMED,
    ) -> None:
        super().__init__(fh)
        self.what = what
        self.budget = budget
        self.spent = 0
        self.allowed = allowed
        self.renamed = renamed

    def find_class(self, module: str, name: str) -> Any:
        module, name = self.renamed.get((module, name), (module, name))
        if (module, name) not in self.allowed:
            raise UnsafeArtifactError(
                f"{self.what} holds a {module}.{name}, which is not plain data: safe loading refuses it; "
                "load it with .data only if you trust the file it came from"
            )
        found = super().find_class(module, name)
        if (module, name) in _EXPANDING:
            return self._guarded(found, f"{module}.{name}")
        return found

    def _guarded(self, make: Any, label: str) -> Any:
        def call(*args: Any) -> Any:
            self.spent += sum(_cost(a) for a in args)
            if self.spent > self.budget:
                raise UnsafeArtifactError(
                    f"{self.what} expands beyond the safe-loading budget of {self.budget} bytes "
                    f"({label} of about {self.spent} bytes): refused before allocating it; raise "
                    f"the limit with load_safe(max_bytes=...) or ${MFSTORE_LOAD_SAFE_MAX_BYTES} if you expect it"
                )
            return make(*args)

        return call


def loads(raw: bytes) -> Any:
    """Unpickle stored bytes (runs code from the pickle: use on trusted files only)."""
    return _Unpickler(io.BytesIO(raw)).load()


def load(fh: IO[bytes]) -> Any:
    """``loads`` from a file: large ``bytes`` values are read straight into place (see
    ``blobs.load_blob``). Runs code from the pickle: trusted files only."""
    return _Unpickler(fh).load()


def loads_safe(raw: bytes, *, what: str = "artifact", max_bytes: int | None = None) -> Any:
    """Unpickle only plain data (builtins, datetime, decimal, uuid ...); refuse the rest.

    A pickle larger than the budget (``load_budget(max_bytes)``), or one that calls a
    constructor (``list(range(n))``, ``bytes(n)``) whose result would exceed it, is
    refused with ``UnsafeArtifactError`` before the memory is allocated.
    """
    return _load_restricted(raw, what, load_budget(max_bytes), SAFE_CLASSES)


def loads_internal(raw: bytes, *, what: str) -> Any:
    """The restricted loader of navigation (``Task.index``, ``Task.exception``, graph
    info): plain data plus the runtime's own types (``INTERNAL_CLASSES``); never code."""
    return _load_restricted(raw, what, load_budget(None), SAFE_CLASSES | INTERNAL_CLASSES)


#: The type older mfstore recorded a run's Config values with (Metaflow records a plain
#: dict, as mfstore does now).
OLD_CONFIG_TYPE = "mfstore.runtime.config.ConfigValue"
#: A ConfigValue pickles as ``ConfigValue(<its value as plain dicts>)``: ``dict`` instead.
_CONFIG_AS_DICT = {**_RENAMED, ("mfstore.runtime.config", "ConfigValue"): ("builtins", "dict")}


def loads_config(raw: bytes, *, what: str, max_bytes: int | None = None) -> Any:
    """A run's Config value as older mfstore recorded it (``OLD_CONFIG_TYPE``), as the
    plain dict Metaflow records: rebuilt by the restricted loader, never running code;
    a value that is not plain data raises ``UnsafeArtifactError``."""
    budget = load_budget(max_bytes)
    return _load_restricted(raw, what, budget, SAFE_CLASSES, _CONFIG_AS_DICT)


def _load_restricted(
    raw: bytes,
    what: str,
    budget: int,
    allowed: frozenset[tuple[str, str]],
    renamed: Mapping[tuple[str, str], tuple[str, str]] = _RENAMED,
) -> Any:
    if len(raw) > budget:
        raise UnsafeArtifactError(
            f"{what} is {len(raw)} bytes, beyond the safe-loading budget of {budget} bytes: "
            f"raise it with load_safe(max_bytes=...) or ${MFSTORE_LOAD_SAFE_MAX_BYTES}"
        )
    try:
        return _SafeUnpickler(io.BytesIO(raw), what, budget, allowed, renamed).load()
    except UnsafeArtifactError:
        raise
    except (RecursionError, MemoryError):
        raise UnsafeArtifactError(
            f"{what} is nested too deeply or too large to load safely"
        ) from None
    except Exception as exc:
        raise UnsafeArtifactError(
            f"{what} could not be loaded safely: {' '.join(str(exc).split())[:200]}"
        ) from None


#: Stored type names that are plain data by themselves (scalars): such an artifact is
#: always loaded with the safe loader, so bytes that claim ``builtins.bool`` but pickle
#: a callable are refused. A container type (list, dict ...) may hold anything, so it
#: counts as plain only when the artifact also has a JSON value.
PLAIN_TYPES: frozenset[str] = frozenset(
    {
        "builtins.NoneType",
        "builtins.bool",
        "builtins.int",
        "builtins.float",
        "builtins.complex",
        "builtins.str",
        "builtins.bytes",
        "builtins.bytearray",
        "builtins.range",
        "datetime.datetime",
        "datetime.date",
        "datetime.time",
        "datetime.timedelta",
        "decimal.Decimal",
        "fractions.Fraction",
        "uuid.UUID",
    }
)


def is_plain(type_name: str, value_json: str | None) -> bool:
    """True if an artifact is recorded as plain data (a plain type, or a JSON value)."""
    return value_json is not None or type_name in PLAIN_TYPES


#: Container types an artifact may be recorded with that count as plain data only when
#: the artifact also has a JSON value (see ``is_plain``).
JSON_CONTAINER_TYPES: frozenset[str] = frozenset(
    {"builtins.list", "builtins.tuple", "builtins.dict"}
)


def load_plain(fh: IO[bytes], *, type_name: str, what: str) -> Any:
    """``DataArtifact.data`` of an artifact recorded as plain data: unpickled by the
    restricted loader (no budget beyond the value itself, which the caller asked for), so
    bytes that are not what the record says raise ``MetaflowDataCorruption`` and never run."""
    try:
        return _SafeUnpickler(fh, what, 1 << 62, SAFE_CLASSES).load()
    except MetaflowDataCorruption:
        raise
    except (UnsafeArtifactError, pickle.UnpicklingError, RecursionError, EOFError) as exc:
        raise MetaflowDataCorruption(
            f"{what} is recorded as plain data ({type_name}) but its bytes are not: "
            f"{' '.join(str(exc).split())[:200]}; refused without running it (the file was altered)"
        ) from None


def type_name(value: Any) -> str:
    """Qualified type name, e.g. ``'builtins.int'``."""
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


#: ``type_name`` of the builtin types, looked up (a foreach of numbers asks it often).
_BUILTIN_NAMES = {kind: type_name(kind()) for kind in (int, float, str, bool, list, tuple, dict)}


def _plain(value: Any, depth: int = 0) -> bool:
    # Exact types only: a JSON value marks the artifact as plain data (see is_plain), so
    # a subclass (a namedtuple of the user's, an IntEnum) must not get one.
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return True
    if kind is float:
        return bool(-_INF < value < _INF)  # not nan, not infinite
    if depth > 8:
        return False
    if kind in (list, tuple, dict) and len(value) > 4096:
        return False
    if kind in (list, tuple):
        for item in value:  # scalars inline: a list of numbers is the common case
            item_kind = type(item)
            if item_kind is int or item_kind is str or item_kind is bool or item is None:
                continue
            if not _plain(item, depth + 1):
                return False
        return True
    if kind is dict:
        return all(type(k) is str and _plain(v, depth + 1) for k, v in value.items())
    return False


def to_json(value: Any) -> str | None:
    """The value as JSON text when it is small plain data, else None (never a repr)."""
    if not _plain(value):
        return None
    return _json_text(value)


_JSON_CONSTANTS = {True: "true", False: "false", None: "null"}
#: ``json.dumps(value, ensure_ascii=..., allow_nan=False)`` without building an encoder
#: per call (which costs more than encoding a small value).
_JSON_UNICODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False)
_JSON_ASCII = json.JSONEncoder(ensure_ascii=True, allow_nan=False)


#: Exact types whose JSON text ``_scalar_json`` writes itself (what ``json.dumps`` writes).
_FLAT = frozenset({int, float, bool, type(None)})


def _scalar_json(value: Any, kind: type) -> str | None:
    """JSON text of an int, float, bool or None without the encoder's machinery (exactly
    ``json.dumps``'s), or None when there is none (nan, inf, an int too long for str)."""
    if kind is int:
        try:
            return str(value)
        except ValueError:  # more digits than int -> str allows
            return None
    if kind is float:
        return float.__repr__(value) if -_INF < value < _INF else None
    return _JSON_CONSTANTS[value]


def _json_text(value: Any) -> str | None:
    kind = type(value)
    if kind in _FLAT:
        text = _scalar_json(value, kind)
        return text if text is not None and len(text) <= MAX_JSON_CHARS else None
    if (kind is list or kind is tuple) and len(value) <= 64:
        # A short flat list of numbers (a foreach's items, coordinates): json.dumps's
        # own text, item by item (the encoder costs more than encoding a small value).
        parts = []
        for item in value:
            item_kind = type(item)
            if item_kind not in _FLAT:
                break
            part = _scalar_json(item, item_kind)
            if part is None:
                return None  # what the encoder refuses (allow_nan=False) or cannot write
            parts.append(part)
        else:
            text = "[" + ", ".join(parts) + "]"
            return text if len(text) <= MAX_JSON_CHARS else None
    try:
        text = _JSON_UNICODE.encode(value)
    except (TypeError, ValueError):
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (a non-UTF-8 file name from os.fsdecode): SQLite text must be
        # UTF-8, so escape it; json.loads gives the same string back.
        text = _JSON_ASCII.encode(value)
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
    plain = _plain(value)
    return _prepared(value, plain, _pickled_parts(value, plain), known_shas)


def _prepared(
    value: Any, plain: bool, parts: list[Any], known_shas: Iterable[str] = ()
) -> PreparedArtifact:
    """``prepare_artifact`` of a value pickled already (``parts``)."""
    json_text = _json_text(value) if plain else None
    if len(parts) == 1 and not known_shas:  # a small value
        packed = pack_blob(parts[0], sha1_hex(parts[0]))
        return PreparedArtifact(packed, packed.sha, type_name(value), json_text)
    known = set(known_shas)
    if known or len(parts) == 1:
        raw = parts[0] if len(parts) == 1 else b"".join(parts)
        sha = sha1_hex(raw)
        blob = None if sha in known else pack_blob(raw, sha)
    else:
        blob = pack_parts(parts)  # a large value: hashed while it is compressed
        sha = blob.sha
    return PreparedArtifact(blob, sha, type_name(value), json_text)


class PreparedValues:
    """``prepare_artifact`` with a memory, for writers of many tasks (``TaskBatch.prepare``):
    a value that pickles to bytes prepared before, with the same type, is not hashed,
    compressed or converted to JSON again (a foreach hands the same values to many tasks;
    a history repeats ``_task_ok``, step names, parameters ...). Only small values are
    remembered, within ``max_bytes`` of pickled bytes in all (then it starts afresh).

    What is remembered is plain tuples of strings and bytes, which Python's garbage
    collector stops tracking: a memory of many values costs it nothing."""

    #: Largest pickled value remembered.
    MAX_VALUE_BYTES = 4096

    def __init__(self, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._seen: dict[tuple[str, bytes], tuple[Any, ...]] = {}
        self._bytes = 0

    def prepare(self, value: Any) -> PreparedArtifact:
        """``prepare_artifact(value)``, from memory when the same bytes were prepared."""
        plain = _plain(value)
        parts = _pickled_parts(value, plain)
        if len(parts) != 1 or len(parts[0]) > self.MAX_VALUE_BYTES:
            return _prepared(value, plain, parts)
        key = (_BUILTIN_NAMES.get(type(value)) or type_name(value), bytes(parts[0]))
        found = self._seen.get(key)
        if found is not None:
            sha, size, json_text, codec, data = found
            return PreparedArtifact(PackedBlob(sha, size, [(codec, data)]), sha, key[0], json_text)
        art = _prepared(value, plain, parts)
        blob = art.blob
        if blob is not None and len(blob.chunks) == 1:
            if self._bytes > self.max_bytes:
                self._seen.clear()
                self._bytes = 0
            # Flat tuples of strings and bytes: the garbage collector stops tracking them.
            self._seen[key] = (art.sha, blob.size, art.value_json, *blob.chunks[0])
            self._bytes += 2 * len(key[1]) + 200  # the bytes, packed and pickled, and the entry
        return art


def prepare_artifacts(values: Mapping[str, Any]) -> dict[str, PreparedArtifact]:
    """``prepare_artifact`` for each item."""
    return {name: prepare_artifact(value) for name, value in values.items()}


def prepare_raw_artifact(
    raw: bytes, *, type_name: str, value_json: str | None = None, sha: str | None = None
) -> PreparedArtifact:
    """An artifact from already-pickled bytes (the importer keeps Metaflow's sha)."""
    blob = pack_blob(raw, sha)
    return PreparedArtifact(blob, blob.sha, type_name, value_json)


#: Largest pickle ``describe_pickled`` rebuilds (safely) to name its type and preview it.
PREVIEW_MAX_BYTES = 1024 * 1024


def describe_pickled(raw: bytes, type_repr: str | None = None) -> tuple[str, str | None]:
    """``(type name, JSON or None)`` of pickled bytes written by someone else (Metaflow),
    without running code from the pickle: plain data is loaded safely; anything else is
    named from ``type_repr`` (Metaflow's ``"<class 'pandas.DataFrame'>"``) when given.
    Memory stays within ``PREVIEW_MAX_BYTES``: larger pickles, or small ones that would
    expand beyond it, are named from ``type_repr`` only (no JSON preview)."""
    try:
        if len(raw) > PREVIEW_MAX_BYTES:
            raise UnsafeArtifactError("too large to preview")
        value = loads_safe(raw, max_bytes=PREVIEW_MAX_BYTES)
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

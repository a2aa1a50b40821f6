"""Hostile values read through the Client API become mfstore errors (issue 12).

A received file's rows are data its author chose: a timestamp of 2**62, a NULL where a
value belongs, bad JSON, a missing blob. Whatever Python raises while turning such a
row into a property (``ValueError``, ``TypeError``, ``OverflowError``,
``RecursionError``, ``MemoryError``, ``IndexError``, ``UnicodeError``) is re-raised as
``MetaflowDataCorruption`` naming the object and the property. ``KeyError`` (Metaflow's
answer for a missing child) and mfstore's own errors pass through unchanged.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterator
from typing import Any

from ..exception import MetaflowDataCorruption, MetaflowException

#: What a bad value raises while it is read (never KeyError/AttributeError: those are
#: part of Python's and Metaflow's protocols).
DATA_ERRORS = (
    ValueError,
    TypeError,
    OverflowError,
    RecursionError,
    MemoryError,
    IndexError,
    UnicodeError,
    ZeroDivisionError,
)
#: Dunder methods that read the file and are guarded too.
_GUARDED_DUNDERS = frozenset({"__init__", "__iter__", "__getitem__", "__contains__", "__len__"})


def _corrupt(obj: Any, name: str, exc: BaseException) -> MetaflowDataCorruption:
    what = getattr(obj, "_pathspec", None) or type(obj).__name__
    detail = " ".join(str(exc).split())[:160]
    return MetaflowDataCorruption(
        f"{type(obj).__name__} {what}: {name} cannot be read, the file holds a bad value "
        f"({type(exc).__name__}: {detail}); run `mfstore verify` and use a good copy"
    )


def _guard_iter(obj: Any, name: str, it: Iterator[Any]) -> Iterator[Any]:
    try:
        yield from it
    except MetaflowException:
        raise
    except DATA_ERRORS as exc:
        raise _corrupt(obj, name, exc) from None


def guarded(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``fn`` (a method or property getter) with bad-data errors translated."""

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(self, *args, **kwargs)
        except MetaflowException:
            raise
        except DATA_ERRORS as exc:
            raise _corrupt(self, name, exc) from None
        if isinstance(result, types.GeneratorType):
            return _guard_iter(self, name, result)
        return result

    return wrapper


def guard_class(cls: type) -> None:
    """Guard every public method and property ``cls`` itself defines (and the dunders
    that read the file)."""
    for name, value in list(vars(cls).items()):
        if name.startswith("_") and name not in _GUARDED_DUNDERS:
            continue
        if isinstance(value, property) and value.fget is not None:
            setattr(
                cls,
                name,
                property(guarded(value.fget, name), value.fset, value.fdel, value.__doc__),
            )
        elif isinstance(value, types.FunctionType):
            setattr(cls, name, guarded(value, name))

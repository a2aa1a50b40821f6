"""Hostile values read through the Client API become mfstore errors (issue 12).

A received file's rows are data its author chose: a timestamp of 2**62, a NULL where a
value belongs, bad JSON, a missing blob. Whatever Python raises while turning such a
row into a property (``ValueError``, ``TypeError``, ``OverflowError``,
``RecursionError``, ``MemoryError``, ``IndexError``, ``UnicodeError``) is re-raised as
``MetaflowDataCorruption`` naming the object, the property and the bad value found.
``KeyError`` (Metaflow's answer for a missing child) and mfstore's own errors pass
through unchanged.

Only errors the data caused are translated: when such an error escapes, the file is
checked for values mfstore never writes (``query.hostile``). If none is found, the
error is a bug (in mfstore, or a wrong argument from the caller) and is raised as it
is, with its traceback -- never disguised as corruption. Objects that hold only values
already read (code packages, ``.data``, triggers) have no file to check: their errors
are the data's.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterator
from typing import Any

from .. import query
from ..exception import MetaflowDataCorruption, MetaflowException
from ..provider import current_store

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


def _bad_value(obj: Any, name: str) -> str | None:
    """What hostile value the file of ``obj`` holds ("" when ``obj`` has no file to
    check: it holds values read already), or None when the file holds none."""
    store = getattr(obj, "_store", None)
    if store is None:
        if name != "__init__":
            return ""
        try:  # a constructor that failed before it kept its store: the current file
            store = current_store()
        except MetaflowException:
            return ""
    try:
        with store.read():
            for what, sql in query.compile_hostile_value_checks():
                row = store.one(sql)
                if row is not None:
                    return f"{what}: {row[0]!r}"
    except MetaflowException:
        return ""  # the file cannot even be checked: its data is the problem
    return None


def _translate(obj: Any, name: str, exc: BaseException) -> BaseException:
    """``MetaflowDataCorruption`` when the data caused ``exc``; else ``exc`` itself."""
    if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:
        return exc  # raised by the call itself: the caller's arguments do not fit
    found = _bad_value(obj, name)
    if found is None:
        return exc  # the file holds nothing mfstore never writes: a bug, shown as one
    what = getattr(obj, "_pathspec", None) or type(obj).__name__
    detail = " ".join(str(exc).split())[:160]
    seen = f"; {found}" if found else ""
    return MetaflowDataCorruption(
        f"{type(obj).__name__} {what}: {name} cannot be read, the file holds a bad value "
        f"({type(exc).__name__}: {detail}{seen}); run `mfstore verify` and use a good copy"
    )


def _raise_if_bad_data(obj: Any, name: str, exc: BaseException) -> None:
    """Raise the ``MetaflowDataCorruption`` for ``exc`` when the data caused it (never
    for mfstore's own errors); return when ``exc`` should propagate as it is."""
    if isinstance(exc, MetaflowException):
        return
    error = _translate(obj, name, exc)
    if error is not exc:
        raise error from None


def _guard_iter(obj: Any, name: str, it: Iterator[Any]) -> Iterator[Any]:
    try:
        yield from it
    except DATA_ERRORS as exc:
        _raise_if_bad_data(obj, name, exc)
        raise


def guarded(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``fn`` (a method or property getter) with bad-data errors translated."""

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(self, *args, **kwargs)
        except DATA_ERRORS as exc:
            _raise_if_bad_data(self, name, exc)
            raise
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

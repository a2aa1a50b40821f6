"""The global namespace: ``namespace()``, ``get_namespace()``, ``default_namespace()``.

A namespace is just a tag (user or system) that objects must carry to be visible;
``None`` means "all objects". The default is resolved lazily, at the first
``get_namespace()``, because the environment may change after import.
"""

from __future__ import annotations

import os
from typing import Final

from ..env import MFSTORE_NAMESPACE
from ..identity import resolve_identity

__all__ = ["UNSET", "default_namespace", "get_namespace", "namespace"]


class _Unset:
    """Sentinel type: the namespace has not been resolved yet (Metaflow uses ``False``)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<namespace not resolved yet>"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "UNSET"


#: "Not resolved yet": the first ``get_namespace()`` reads ``$MFSTORE_NAMESPACE`` or
#: calls ``default_namespace()``.
UNSET: Final = _Unset()

_current: str | _Unset | None = UNSET


def namespace(ns: str | None) -> str | None:
    """
    Switch namespace to the one provided.

    This call has a global effect. No objects outside this namespace
    will be accessible. To access all objects regardless of namespaces,
    pass None to this call.

    Parameters
    ----------
    ns : str, optional
        Namespace to switch to or None to ignore namespaces.

    Returns
    -------
    str, optional
        Namespace set (result of get_namespace()).
    """
    global _current
    _current = ns
    return get_namespace()


def get_namespace() -> str | None:
    """
    Return the current namespace that is currently being used to filter objects.

    The namespace is a tag associated with all objects in Metaflow. Until a namespace
    is set, the first call resolves it: ``$MFSTORE_NAMESPACE`` if set (the empty string
    meaning None), else ``default_namespace()``.

    Returns
    -------
    str, optional
        The current namespace used to filter objects.
    """
    global _current
    if _current is UNSET:
        env = os.environ.get(MFSTORE_NAMESPACE)
        if env is not None:
            _current = env or None
        else:
            default_namespace()
    return _current  # type: ignore[return-value]


def default_namespace() -> str:
    """
    Resets the namespace used to filter objects to the default one, i.e. the one that was
    used prior to any `namespace` calls.

    The default is ``production:<METAFLOW_PRODUCTION_TOKEN>`` when that variable is set,
    else ``user:<username>``; ``MetaflowUnknownUser`` if no user name can be found.

    Returns
    -------
    str
        The result of get_namespace() after the namespace has been reset.
    """
    global _current
    _current = resolve_identity()
    return _current


def _reset() -> None:
    """Forget the namespace (back to unresolved); for tests."""
    global _current
    _current = UNSET

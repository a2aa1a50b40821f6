"""Containers: ``MetaflowData`` (values by attribute), ``Metadata``, ``MetaflowArtifacts``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from ._guard import guard_class

__all__ = ["Metadata", "MetaflowArtifacts", "MetaflowData"]

#: Type of ``Task.artifacts``: a namedtuple of ``DataArtifact`` whose fields are the
#: artifact names (built per task, as in Metaflow).
MetaflowArtifacts = NamedTuple


class Metadata(NamedTuple):
    """One metadata event of a task (``Task.metadata``).

    ``created_at`` is in epoch milliseconds (an int, as in Metaflow); ``value`` is a
    string, except for values recorded as JSON (e.g. ``foreach-stack``, a list).
    """

    name: str
    """Metadata field name, e.g. ``'attempt'``."""
    value: Any
    """The value."""
    created_at: int
    """Epoch milliseconds."""
    type: str
    """Metadata type."""
    task: Any
    """The ``Task`` it belongs to."""


class MetaflowData:
    """
    Container of data artifacts produced by a `Task`. This object is
    instantiated through `Task.data`.

    `MetaflowData` allows results to be retrieved by their name
    through a convenient dot notation:

    ```python
    Task(...).data.my_object
    ```

    You can also test the existence of an object

    ```python
    if 'my_object' in Task(...).data:
        print('my_object found')
    ```

    Values are loaded when accessed. If your `Task` contains a lot of data,
    loading artifacts individually is a little cheaper:

    ```
    Task(...)['my_object'].data
    ```
    """

    def __init__(self, artifacts: Iterable[Any]) -> None:
        self._artifacts = {art.id: art for art in artifacts}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_artifacts":
            raise AttributeError(name)
        if name not in self._artifacts:
            raise AttributeError(name)
        return self._artifacts[name].data

    def __contains__(self, var: object) -> bool:
        """True if the task has a (public) artifact named ``var``."""
        return var in self._artifacts

    def __dir__(self) -> list[str]:
        return list(self._artifacts.keys()) + list(object.__dir__(self))

    def __str__(self) -> str:
        return "<MetaflowData: {}>".format(", ".join(self._artifacts))

    def __repr__(self) -> str:
        return str(self)


guard_class(MetaflowData)

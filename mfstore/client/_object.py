"""``MetaflowObject``: what Flow, Run, Step, Task and DataArtifact share.

Each object holds the ``Store`` it was read from and the one row found by an indexed
lookup; everything else is loaded on first use. Parent and child classes are wired
in ``mfstore/client/__init__.py`` (direct references, no string registry).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from .. import provider, query
from ..exception import (
    MetaflowInternalError,
    MetaflowInvalidPathspec,
    MetaflowNamespaceMismatch,
    MetaflowNotFound,
)
from ..store import Store
from ._guard import guard_class
from .namespace import get_namespace

#: Attempts are numbered 0 .. MAX_ATTEMPTS - 1 (Metaflow's MAX_ATTEMPTS).
MAX_ATTEMPTS = 6

#: Version tag written by ``__getstate__`` (Metaflow's current pickle layout).
_PICKLE_VERSION = "2.12.27"

_TagPair = tuple[frozenset[str], frozenset[str]]
_EMPTY: frozenset[str] = frozenset()


def ms_to_datetime(ts: int | None) -> datetime | None:
    """Metaflow's ``created_at``: a naive local datetime from epoch milliseconds."""
    return None if ts is None else datetime.fromtimestamp(ts / 1000.0)


def tagset_tags(store: Store, tagset_id: int) -> _TagPair:
    """``(user_tags, system_tags)`` of a tag set.

    Remembered only until the file changes (``Store.memo``): a tag set never changes
    once written, but ``mfstore delete`` in another process drops unused tag sets and
    SQLite may hand a dropped set's id to the next new one.
    """

    def read() -> _TagPair:
        return query.tag_groups(store.query(*query.compile_tagset(tagset_id)))

    pair: _TagPair = store.memo(("tagset", tagset_id), read)
    return pair


def store_for(metadata_str: str | None) -> Store:
    """The store named by a ``get_metadata()`` string (pickles), or the current one."""
    if not metadata_str:
        return provider.current_store()
    kind, sep, info = metadata_str.partition("@")
    if sep and kind == "local" and not info.startswith("<"):
        if os.path.exists(info):
            return provider.open_store(info)
        raise MetaflowNotFound(f"The mfstore file {info} does not exist")
    return provider.current_store()


def metadata_str(store: Store) -> str:
    """``get_metadata()``-style name of a store."""
    if store.memory:
        return provider.get_metadata()
    return f"local@{store.path.absolute()}"


def check_attempt(name: str, attempt: Any) -> int:
    """Metaflow's attempt validation (errors are ``MetaflowNotFound``)."""
    if name not in ("task", "artifact"):
        raise MetaflowNotFound("Attempts can only be specified for Task or DataArtifact")
    try:
        value = int(attempt)
    except (ValueError, TypeError):
        raise MetaflowNotFound("Attempt can only be an integer") from None
    if value < 0:
        raise MetaflowNotFound("Attempt can only be non-negative")
    if value >= MAX_ATTEMPTS:
        raise MetaflowNotFound(f"Attempt can only be smaller than {MAX_ATTEMPTS}")
    return value


#: The class of an object's children (``Run`` for a ``Flow``, ..., ``Never`` for a
#: ``DataArtifact``): what ``obj[id]`` and ``iter(obj)`` give.
_Child = TypeVar("_Child", bound="MetaflowObject[Any]")


class MetaflowObject(Generic[_Child]):
    """
    Base class for all Metaflow objects.

    Creates a new object of a specific type (Flow, Run, Step, Task, DataArtifact) given
    a path to it (its `pathspec`).

    Accessing Metaflow objects is done through one of two methods:
      - either by directly instantiating it with this class
      - or by accessing it through its parent (iterating over
        all children or accessing directly using the [] operator)

    With this class, you can:
      - Get a `Flow`; use `Flow('FlowName')`.
      - Get a `Run` of a flow; use `Run('FlowName/RunID')`.
      - Get a `Step` of a run; use `Step('FlowName/RunID/StepName')`.
      - Get a `Task` of a step, use `Task('FlowName/RunID/StepName/TaskID')`
      - Get a `DataArtifact` of a task; use
           `DataArtifact('FlowName/RunID/StepName/TaskID/ArtifactName')`.

    The object keeps the namespace in force when it was created: if that was None,
    neither it nor any child it yields is ever namespace-checked.

    Attributes
    ----------
    tags : FrozenSet[str]
        Tags associated with the run this object belongs to (user and system tags).
    user_tags: FrozenSet[str]
        User tags associated with the run this object belongs to.
    system_tags: FrozenSet[str]
        System tags associated with the run this object belongs to.
    created_at : datetime
        Date and time this object was first created.
    parent : MetaflowObject
        Parent of this object. The parent of a `Run` is a `Flow` for example
    pathspec : str
        Pathspec of this object (for example: 'FlowName/RunID' for a `Run`)
    path_components : List[str]
        Components of the pathspec
    origin_pathspec : str, optional
        Pathspec of the original object this object was cloned from (in the case of a resume).
        None if not applicable.
    """

    _NAME: ClassVar[str] = "base"
    _DEPTH: ClassVar[int] = 0
    _EXPECTS: ClassVar[str] = ""
    _PARENT_CLASS: ClassVar[type[MetaflowObject[Any]] | None] = None
    _CHILD_CLASS: ClassVar[type[MetaflowObject[Any]] | None] = None

    _store: Store
    _attempt: int | None
    _current_namespace: str | None
    _namespace_check: bool

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Hostile values in a received file raise mfstore errors, never tracebacks.
        super().__init_subclass__(**kwargs)
        guard_class(cls)

    _pathspec: str
    _components: list[str]
    _parent: MetaflowObject[Any] | None
    _ts: int
    _tagset_id: int | None
    _run_pk: int | None
    id: str

    def __init__(
        self,
        pathspec: str | None = None,
        attempt: int | None = None,
        _namespace_check: bool = True,
        _current_namespace: str | None = None,
        _current_metadata: str | None = None,
    ) -> None:
        self._store = store_for(_current_metadata)
        self._parent = None
        self._attempt = None if attempt is None else check_attempt(self._NAME, attempt)
        self._current_namespace = _current_namespace or get_namespace()
        self._namespace_check = bool(_namespace_check) and self._current_namespace is not None
        if not isinstance(pathspec, str) or not pathspec:
            raise MetaflowInvalidPathspec(self._EXPECTS)
        ids = pathspec.split("/")
        if len(ids) != self._DEPTH:
            raise MetaflowInvalidPathspec(self._EXPECTS)
        self.id = ids[-1]
        self._pathspec = pathspec
        self._components = ids
        row = self._lookup(ids) if query.storable(*ids) else None
        if row is None:
            raise MetaflowNotFound(f"{self} does not exist")
        self._init_row(row)
        if self._namespace_check and not self._is_in_namespace(self._current_namespace):
            raise MetaflowNamespaceMismatch(self._current_namespace)

    # -- hooks for subclasses -------------------------------------------------------

    def _lookup(self, ids: list[str]) -> tuple[Any, ...] | None:
        raise NotImplementedError

    def _init_row(self, row: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def _child_rows(self) -> list[tuple[Any, ...]]:
        return []

    def _child_row(self, id: str) -> tuple[Any, ...] | None:
        return None

    def _iter_filter(self, child_id: str) -> bool:
        return True

    def _shared_value(self, sha: str) -> bytes | None:
        """The bytes of blob ``sha`` if this object read them already, with others (a
        task of a step's iteration does), for one of its children; else None."""
        return None

    @classmethod
    def _from_row(
        cls,
        parent: MetaflowObject[Any],
        id: str,
        row: tuple[Any, ...],
        *,
        check: bool = False,
    ) -> Any:
        """A child of ``parent`` from a row already read (no query).

        ``check`` tests the namespace, except for a child carrying its parent's tags (the
        same run's tag set): the parent passed the same test (or came from one that did).
        """
        obj = cls.__new__(cls)
        obj._store = parent._store
        obj._parent = parent
        obj._attempt = parent._attempt if cls._NAME in ("task", "artifact") else None
        obj._namespace_check = parent._namespace_check
        obj._current_namespace = parent._current_namespace if parent._namespace_check else None
        obj.id = id
        obj._pathspec = f"{parent._pathspec}/{id}"
        obj._components = [*parent._components, id]
        obj._init_row(row)
        if (
            check
            and obj._namespace_check
            and (obj._tagset_id is None or obj._tagset_id != parent._tagset_id)
            and not obj._is_in_namespace(obj._current_namespace)
        ):
            raise MetaflowNamespaceMismatch(obj._current_namespace)
        return obj

    # -- namespace ----------------------------------------------------------------

    def is_in_namespace(self) -> bool:
        """
        Returns whether this object is in the current namespace.

        If the current namespace is None, this will always return True. The *global*
        current namespace is used, not the one this object was created in.

        Returns
        -------
        bool
            Whether or not the object is in the current namespace
        """
        return self._is_in_namespace(get_namespace())

    def _is_in_namespace(self, ns: str | None) -> bool:
        return ns is None or ns in self.tags

    # -- children -----------------------------------------------------------------

    def __iter__(self) -> Iterator[_Child]:
        """
        Iterate over all child objects of this object if any.

        Note that only children present in the current namespace are returned if and
        only if _namespace_check is set. Children come newest first (by ``created_at``).

        Yields
        ------
        MetaflowObject
            Children of this object
        """
        child = self._CHILD_CLASS
        if child is None:
            return iter(())
        rows = self._child_rows()
        return iter(
            [child._from_row(self, row[0], row[1:]) for row in rows if self._iter_filter(row[0])]
        )

    def _filtered_children(self, *tags: str) -> Iterator[Any]:
        """Children having all of ``tags`` (for Run/Step/Task: the run's tags)."""
        mine = self.tags
        if self._CHILD_CLASS is not None and self._CHILD_CLASS._NAME != "run":
            # Children carry this object's (the run's) tags: all or nothing.
            if all(tag in mine for tag in tags):
                yield from self
            return
        for obj in self:
            if all(tag in obj.tags for tag in tags):
                yield obj

    def _ipython_key_completions_(self) -> list[str]:
        """Returns available options for ipython auto-complete."""
        return [child.id for child in self._filtered_children()]

    def __getitem__(self, id: str) -> _Child:
        """
        Returns the child object named 'id': the Run with that run ID of a Flow, the
        Step with that step name of a Run, the Task with that task ID of a Step, the
        DataArtifact with that artifact name of a Task.

        Parameters
        ----------
        id : str
            Run ID, step name, task ID or artifact name

        Returns
        -------
        Run, Step, Task or DataArtifact
            The child object with this ID in this object

        Raises
        ------
        KeyError
            If the name does not identify a valid child object
        MetaflowNamespaceMismatch
            If the child exists but is not in this object's namespace
        """
        child = self._CHILD_CLASS
        row = (
            self._child_row(id)
            if child is not None and isinstance(id, str) and query.storable(id)
            else None
        )
        if row is None:
            raise KeyError(id)
        assert child is not None
        found: _Child = child._from_row(self, id, row, check=True)
        return found

    def __contains__(self, id: object) -> bool:
        """
        Tests whether a child named 'id' exists (whatever its namespace).

        Parameters
        ----------
        id : str
            Name of the child object

        Returns
        -------
        bool
            True if the child exists or False otherwise
        """
        if self._CHILD_CLASS is None or not isinstance(id, str) or not query.storable(id):
            return False
        return self._child_row(id) is not None

    # -- identity -----------------------------------------------------------------

    def __str__(self) -> str:
        if self._attempt is not None:
            return f"{self.__class__.__name__}('{self._pathspec}', attempt={self._attempt})"
        return f"{self.__class__.__name__}('{self._pathspec}')"

    def __repr__(self) -> str:
        return str(self)

    def __getstate__(self) -> dict[str, Any]:
        """
        Pickle as Metaflow does: the pathspec, attempt, file, namespace and namespace
        check; unpickling re-reads the object from the file.
        """
        return {
            "version": _PICKLE_VERSION,
            "data": [
                self._pathspec,
                self._attempt,
                metadata_str(self._store),
                self._current_namespace,
                self._namespace_check,
            ],
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Re-read the object from its file (see ``__getstate__``)."""
        if "version" in state and "data" in state:
            data = state["data"]
            if state["version"] != _PICKLE_VERSION or len(data) != 5:
                raise MetaflowInternalError(
                    "Unpickling this object requires a Metaflow version greater than or equal to {}".format(
                        state["version"]
                    )
                )
            pathspec, attempt, md, ns, check = data
            self.__init__(  # type: ignore[misc]
                pathspec,
                attempt,
                _namespace_check=check,
                _current_namespace=ns,
                _current_metadata=md,
            )
        else:
            self.__init__(  # type: ignore[misc]
                state.get("_pathspec"), state.get("_attempt"), _namespace_check=False
            )

    # -- properties ---------------------------------------------------------------

    @property
    def tags(self) -> frozenset[str]:
        """
        Tags associated with this object.

        Tags can be user defined or system defined. This returns all tags associated
        with the object (for a Step, Task or DataArtifact: the tags of its run).

        Returns
        -------
        Set[str]
            Tags associated with the object
        """
        user, system = self._tag_pair()
        return user | system

    @property
    def system_tags(self) -> frozenset[str]:
        """The tags the runtime set (``user:<name>`` or ``production:<token>``,
        ``runtime:<kind>``, ``python_version:<v>``, ``project:<name>`` ...): the part of
        ``tags`` that ``remove_tag`` refuses to remove."""
        return self._tag_pair()[1]

    @property
    def user_tags(self) -> frozenset[str]:
        """The user-defined part of ``tags`` (the rest are ``system_tags``)."""
        return self._tag_pair()[0]

    def _tag_pair(self) -> _TagPair:
        """``(user_tags, system_tags)`` of the run this object belongs to."""
        if self._tagset_id is None:
            return _EMPTY, _EMPTY
        return tagset_tags(self._store, self._tagset_id)

    @property
    def created_at(self) -> datetime:
        """
        Creation time for this object.

        This corresponds to the time the object's existence was first created which typically means
        right before any code is run. Tag edits never change it.

        Returns
        -------
        datetime
            Date time of this object's creation (naive, local time).
        """
        return datetime.fromtimestamp(self._ts / 1000.0)

    @property
    def origin_pathspec(self) -> str | None:
        """
        The pathspec of the object from which the current object was cloned.

        Set only for objects produced by ``resume``; None otherwise.

        Returns:
            str, optional
                pathspec of the origin object from which current object was cloned.
        """
        parent = self.parent
        origin = parent.origin_pathspec if parent is not None else None
        return None if origin is None else f"{origin}/{self.id}"

    @property
    def parent(self) -> Any:
        """
        Returns the parent object of this object or None if none exists.

        Returns
        -------
        MetaflowObject, optional
            The parent of this object
        """
        cls = self._PARENT_CLASS
        if cls is None:
            return None
        if self._parent is None:
            attempt = self._attempt if self._NAME == "artifact" else None
            self._parent = cls(
                self._pathspec.rsplit("/", 1)[0],
                attempt=attempt,
                _namespace_check=False,
                _current_metadata=metadata_str(self._store),
            )
        return self._parent

    @property
    def pathspec(self) -> str:
        """
        Returns a string representation uniquely identifying this object.

        The string is the same as the one you would pass into the constructor
        to build this object except if you are looking for a specific attempt of
        a task or a data artifact (in which case you need to add `attempt=<attempt>`
        in the constructor).

        Returns
        -------
        str
            Unique representation of this object
        """
        return self._pathspec

    @property
    def path_components(self) -> list[str]:
        """
        List of individual components of the pathspec.

        Returns
        -------
        List[str]
            Individual components of the pathspec
        """
        return list(self._components)


guard_class(MetaflowObject)

"""``Metaflow``: the entry point listing flows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import query
from ..provider import current_store
from ._guard import guard_class
from ._object import store_for
from .flow import Flow, flow_from_listing
from .namespace import get_namespace


class Metaflow:
    """
    Entry point to all objects in the Metaflow universe.

    This object can be used to list all the flows present either through the explicit property
    or by iterating over this object.

    Attributes
    ----------
    flows : List[Flow]
        Returns the list of all `Flow` objects known to this metadata provider. Note that only
        flows present in the current namespace will be returned. A `Flow` is present in a namespace
        if it has at least one run in the namespace.
    """

    def __init__(self, _current_metadata: str | None = None) -> None:
        self._current_metadata = _current_metadata
        self._store = store_for(_current_metadata) if _current_metadata else current_store()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle as the file in use (``local@<path>``); unpickling reopens it."""
        from ._object import metadata_str

        return {"metadata": metadata_str(self._store)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Reopen the file the pickled object read."""
        self._current_metadata = state.get("metadata")
        self._store = (
            store_for(self._current_metadata) if self._current_metadata else current_store()
        )

    @property
    def flows(self) -> list[Flow]:
        """
        Returns a list of all the flows present, sorted by name.

        Only flows present in the set namespace are returned. A flow is present in a namespace if
        it has at least one run that is in the namespace.

        Returns
        -------
        List[Flow]
            List of all flows present.
        """
        return list(self)

    def __iter__(self) -> Iterator[Flow]:
        """
        Iterator over all flows present, sorted by name.

        Only flows present in the set namespace are returned. A flow is present in a
        namespace if it has at least one run that is in the namespace.

        Yields
        -------
        Flow
            A Flow present in the Metaflow universe.
        """
        ns = get_namespace()
        if not query.storable(ns):
            return iter([])
        # The query keeps the flows in the namespace: no lookup or check per flow.
        rows = self._store.query(*query.compile_flows(ns, created=True))
        return iter([flow_from_listing(self._store, row, ns) for row in rows])

    def __str__(self) -> str:
        return "Metaflow()"

    def __repr__(self) -> str:
        return "Metaflow()"

    def __getitem__(self, name: str) -> Flow:
        """
        Returns a specific flow by name.

        The flow will only be returned if it is present in the current namespace.

        Parameters
        ----------
        name : str
            Name of the Flow

        Returns
        -------
        Flow
            Flow with the given name.
        """
        return Flow(name, _current_metadata=self._current_metadata)

    def _ipython_key_completions_(self) -> list[str]:
        return [flow.id for flow in self]


guard_class(Metaflow)

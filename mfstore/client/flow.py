"""``Flow``: all runs of one FlowSpec class; namespace and tag filters run as indexed SQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .. import query
from ._object import MetaflowObject

if TYPE_CHECKING:
    from ..store import Store
    from .run import Run


class Flow(MetaflowObject["Run"]):
    """
    A Flow represents all existing flows with a certain name, in other words,
    classes derived from `FlowSpec`. A container of `Run` objects.

    In a namespace, ``Flow(name)`` raises ``MetaflowNamespaceMismatch`` unless at least
    one run of the flow is in the namespace.

    Attributes
    ----------
    latest_run : Run
        Latest `Run` (in progress or completed, successfully or not) of this flow.
    latest_successful_run : Run
        Latest successfully completed `Run` of this flow.
    """

    _NAME = "flow"
    _DEPTH = 1
    _EXPECTS = "Expects Flow('FlowName')"

    def _lookup(self, ids: list[str]) -> tuple[Any, ...] | None:
        return self._store.one(*query.compile_flow_lookup(ids[0]))

    def _init_row(self, row: tuple[Any, ...]) -> None:
        self._ts = row[-1]
        self._tagset_id = None
        self._run_pk = None

    def _is_in_namespace(self, ns: str | None) -> bool:
        if ns is None:
            return True
        if not query.storable(ns):
            return False
        store = self._store
        return bool(
            store.memo(
                ("flow-in-ns", self.id, ns),
                lambda: store.one(*query.compile_flow_in_namespace(self.id, ns)) is not None,
            )
        )

    def _wanted(self, tags: Sequence[str]) -> tuple[list[str], int] | None:
        """Required tags, rarest first, and how many tag sets hold the rarest one
        (0 without tags); None if some tag is on no tag set (no run can match)."""
        ns = self._current_namespace if self._namespace_check else None
        wanted = query.required_tags(ns, tags)
        if not query.storable(*wanted):
            return None
        if not wanted:
            return wanted, 0
        store = self._store
        counts = store.memo(
            ("tag-counts", self.id, tuple(wanted)),
            lambda: dict(store.query(*query.compile_tag_counts(self.id, wanted))),
        )
        return query.rarest_first(wanted, counts)

    def _seek_rows(
        self, wanted: list[str], *, successful: bool, before: tuple[int, str] | None = None
    ) -> Iterator[tuple[Any, ...]]:
        """Matching rows newest first, in growing pages of one seek per matching tag set."""
        for limit in (*query.RUN_PAGES, None):
            rows = self._store.query(
                *query.compile_runs(
                    self.id, wanted, successful=successful, before=before, limit=limit
                )
            )
            yield from rows
            if limit is None or len(rows) < limit:
                return
            before = query.page_after(rows[-1])

    def _iter_rows(
        self, tags: Sequence[str], *, successful: bool = False
    ) -> Iterator[tuple[Any, ...]]:
        """Matching run rows, newest first.

        When the rarest required tag is on few tag sets, one index seek per matching tag
        set answers directly. Otherwise the newest runs are walked first (a common
        filter is answered after a few rows), then the older ones by seeks.
        """
        found = self._wanted(tags)
        if found is None:
            return
        wanted, fewest = found
        if query.seek_per_tagset(wanted, fewest):
            yield from self._seek_rows(wanted, successful=successful)
            return
        store = self._store
        bound = store.one(*query.compile_window_bound(self.id, successful=successful))
        yield from store.query(
            *query.compile_window(self.id, wanted, successful=successful, bound=bound)
        )
        if bound is not None:
            yield from self._seek_rows(wanted, successful=successful, before=bound)

    def _latest_row(self, *, successful: bool) -> list[tuple[Any, ...]]:
        found = self._wanted(())
        if found is None:
            return []
        wanted, fewest = found
        store = self._store
        if query.seek_per_tagset(wanted, fewest, latest=True):
            return store.query(
                *query.compile_runs(self.id, wanted, successful=successful, latest=True)
            )
        bound = store.one(*query.compile_window_bound(self.id, successful=successful))
        rows = store.query(
            *query.compile_window(self.id, wanted, successful=successful, bound=bound, first=True)
        )
        if rows or bound is None:
            return rows
        return store.query(
            *query.compile_runs(self.id, wanted, successful=successful, latest=True, before=bound)
        )

    def _make_runs(self, rows: list[tuple[Any, ...]]) -> list[Run]:
        cls = self._CHILD_CLASS
        assert cls is not None
        return [cls._from_row(self, row[2], row) for row in rows]

    def _child_rows(self) -> list[tuple[Any, ...]]:
        raise NotImplementedError  # __iter__ is overridden

    def _child_row(self, id: str) -> tuple[Any, ...] | None:
        return self._store.one(*query.compile_run_lookup(self.id, id))

    @property
    def latest_run(self) -> Run | None:
        """
        Returns the latest run (either in progress or completed) of this flow.

        Note that an in-progress run may be returned by this call. Use latest_successful_run
        to get an object representing a completed successful run.

        Returns
        -------
        Run, optional
            Latest run of this flow
        """
        runs = self._make_runs(self._latest_row(successful=False))
        return runs[0] if runs else None

    @property
    def latest_successful_run(self) -> Run | None:
        """
        Returns the latest successful run of this flow.

        Returns
        -------
        Run, optional
            Latest successful run of this flow
        """
        runs = self._make_runs(self._latest_row(successful=True))
        return runs[0] if runs else None

    def runs(self, *tags: str) -> Iterator[Run]:
        """
        Returns an iterator over all `Run`s of this flow.

        An optional filter is available that allows you to filter on tags.
        If multiple tags are specified, only runs that have all the
        specified tags are returned.

        Parameters
        ----------
        tags : str
            Tags to match.

        Yields
        ------
        Run
            `Run` objects in this flow.
        """
        cls = self._CHILD_CLASS
        assert cls is not None
        return (cls._from_row(self, row[2], row) for row in self._iter_rows(tags))

    def _filtered_children(self, *tags: str) -> Iterator[Run]:
        return self.runs(*tags)

    def __iter__(self) -> Iterator[Run]:
        """
        Iterate over all children Run of this Flow.

        Note that only runs in the current namespace are returned unless
        _namespace_check is False

        Yields
        ------
        Run
            A Run in this Flow
        """
        return self.runs()


def flow_from_listing(store: Store, row: tuple[Any, ...], namespace: str | None) -> Flow:
    """A flow from a ``compile_flows(created=True)`` row (already known to be in
    ``namespace``), without a query of its own (``Metaflow().flows``)."""
    flow = Flow.__new__(Flow)
    flow._store = store
    flow._parent = None
    flow._attempt = None
    flow._current_namespace = namespace
    flow._namespace_check = namespace is not None
    flow.id = row[0]
    flow._pathspec = row[0]
    flow._components = [row[0]]
    flow._init_row(row)
    return flow

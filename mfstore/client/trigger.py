"""``MetaflowTrigger`` / ``MetaflowEvent``: what started a run (from ``trigger_events``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

from ._guard import guard_class


class MetaflowEvent(NamedTuple):
    """
    Container of metadata that identifies the event that triggered
    the `Run` under consideration.

    Attributes
    ----------
    name : str
        name of the event.
    id : str
        unique identifier for the event.
    timestamp : datetime
        timestamp recording creation time for the event.
    type : str
        type for the event - one of `event` or `run`
    """

    name: str
    """Name of the event (or ``metaflow.<Flow>.<end step>`` for a run)."""
    id: str
    """Unique identifier of the event (for a run: the triggering pathspec)."""
    timestamp: datetime
    """Creation time of the event (naive local time)."""
    type: str
    """``'event'`` or ``'run'``."""


class MetaflowTrigger:
    """
    Defines a container of event triggers' metadata (``Run.trigger``).
    """

    def __init__(
        self,
        events: list[MetaflowEvent],
        pathspecs: list[str | None],
        open_run: Callable[[str], Any] | None = None,
    ) -> None:
        self._events = events
        self._pathspecs = pathspecs
        # Opens a triggering run by pathspec; the run owning this trigger gives it (its own
        # class and file), so this module does not import .run.
        self._open_run = open_run
        self._runs: list[Any] | None = None

    @property
    def event(self) -> MetaflowEvent | None:
        """
        The `MetaflowEvent` object corresponding to the triggering event.

        If multiple events triggered the run, this property is the latest event.

        Returns
        -------
        MetaflowEvent, optional
            The latest event that triggered the run, if applicable.
        """
        return next(iter(self._events), None)

    @property
    def events(self) -> list[MetaflowEvent] | None:
        """
        The list of `MetaflowEvent` objects correspondings to all the triggering events.

        Returns
        -------
        List[MetaflowEvent], optional
            List of all events that triggered the run
        """
        return list(self._events) or None

    @property
    def run(self) -> Any | None:
        """
        The corresponding `Run` object if the triggering event is a Metaflow run.

        In case multiple runs triggered the run, this property is the latest run.
        Returns `None` if none of the triggering events are a `Run`.

        Returns
        -------
        Run, optional
            Latest Run that triggered this run, if applicable.
        """
        runs = self.runs
        return runs[0] if runs else None

    @property
    def runs(self) -> list[Any] | None:
        """
        The list of `Run` objects in the triggering events.

        Returns `None` if none of the triggering events are `Run` objects.

        Returns
        -------
        List[Run], optional
            List of runs that triggered this run, if applicable.
        """
        if self._runs is None:
            open_run = self._open_run
            self._runs = [
                open_run("/".join((pathspec or event.id).split("/")[:2]))
                for event, pathspec in zip(self._events, self._pathspecs, strict=True)
                if event.type == "run" and open_run is not None
            ]
        return list(self._runs) or None

    def __getitem__(self, key: str) -> Any:
        """
        If triggering events are runs, `key` corresponds to the flow name of the triggering run.
        Otherwise, `key` corresponds to the event name and a `MetaflowEvent` object is returned.

        Returns
        -------
        Union[Run, MetaflowEvent]
            `Run` object if triggered by a run. Otherwise returns a `MetaflowEvent`.
        """
        runs = self.runs
        if runs:
            for run in runs:
                if run.path_components[0] == key:
                    return run
        elif self.events:
            for event in self._events:
                if event.name == key:
                    return event
        raise KeyError(key)

    def __iter__(self) -> Iterator[MetaflowEvent]:
        """The triggering events, latest first."""
        return iter(self._events)

    def __contains__(self, ident: object) -> bool:
        """True if ``self[ident]`` would succeed."""
        try:
            return isinstance(ident, str) and bool(self.__getitem__(ident))
        except KeyError:
            return False

    def __repr__(self) -> str:
        return f"MetaflowTrigger({self._events!r})"


#: Metaflow's name for the same class.
Trigger = MetaflowTrigger


guard_class(MetaflowTrigger)


def trigger_from_rows(rows: list[tuple[Any, ...]], run_cls: type, metadata: str) -> MetaflowTrigger:
    """The ``MetaflowTrigger`` of a run from its ``compile_trigger_events`` rows: a
    triggering run opens as ``run_cls`` on the file ``metadata`` names (the run's own)."""
    events = []
    pathspecs = []
    for name, event_id, typ, ts, pathspec, _payload in rows:
        events.append(MetaflowEvent(name, event_id, datetime.fromtimestamp(ts / 1000.0), typ))
        pathspecs.append(pathspec if typ == "run" else None)
    return MetaflowTrigger(
        events, pathspecs, partial(run_cls, _namespace_check=False, _current_metadata=metadata)
    )

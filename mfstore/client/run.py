"""``Run``: one execution of a flow; status, end task, data, code, trigger and tag edits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .. import query
from ..exception import MetaflowTaggingError
from ..tags import validate_tag
from ._object import MetaflowObject, ms_to_datetime

if TYPE_CHECKING:
    from datetime import datetime

    from ..tags import Provenance
    from .code import MetaflowCode
    from .data import MetaflowData
    from .step import Step
    from .task import Task
    from .trigger import MetaflowTrigger

_COL = {name: i for i, name in enumerate(query.RUN_COLUMNS)}


def _tag_list(tags: Any, what: str) -> list[Any]:
    if tags is None:
        return []
    if isinstance(tags, (str, bytes)):
        raise MetaflowTaggingError(f"{what} may not be a string")
    try:
        return list(tags)
    except TypeError:
        raise MetaflowTaggingError(f"{what} must be iterable") from None


class Run(MetaflowObject["Step"]):
    """
    A `Run` represents an execution of a `Flow`. It is a container of `Step`s.

    Attributes
    ----------
    data : MetaflowData
        A shortcut to the terminal step's task data produced by this run.
    successful : bool
        True if the run completed successfully.
    finished : bool
        True if the run completed (successfully or not).
    finished_at : datetime
        Time this run finished.
    code : MetaflowCode
        Code package for this run (if present). See `MetaflowCode`.
    trigger : MetaflowTrigger
        Information about event(s) that triggered this run (if present). See `MetaflowTrigger`.
    end_task : Task
        `Task` for the terminal step (if it is present already).
    """

    _NAME = "run"
    _DEPTH = 2
    _EXPECTS = "Expects Run('FlowName/RunID')"

    _row: tuple[Any, ...]

    def _lookup(self, ids: list[str]) -> tuple[Any, ...] | None:
        return self._store.one(*query.compile_run_lookup(ids[0], ids[1]))

    def _init_row(self, row: tuple[Any, ...]) -> None:
        self._row = row
        self._run_pk = row[0]
        self._tagset_id = row[4]
        self._ts = row[5]
        self._edited_tags: tuple[frozenset[str], frozenset[str]] | None = None

    def _tag_pair(self) -> tuple[frozenset[str], frozenset[str]]:
        edited = getattr(self, "_edited_tags", None)  # absent on an unpickled Run
        return edited if edited is not None else super()._tag_pair()

    def _child_rows(self) -> list[tuple[Any, ...]]:
        return [
            (name, self._run_pk, self._tagset_id, ts)
            for name, ts in self._store.query(*query.compile_steps(self._run_pk))  # type: ignore[arg-type]
        ]

    def _child_row(self, id: str) -> tuple[Any, ...] | None:
        row = self._store.one(*query.compile_steps(self._run_pk, id))  # type: ignore[arg-type]
        return None if row is None else (self._run_pk, self._tagset_id, row[1])

    def _iter_filter(self, child_id: str) -> bool:
        # exclude the _parameters step
        return not child_id.startswith("_")

    def steps(self, *tags: str) -> Iterator[Step]:
        """
        [Legacy function - do not use]

        Returns an iterator over all `Step` objects in the step. This is an alias
        to iterating the object itself, i.e.
        ```
        list(Run(...)) == list(Run(...).steps())
        ```

        Parameters
        ----------
        tags : str
            No op (legacy functionality): steps carry the run's tags, so either all
            steps match or none does.

        Yields
        ------
        Step
            `Step` objects in this run.
        """
        return self._filtered_children(*tags)

    def __iter__(self) -> Iterator[Step]:
        """
        Iterate over all children Step of this Run (newest first; ``_parameters`` is hidden)

        Yields
        ------
        Step
            A Step in this Run
        """
        return super().__iter__()

    # -- status -------------------------------------------------------------------

    @property
    def origin_pathspec(self) -> str | None:
        """
        The pathspec of the run this run was resumed from; None if it was not resumed.

        Returns
        -------
        str, optional
            pathspec of the origin run.
        """
        origin = self._row[_COL["origin_run_number"]]
        return None if origin is None else f"{self._components[0]}/{origin}"

    @property
    def code(self) -> MetaflowCode | None:
        """
        Returns the MetaflowCode object for this run, if present.

        mfstore stores the flow's code package with every run it executes
        (deduplicated), so this is present for local runs too.

        Returns
        -------
        MetaflowCode, optional
            Code package for this run
        """
        sha = self._row[_COL["code_sha"]]
        if sha is None:
            return None
        from .code import MetaflowCode

        return MetaflowCode(self._store, sha, flow_name=self._components[0])

    @property
    def data(self) -> MetaflowData | None:
        """
        Returns a container of data artifacts produced by this run.

        You can access data produced by this run as follows:
        ```
        print(run.data.my_var)
        ```
        This is a shorthand for `run['end'].task.data`. If the 'end' step has not yet
        executed, returns None.

        Returns
        -------
        MetaflowData, optional
            Container of all artifacts produced by this task
        """
        end = self.end_task
        if end is not None:
            return end.data
        return None

    @property
    def successful(self) -> bool:
        """
        Indicates whether or not the run completed successfully.

        A run is successful if its 'end' step is successful.

        Returns
        -------
        bool
            True if the run completed successfully and False otherwise
        """
        return bool(self._row[_COL["status"]] == "successful")

    @property
    def finished(self) -> bool:
        """
        Indicates whether or not the run completed.

        True once the run has ended, whether or not it was successful; False while it
        runs, or if its process died before ending it.

        Returns
        -------
        bool
            True if the run completed and False otherwise
        """
        return bool(self._row[_COL["status"]] != "running")

    @property
    def finished_at(self) -> datetime | None:
        """
        Returns the datetime object of when the run finished (successfully or not).

        If the run has not ended, returns None.

        Returns
        -------
        datetime, optional
            Datetime of when the run finished
        """
        return ms_to_datetime(self._row[_COL["finished_at"]])

    @property
    def end_task(self) -> Task | None:
        """
        Returns the Task corresponding to the terminal step.

        This returns None if the terminal step does not yet exist.

        Returns
        -------
        Task, optional
            The terminal step's task
        """
        try:
            end_step = self[self._row[_COL["end_step"]]]
        except KeyError:
            return None
        return end_step.task

    @property
    def merged_from(self) -> Provenance | None:
        """
        Where this run came from if it was added by ``mfstore merge``, else None.

        mfstore only (Metaflow has no merge). The value records the file it was merged
        from (its name), an id of what was merged, when (ISO 8601 UTC) and by whom; the
        same facts are the run's ``merged-from:`` system tag, so they also show in
        ``mfstore show`` and in the ``mf_runs.system_tags`` / ``mf_run_tags`` views.

        Returns
        -------
        Provenance, optional
            ``file``, ``source_id``, ``merged_at``, ``merged_by``
        """
        from ..tags import parse_provenance

        return parse_provenance(sorted(self.system_tags))

    @property
    def trigger(self) -> MetaflowTrigger | None:
        """
        Returns a container of events that triggered this run.

        This returns None if the run was not triggered by any events.

        Returns
        -------
        MetaflowTrigger, optional
            Container of triggering events
        """
        rows = self._store.query(*query.compile_trigger_events(self._run_pk))  # type: ignore[arg-type]
        if not rows:
            return None
        from ._object import metadata_str
        from .trigger import trigger_from_rows

        return trigger_from_rows(rows, type(self), metadata_str(self._store))

    # -- tags ---------------------------------------------------------------------

    def add_tag(self, tag: str) -> None:
        """
        Add a tag to this `Run`.

        Note that if the tag is already a system tag, it is not added as a user tag,
        and no error is thrown.

        Parameters
        ----------
        tag : str
            Tag to add.
        """
        # Like Metaflow, an iterable of tags is accepted too (legacy): see replace_tag.
        return self.replace_tag([], tag)  # type: ignore[arg-type]

    def add_tags(self, tags: Iterable[str]) -> None:
        """
        Add one or more tags to this `Run`.

        Note that if any tag is already a system tag, it is not added as a user tag
        and no error is thrown. A plain string is one tag.

        Parameters
        ----------
        tags : Iterable[str]
            Tags to add.
        """
        return self.replace_tag([], tags)  # type: ignore[arg-type]

    def remove_tag(self, tag: str) -> None:
        """
        Remove one tag from this `Run`.

        Removing a system tag is an error. Removing a non-existent
        user tag is a no-op.

        Parameters
        ----------
        tag : str
            Tag to remove.
        """
        return self.replace_tag(tag, [])  # type: ignore[arg-type]

    def remove_tags(self, tags: Iterable[str]) -> None:
        """
        Remove one or more tags to this `Run`.

        Removing a system tag will result in an error. Removing a non-existent
        user tag is a no-op. A plain string is refused
        ("tags_to_remove may not be a string").

        Parameters
        ----------
        tags : Iterable[str]
            Tags to remove.
        """
        return self.replace_tags(tags, [])

    def replace_tag(self, tag_to_remove: str, tag_to_add: str) -> None:
        """
        Remove a tag and add a tag atomically. Removal is done first.
        The rules for `Run.add_tag` and `Run.remove_tag` also apply here.

        Parameters
        ----------
        tag_to_remove : str
            Tag to remove.
        tag_to_add : str
            Tag to add.
        """
        remove: Any = [tag_to_remove] if isinstance(tag_to_remove, (str, bytes)) else tag_to_remove
        add: Any = [tag_to_add] if isinstance(tag_to_add, (str, bytes)) else tag_to_add
        return self.replace_tags(remove, add)

    def replace_tags(self, tags_to_remove: Iterable[str], tags_to_add: Iterable[str]) -> None:
        """
        Remove and add tags atomically; the removal is done first.
        The rules for `Run.add_tag` and `Run.remove_tag` also apply here.

        The run's ``created_at`` is not changed; the edit (who, when, what) is recorded
        in the file.

        Parameters
        ----------
        tags_to_remove : Iterable[str]
            Tags to remove.
        tags_to_add : Iterable[str]
            Tags to add.
        """
        if not tags_to_add and not tags_to_remove:
            raise MetaflowTaggingError("Must add or remove at least one tag")
        for tags, what in ((tags_to_add, "tags_to_add"), (tags_to_remove, "tags_to_remove")):
            if isinstance(tags, (str, bytes)):
                raise MetaflowTaggingError(f"{what} may not be a string")
        add = _tag_list(tags_to_add, "tags_to_add")
        remove = _tag_list(tags_to_remove, "tags_to_remove")
        for tag in (*add, *remove):
            validate_tag(tag)
        from ..identity import get_username
        from ..writer import Writer

        edited = Writer(self._store).replace_user_tags(
            self._run_pk,  # type: ignore[arg-type]
            remove,
            add,
            user_name=get_username(),
        )
        # Refresh the row: the run now points at another tag set.
        row = self._store.one(*query.compile_run_lookup(self._components[0], self.id))
        if row is not None:
            self._init_row(row)
        # Like Metaflow's Run, this object's tags are those its own edit left, even when
        # another process edits the run's tags right after (Metaflow: the provider's
        # answer to the mutation): `tag in run.user_tags` holds after `run.add_tag(tag)`.
        self._edited_tags = edited

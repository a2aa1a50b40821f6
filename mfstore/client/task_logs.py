"""A task's logs: ``Task.loglines``, ``stdout``/``stderr`` and their sizes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from .. import query
from ..store import Store
from ._guard import guard_class

_UTC_EPOCH = datetime(1970, 1, 1)


class TaskLogs:
    """The log part of ``Task`` (a mixin: reads the task's ``_store``, ``_task_pk`` and
    ``_attempt``)."""

    _store: Store
    _task_pk: int
    _attempt: int | None

    def _log_attempt(self) -> int | None:
        """The attempt whose logs are shown; None if that attempt never started."""
        if self._attempt is None:
            return self._store.scalar(*query.compile_started_attempt(self._task_pk))  # type: ignore[no-any-return]
        exists = self._store.one(*query.compile_attempt(self._task_pk, self._attempt))
        return None if exists is None else self._attempt

    def loglines(
        self, stream: str, as_unicode: bool = True, meta_dict: dict[str, Any] | None = None
    ) -> Iterator[tuple[datetime | None, str | bytes]]:
        """
        Return an iterator over (utc_timestamp, logline) tuples.

        Lines of the ``task`` and ``runtime`` sources are merged by timestamp; the
        timestamps are naive UTC datetimes.

        Parameters
        ----------
        stream : str
            Either 'stdout' or 'stderr'.
        as_unicode : bool, default: True
            If as_unicode=False, each logline is returned as a byte object. Otherwise,
            it is returned as a (unicode) string.

        meta_dict : Dict[str, Any], optional, default None
            The task's ``metadata_dict`` if the caller has it already (as in Metaflow:
            its ``attempt`` picks the attempt; without ``ds-type``/``ds-root`` there is
            no log and one empty line is returned).

        Yields
        ------
        Tuple[datetime, str]
            Tuple of timestamp, logline pairs.
        """
        if meta_dict is not None:
            if meta_dict.get("ds-type") is None or meta_dict.get("ds-root") is None:
                yield None, "" if as_unicode else b""
                return
            if self._attempt is None:
                attempt: int | None = int(meta_dict.get("attempt", 0))
            else:
                attempt = self._log_attempt()
        else:
            attempt = self._log_attempt()
        if attempt is None:
            # Like Metaflow for an attempt that has no log location: one empty line.
            yield None, "" if as_unicode else b""
            return
        for ts_us, line in self._store.query(
            *query.compile_log_lines(self._task_pk, attempt, stream)
        ):
            yield (
                _UTC_EPOCH + timedelta(microseconds=ts_us),
                line if as_unicode else line.encode("utf-8"),
            )

    def _load_log(self, stream: str) -> str:
        return "".join(str(line) + "\n" for _, line in self.loglines(stream))

    def _log_size(self, stream: str) -> int:
        attempt = self._log_attempt()
        if attempt is None:
            return 0
        return int(self._store.scalar(*query.compile_log_size(self._task_pk, attempt, stream)))

    @property
    def stdout(self) -> str:
        """
        Returns the full standard out of this task.

        If you specify a specific attempt for this task, it will return the
        standard out for that attempt. If you do not specify an attempt,
        this will return the current standard out for the latest *started*
        attempt of the task. In both cases, multiple calls to this
        method will return the most up-to-date log (so if an attempt is not
        done, each call will fetch the latest log).

        Returns
        -------
        str
            Standard output of this task
        """
        return self._load_log("stdout")

    @property
    def stdout_size(self) -> int:
        """
        Returns the size of the stdout log of this task.

        Similar to `stdout`, the size returned is the latest size of the log
        (so for a running attempt, this value will increase as the task produces
        more output). mfstore counts the UTF-8 bytes of ``stdout``.

        Returns
        -------
        int
            Size of the stdout log content (in bytes)
        """
        return self._log_size("stdout")

    @property
    def stderr(self) -> str:
        """The full standard error of this task (str): of the attempt given when the
        task was made, else of its latest *started* attempt; read afresh at each call,
        as ``stdout``."""
        return self._load_log("stderr")

    @property
    def stderr_size(self) -> int:
        """Size in bytes (UTF-8) of ``stderr``, as it is now (see ``stdout_size``)."""
        return self._log_size("stderr")


guard_class(TaskLogs)

"""Every exception mfstore raises on purpose.

The names users catch are Metaflow's (``from mfstore.exception import
MetaflowNotFound``); the file-level errors are mfstore's own and all share the
same base, so ``except MetaflowException`` catches anything mfstore reports::

    MetaflowException                 (alias MfstoreError)  .headline, .message
    ├── MetaflowNotFound              object or file does not exist
    ├── MetaflowNamespaceMismatch     object exists, not in the current namespace
    ├── MetaflowInvalidPathspec       pathspec of the wrong shape
    ├── MetaflowInternalError
    ├── InvalidMetadataError          metadata() given something that names no .mfdb
    ├── MetaflowTaggingError          a tag edit breaks a tag rule
    ├── MetaflowUnknownUser           no user name in the environment
    ├── MetaflowDataCorruption        a stored value does not match its sha
    ├── UnsafeArtifactError           safe loading refused a non-plain type
    ├── CommandException              bad command-line input to a flow or `mfstore`
    │   └── NotAMetaflowHistory       import-metaflow given a directory that is not one
    ├── CliError                      an `mfstore` command's error about data or files
    ├── HistoryPathError              a history record or link leads outside its directory
    ├── InvalidNextException          a step's self.next() is not a valid transition
    ├── UnhandledInMergeArtifactsException  merge_artifacts met conflicting values
    ├── MissingInMergeArtifactsException    merge_artifacts(include=...) names a missing one
    ├── FailureHandledByCatch         @catch recorded a failure that raised no exception
    ├── FlowGraphError                the flow's graph is invalid (names the step)
    ├── IncorrectProductionToken      production deploy with the wrong token
    ├── ExecutorLostError             the cluster running a run's tasks went away
    ├── UnsupportedFeature            needs a cloud or service the local runtime lacks
    ├── PageError                     a page of `mfstore ui` cannot be shown (.status)
    ├── ExternalCommandFailed, ParameterFieldFailed, ParameterFieldTypeMismatch,
    │   InvalidDecoratorAttribute, MetaflowDataMissing, TimeoutException  (Metaflow's)
    ├── CardNotPresentException       the task has no card matching the request
    ├── IncorrectPathspecException    get_cards given a pathspec that is not a task's
    ├── IncorrectArgumentException    get_cards given neither a Task nor a pathspec
    ├── TaskNotFoundException         `flow.py card` given a PATHSPEC that names no task
    ├── ComponentOverwriteNotSupportedException  a card component id set twice
    ├── CardTimeout                   a card's render outlived @card(timeout=...)
    └── StoreError                    the .mfdb file itself
        ├── NotAnMfdbError            not SQLite, or SQLite but not an .mfdb
        ├── TruncatedFileError        shorter than its header says
        ├── SchemaTooNewError         written by a newer mfstore
        ├── SchemaTooOldError         older than any format this mfstore migrates
        ├── StoreBusyError            locked by other writers for too long
        ├── StoreReadOnlyError        opened read-only (or the place is read-only)
        ├── StoreFullError            the disk is full
        ├── StoreCorruptError         SQLite reports damage
        ├── UntrustedSchemaError      holds SQL objects schema.sql does not create
        ├── NeedsUpgradeError         older format; reading never migrates
        └── QueryInterrupted          Ctrl-C or a time limit stopped a query

Driver (apsw) errors are translated into these only in ``mfstore.store``.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Iterable

from .env import METAFLOW_USER

__all__ = [
    "CardNotPresentException",
    "CardTimeout",
    "CliError",
    "CommandException",
    "ComponentOverwriteNotSupportedException",
    "ExecutorLostError",
    "ExternalCommandFailed",
    "FailureHandledByCatch",
    "FlowGraphError",
    "HistoryPathError",
    "IncorrectArgumentException",
    "IncorrectPathspecException",
    "IncorrectProductionToken",
    "InvalidDecoratorAttribute",
    "InvalidMetadataError",
    "InvalidNextException",
    "MetaflowDataCorruption",
    "MetaflowDataMissing",
    "MetaflowException",
    "MetaflowExceptionWrapper",
    "MetaflowInternalError",
    "MetaflowInvalidPathspec",
    "MetaflowNamespaceMismatch",
    "MetaflowNotFound",
    "MetaflowTaggingError",
    "MetaflowUnknownUser",
    "MfstoreError",
    "MissingInMergeArtifactsException",
    "NeedsUpgradeError",
    "NotAMetaflowHistory",
    "NotAnMfdbError",
    "PageError",
    "ParameterFieldFailed",
    "ParameterFieldTypeMismatch",
    "QueryInterrupted",
    "SchemaTooNewError",
    "SchemaTooOldError",
    "StoreBusyError",
    "StoreCorruptError",
    "StoreError",
    "StoreFullError",
    "StoreReadOnlyError",
    "TaskNotFoundException",
    "TimeoutException",
    "TruncatedFileError",
    "UnhandledInMergeArtifactsException",
    "UnsafeArtifactError",
    "UnsupportedFeature",
    "UntrustedSchemaError",
]


class MetaflowException(Exception):
    """Base of every mfstore error; ``str(e)`` is the message, ``headline`` a short title."""

    headline = "Flow failed"

    def __init__(self, msg: str = "", lineno: int | None = None) -> None:
        self.message = msg
        self.line_no = lineno
        super().__init__(msg)

    def __str__(self) -> str:
        prefix = f"line {self.line_no}: " if self.line_no else ""
        return f"{prefix}{self.message}"


MfstoreError = MetaflowException


class MetaflowNotFound(MetaflowException):
    """The object (or file) does not exist."""

    headline = "Object not found"


class MetaflowNamespaceMismatch(MetaflowException):
    """The object exists but is not in the current namespace."""

    headline = "Object not in the current namespace"

    def __init__(self, namespace: str | None) -> None:
        super().__init__(f"Object not in namespace '{namespace}'")


class MetaflowInvalidPathspec(MetaflowException):
    """A pathspec does not have the shape the object needs."""

    headline = "Invalid pathspec"


class MetaflowInternalError(MetaflowException):
    """Something mfstore did not expect; please report it."""

    headline = "Internal error"


class InvalidMetadataError(MetaflowException):
    """``metadata()`` was given a provider mfstore does not have (a service URL, another
    ``kind@``) or something that is not a path."""

    headline = "Invalid metadata provider"


class MetaflowTaggingError(MetaflowException):
    """A tag edit violates a tag rule (empty, too long, system tag, ...)."""

    headline = "Tagging error"


class MetaflowUnknownUser(MetaflowException):
    """No user name could be determined from the environment."""

    headline = "Unknown user"

    def __init__(self) -> None:
        super().__init__(
            "Metaflow could not determine your user name based on "
            f"environment variables ($USERNAME etc.): set {METAFLOW_USER}, e.g. "
            f"export {METAFLOW_USER}=alice (the user name root is never used)"
        )


class MetaflowDataCorruption(MetaflowException):
    """A stored value does not match its sha (the file is damaged)."""

    headline = "Data corruption"


class UnsafeArtifactError(MetaflowException):
    """Safe loading met a type that is not plain data."""

    headline = "Unsafe artifact"


class CommandException(MetaflowException):
    """Bad command-line input."""

    headline = "Invalid command"


class NotAMetaflowHistory(CommandException):
    """The directory given to ``import-metaflow`` is not a Metaflow ``.metaflow`` directory."""


class CliError(MetaflowException):
    """An ``mfstore`` command's error about data or files: the command prints
    ``Error: <one line>`` on stderr and exits with status 1."""

    headline = "mfstore command failed"


class HistoryPathError(MetaflowException, ValueError):
    """A ``.metaflow`` history names a file outside itself (a symlink, ``..``, an
    absolute path, a sha that is not a sha): import refuses it and skips the run."""


class InvalidNextException(MetaflowException):
    """A step's ``self.next()`` call is not a valid transition (the message says why)."""

    headline = "Invalid self.next() transition detected"
    metaflow_type = "metaflow.flowspec.InvalidNextException"


class _MergeArtifactsException(MetaflowException):
    """A ``merge_artifacts`` failure about some artifacts: ``artifact_names`` lists them
    (the second argument, ``unhandled`` in Metaflow's signature)."""

    def __init__(self, msg: str, unhandled: list[str]) -> None:
        super().__init__(msg)
        self.artifact_names = unhandled


class UnhandledInMergeArtifactsException(_MergeArtifactsException):
    """``merge_artifacts`` found an artifact with different values in its inputs;
    ``artifact_names`` lists them."""

    headline = "Unhandled artifacts in merge"


class MissingInMergeArtifactsException(_MergeArtifactsException):
    """``merge_artifacts(include=...)`` named artifacts no input has;
    ``artifact_names`` lists them."""

    headline = "Missing artifacts in merge"


class FailureHandledByCatch(MetaflowException):
    """Stored by ``@catch`` when a task failed without raising (e.g. it was killed)."""

    headline = "Task execution failed but @catch handled it"
    metaflow_type = "metaflow.plugins.catch_decorator.FailureHandledByCatch"

    def __init__(self, retry_count: int) -> None:
        super().__init__(
            f"Task execution kept failing over {retry_count} attempts. Your code did not raise an exception. "
            "Something in the execution environment caused the failure."
        )


class FlowGraphError(MetaflowException):
    """The flow's graph is invalid; the message names the step."""

    headline = "Validity checker found an issue"


class IncorrectProductionToken(MetaflowException):
    """A production deployment was attempted with the wrong token."""

    headline = "Incorrect production token"


class ExecutorLostError(MetaflowException):
    """The cluster running a run's tasks went away (a lost Dask scheduler): the run is left
    unfinished and ``resume`` completes it."""

    headline = "Lost the cluster"


class UnsupportedFeature(MetaflowException):
    """A Metaflow feature that needs a cloud or service mfstore's local runtime lacks."""

    headline = "Not available locally"


class PageError(MetaflowException):
    """A page of ``mfstore ui`` cannot be shown: ``status`` is the HTTP status (400 for a
    bad query, 404 for an object not in the file), the message says why."""

    headline = "Page cannot be shown"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# -- Metaflow's names a flow may raise or catch (metaflow.exception and its plugins) -------


class ExternalCommandFailed(MetaflowException):
    """A command the flow ran outside Python failed (Metaflow's name)."""

    headline = "External command failed"


class ParameterFieldFailed(MetaflowException):
    """A Parameter's default function raised (Metaflow's name); raised while handling that
    exception, the message ends with its traceback, as Metaflow's does."""

    headline = "Parameter field failed"

    def __init__(self, name: str, field: str) -> None:
        import traceback

        super().__init__(
            f"When evaluating the field *{field}* for the Parameter *{name}*, "
            f"the following exception occurred:\n\n{traceback.format_exc()}"
        )


class ParameterFieldTypeMismatch(MetaflowException):
    """A Parameter's default function returned the wrong type (Metaflow's name)."""

    headline = "Parameter field with a mismatching type"


class InvalidDecoratorAttribute(MetaflowException):
    """A decorator was given an attribute it does not take (Metaflow's name and message)."""

    headline = "Unknown decorator attribute"

    def __init__(self, deconame: str, attr: str, defaults: Iterable[str]) -> None:
        super().__init__(
            f"Decorator '{deconame}' does not support the attribute '{attr}'. "
            f"These attributes are supported: {', '.join(defaults)}."
        )


class MetaflowDataMissing(MetaflowException):
    """Data a task needs is not in the file (Metaflow's name)."""

    headline = "Data missing"


class TimeoutException(MetaflowException):
    """A step ran longer than its ``@timeout`` (recorded as Metaflow's type name)."""

    headline = "@timeout"
    metaflow_type = "metaflow.plugins.timeout_decorator.TimeoutException"


class CardNotPresentException(MetaflowException):
    """The task has no card matching the request (Metaflow's name)."""

    headline = "Card not found in datastore"
    metaflow_type = "metaflow.plugins.cards.exception.CardNotPresentException"

    def __init__(
        self,
        pathspec: str,
        card_type: str | None = None,
        card_id: str | None = None,
        card_hash: str | None = None,
    ):
        msg = f"Card not found for pathspec {pathspec}"
        if card_id is not None:
            msg = f"Card with id '{card_id}' not found for pathspec {pathspec}"
        if card_type is not None:
            msg = f"Card with type '{card_type}' not found for pathspec {pathspec}"
        if card_hash is not None:
            msg = (
                f"Card with hash '{card_hash}' not found for pathspec {pathspec}. When using "
                "`--hash` always ensure you have full hash or first five characters of the hash."
            )
        super().__init__(msg)


class IncorrectPathspecException(MetaflowException):
    """``get_cards`` was given a pathspec that is not a task's."""

    headline = "Pathspec is required of form `flowname/runid/stepname/taskid`"
    metaflow_type = "metaflow.plugins.cards.exception.IncorrectPathspecException"

    def __init__(self, pathspec: str) -> None:
        super().__init__(
            f"Pathspec {pathspec} is invalid. Pathspec is required of form "
            "`flowname/runid/stepname/taskid`"
        )


class IncorrectArgumentException(MetaflowException):
    """``get_cards`` was given something other than a ``Task`` or a pathspec."""

    headline = "`get_cards` function requires a `Task` object or pathspec as an argument"
    metaflow_type = "metaflow.plugins.cards.exception.IncorrectArgumentException"

    def __init__(self, obj_type: object) -> None:
        super().__init__(
            "`get_cards` function requires a `Task` object or pathspec as an argument. "
            f"`task` argument cannot be of type {obj_type}."
        )


class TaskNotFoundException(MetaflowException):
    """``python flow.py card get|list|view PATHSPEC``: PATHSPEC names no task."""

    headline = "Cannot resolve task for pathspec"
    metaflow_type = "metaflow.plugins.cards.exception.TaskNotFoundException"

    def __init__(self, query: str, resolved_from: str, run_id: str | None = None) -> None:
        message = {
            "task_pathspec": f"Task pathspec {query} not found.",
            "step_pathspec": f"Step pathspec {query} not found.",
        }.get(resolved_from, f"Step {query} not found")
        if resolved_from == "stepname" and run_id is not None:
            message = f"Step {query} not found for Run('{run_id}')."
        super().__init__(message)


class ComponentOverwriteNotSupportedException(MetaflowException):
    """``current.card[ID].components[CID] = ...`` on a component id already present."""

    headline = "Component overwrite is not supported"
    metaflow_type = "metaflow.plugins.cards.exception.ComponentOverwriteNotSupportedException"

    def __init__(self, component_id: str, card_id: str | None, card_type: str | None) -> None:
        id_str = f"id='{card_id}'" if card_id is not None else ""
        super().__init__(
            "Card component overwrite is not supported. "
            f"Component with id {component_id} already exists in the @card(type='{card_type}', "
            f"{id_str}). \nInstead of calling `current.card.components[ID] = MyComponent`. "
            "You can overwrite the entire component Array by calling "
            "`current.card.components = [MyComponent]`"
        )


class CardTimeout(MetaflowException, TimeoutError):
    """A card's render took longer than ``@card(timeout=...)``: raised inside ``render``,
    a ``TimeoutError`` as Metaflow's ``card create`` raises there."""

    headline = "Card rendering timed out"


# -- the .mfdb file itself -------------------------------------------------------------


class StoreError(MetaflowException):
    """A problem with the .mfdb file itself."""

    headline = "mfstore file error"


class NotAnMfdbError(StoreError):
    """The file is not SQLite, or is SQLite but not an .mfdb."""


class TruncatedFileError(StoreError):
    """The file is shorter than its own header says (an incomplete copy)."""


class SchemaTooNewError(StoreError):
    """The file was written by a newer mfstore."""


class SchemaTooOldError(StoreError):
    """The file uses a format older than any this mfstore can migrate forward."""


class StoreBusyError(StoreError):
    """Other processes held the write lock for too long."""


class StoreReadOnlyError(StoreError):
    """A write was attempted on a file opened read-only."""


class StoreFullError(StoreError):
    """The disk (or the file system) is full: no room to write.

    Also raised when a quota or the size limit of one file (``ulimit -f``, the file
    system's largest file) stops a write. The message says which file could not be
    written, what was kept and what to do."""


class StoreCorruptError(StoreError):
    """SQLite reports that the file is damaged."""


class UntrustedSchemaError(StoreError):
    """The file holds an SQL object (trigger, view, index, table) that ``schema.sql``
    does not create: it could run code or change what queries return, so it is refused."""


class NeedsUpgradeError(StoreError):
    """The file uses an older format; reading never migrates it (``mfstore upgrade FILE``)."""


class QueryInterrupted(StoreError):
    """A query was stopped by Ctrl-C or by its time limit."""


# -- a full disk, Metaflow's type names, a task's exception as stored -------------------


#: errno values that mean "no room to write": the disk or a quota is full, or the file
#: reached the largest size allowed (RLIMIT_FSIZE, or the file system's limit).
_NO_ROOM_ERRNOS = frozenset({_errno.ENOSPC, _errno.EFBIG, getattr(_errno, "EDQUOT", _errno.ENOSPC)})


def is_no_room(exc: BaseException | int | None) -> bool:
    """True for a ``StoreFullError``, or an ``OSError`` (or errno) saying the disk, a
    quota or a file's size limit is full."""
    if isinstance(exc, StoreFullError):
        return True
    if isinstance(exc, OSError):
        exc = exc.errno
    return isinstance(exc, int) and exc in _NO_ROOM_ERRNOS


def disk_full(path: object, kept: str, todo: str = "free some space and retry") -> StoreFullError:
    """The one-line error of a command stopped by a full disk: which file could not be
    written, what was kept (and what was not), and what to do."""
    return StoreFullError(f"{path}: the disk is full (no room to write); {kept}; {todo}")


def metaflow_type_name(exc: BaseException) -> str:
    """The qualified type name Metaflow records for ``exc``: mfstore's exceptions that have
    a Metaflow counterpart are named as Metaflow names them (``metaflow.exception.X``)."""
    cls = exc.__class__
    named = getattr(cls, "metaflow_type", None)
    if isinstance(named, str):
        return named
    if cls.__module__ == __name__ and cls.__name__ in _METAFLOW_NAMES:
        return f"metaflow.exception.{cls.__name__}"
    return f"{cls.__module__}.{cls.__name__}"


#: Exceptions here that Metaflow defines in ``metaflow.exception`` under the same name.
_METAFLOW_NAMES = frozenset(
    {
        "MetaflowException",
        "MetaflowNotFound",
        "MetaflowNamespaceMismatch",
        "MetaflowInvalidPathspec",
        "MetaflowInternalError",
        "MetaflowTaggingError",
        "MetaflowUnknownUser",
        "CommandException",
        "ExternalCommandFailed",
        "ParameterFieldFailed",
        "ParameterFieldTypeMismatch",
        "InvalidDecoratorAttribute",
        "MetaflowDataMissing",
        "UnhandledInMergeArtifactsException",
        "MissingInMergeArtifactsException",
    }
)


class MetaflowExceptionWrapper(Exception):
    """A task's exception as stored (``Task.exception``): picklable whatever the original.

    ``type`` is the qualified class name (``'builtins.ValueError'``), ``exception`` the
    message and ``stacktrace`` the formatted traceback; ``str()`` is the stack trace.
    """

    def __init__(self, exc: BaseException | None = None) -> None:
        import sys
        import traceback

        self.type: str = ""
        self.exception: str = ""
        self.stacktrace: str | None = None
        if exc is not None:
            self.exception = str(exc)
            self.type = metaflow_type_name(exc)
            if sys.exc_info()[0] is None:
                self.stacktrace = None
            else:
                self.stacktrace = traceback.format_exc()

    def __reduce__(self) -> tuple[object, ...]:
        return (self.__class__, (), self.__dict__)

    def __setstate__(self, state: dict[str, object] | None) -> None:
        if state:
            self.__dict__.update(state)

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        if self.stacktrace:
            return self.stacktrace
        return f"[no stacktrace]\n{self.type}: {self.exception}"

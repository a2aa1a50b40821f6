"""Which .mfdb file is in use: discovery, ``metadata()``, ``get_metadata()``.

Like Metaflow's local provider finds ``.metaflow``, mfstore looks for ``metaflow.mfdb``
in the current directory, then its parents. ``MFSTORE_DB`` overrides the search;
``metadata('x.mfdb')`` / ``metadata('local@x.mfdb')`` switch files for this process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .env import MFSTORE_DB
from .exception import InvalidMetadataError, MetaflowNotFound
from .store import Store

#: The file name searched for in the current directory and its parents.
DEFAULT_FILE_NAME = "metaflow.mfdb"

_selected: Path | None = None
#: The one cache of open stores: (absolute path, pid) -> Store.
_stores: dict[tuple[str, int], Store] = {}
#: Selection key -> (store, its key in _stores): the file current_store() resolved.
_current: dict[tuple[Any, ...], tuple[Store, tuple[str, int]]] = {}


def discover(start: Path | None = None) -> Path | None:
    """The file to use: ``$MFSTORE_DB``, else ``metaflow.mfdb`` in cwd or a parent; None if none."""
    env = os.environ.get(MFSTORE_DB)
    if env:
        return Path(env).expanduser().absolute()
    here = (start or Path.cwd()).absolute()
    for directory in (here, *here.parents):
        candidate = directory / DEFAULT_FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def default_write_path() -> Path:
    """Where a run writes when nothing is selected: the discovered file, else ./metaflow.mfdb."""
    return current_path() or (Path.cwd() / DEFAULT_FILE_NAME).absolute()


def current_path() -> Path | None:
    """The selected file (``metadata()``), else the discovered one."""
    return _selected if _selected is not None else discover()


def _parse(ms: str) -> Path:
    if not isinstance(ms, str) or not ms:
        raise InvalidMetadataError(
            "metadata() takes a path to an .mfdb file, e.g. metadata('runs.mfdb')"
        )
    if "@" in ms and not os.path.exists(ms):
        kind, _, info = ms.partition("@")
        if kind != "local":
            raise InvalidMetadataError(
                f"Metadata provider '{kind}' is not supported by mfstore: use a path to an .mfdb file "
                "or 'local@<path>'"
            )
        ms = info
    elif ms.startswith(("http://", "https://")):
        raise InvalidMetadataError(
            f"mfstore has no metadata service: use a path to an .mfdb file, not {ms}"
        )
    path = Path(ms).expanduser().absolute()
    if path.is_dir():
        path = path / DEFAULT_FILE_NAME
    if not path.is_file():
        raise MetaflowNotFound(f"Could not find the mfstore file {path}")
    return path


def metadata(ms: str) -> str:
    """Switch to the .mfdb file ``ms`` (a path, ``local@<path>``, or a directory holding
    ``metaflow.mfdb``; ``'local'`` selects the default file, as Metaflow's ``metadata('local')``
    selects its local provider); returns ``get_metadata()``. On error the previous file stays selected."""
    global _selected
    if ms == "local":  # Metaflow's local provider: here, the default file
        _selected = None
        return get_metadata()
    _selected = _parse(ms)
    return get_metadata()


def get_metadata() -> str:
    """``'local@<absolute path of the .mfdb file>'`` of the file in use."""
    path = current_path()
    if path is None:
        return f"local@<No {DEFAULT_FILE_NAME} found in current working tree>"
    return f"local@{path}"


def default_metadata() -> str:
    """Forget ``metadata()`` calls: back to ``$MFSTORE_DB`` or the discovered file."""
    global _selected
    _selected = None
    return get_metadata()


def open_store(path: Path | str, *, create: bool = False, readonly: bool | None = None) -> Store:
    """A shared Store for ``path`` in this process (a forked child opens its own)."""
    key = (str(Path(path).absolute()), os.getpid())
    store = _stores.get(key)
    if store is None:
        # The Client API only reads: it never migrates or re-journals the file.
        store = Store(path, create=create, readonly=readonly, reader=not create)
        _stores[key] = store
    return store


def _selection_key() -> tuple[Any, ...]:
    env = os.environ.get(MFSTORE_DB)
    return (_selected, env, None if (_selected or env) else os.getcwd(), os.getpid())


def missing_file_error(path: Path | None) -> MetaflowNotFound:
    """The error for reading when the file in use is not there, naming what was looked for."""
    if path is None:
        return MetaflowNotFound(
            f"No {DEFAULT_FILE_NAME} found in {Path.cwd()} or any parent directory: run a flow "
            f"here to create one, set {MFSTORE_DB}, or call metadata('path/to/file.mfdb')"
        )
    how = f"named by {MFSTORE_DB}" if _selected is None else "selected with metadata()"
    return MetaflowNotFound(
        f"The mfstore file {path} ({how}) does not exist: run a flow to create it, "
        "or name an existing .mfdb file"
    )


def current_store() -> Store:
    """The store the Client API reads: the file in use (``metadata()`` / ``$MFSTORE_DB`` /
    discovery). ``MetaflowNotFound`` naming the file looked for if it is not there.

    Resolving the file walks the file system; the answer is remembered per selection
    (and per working directory when discovering) while the store stays open.
    """
    key = _selection_key()
    hit = _current.get(key)
    if hit is not None and _stores.get(hit[1]) is hit[0]:
        return hit[0]
    path = current_path()
    if path is None or not path.exists():
        raise missing_file_error(path)
    store = open_store(path)
    _current[key] = (store, (str(path.absolute()), os.getpid()))
    return store


def reset() -> None:
    """Forget every cached store and resolved path, as in a fresh process (the selection
    made by ``metadata()`` stays). Stores this process opened are closed; those inherited
    through ``fork()`` are only dropped (closing them here would disturb the parent's)."""
    pid = os.getpid()
    for (_path, owner), store in list(_stores.items()):
        if owner == pid:
            store.close()
    _stores.clear()
    _current.clear()

"""``IncludeFile`` on a .mfdb: Metaflow's data client for ``--datastore mfdb``.

Metaflow's ``IncludeFile`` uploads the file through the data client of the run's datastore
type and records a URL in the parameter's artifact. Here the bytes become a blob in the
file (content-addressed by the sha1 Metaflow computed, stored zstd like every blob) and the
URL is ``mfdb://<file>/<Flow>/<sha>``. Reading it back, the blob is looked up in that file,
else in the file this process uses (a moved or copied .mfdb keeps its included files), and
handed to Metaflow as the gzip file it expects, in a temporary directory the ``with`` block
removes.
"""

# mypy: allow-untyped-calls
from __future__ import annotations

import gzip
import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

from metaflow.exception import MetaflowException

from ..env import MFSTORE_DB
from . import TYPE, metadata, storage
from .deps import blobs, core, query

PREFIX = f"{TYPE}://"


class MfdbIncludedObject:
    """What Metaflow's ``IncludeFile`` asks of a stored object (as ``LocalObject``)."""

    def __init__(self, url: str, path: str | None, size: int | None) -> None:
        self._url, self._path, self._size = url, path, size

    @property
    def exists(self) -> bool:
        """True when the blob is in the file."""
        return self._size is not None

    @property
    def url(self) -> str:
        """``mfdb://<file>/<Flow>/<sha>``."""
        return self._url

    @property
    def path(self) -> str | None:
        """A local gzip file of the bytes (``get`` only), removed with the client."""
        return self._path

    @property
    def size(self) -> int | None:
        """Bytes of the included file, None when missing."""
        return self._size


class MfdbDataClient:
    """Metaflow's data client (``IncludeFile``'s uploads) on a .mfdb."""

    TYPE = TYPE

    @classmethod
    def get_root_from_config(cls, echo: Any, create_on_absent: bool = True) -> str:
        """The .mfdb file itself: Metaflow joins ``<root>/<Flow>/<sha>`` onto it."""
        root = (
            storage.MfdbStorage.datastore_root
            or storage.MfdbStorage.get_datastore_root_from_config(echo, create_on_absent)
        )
        if root is None:
            raise MetaflowException(
                f"No .mfdb file: set {MFSTORE_DB} or pass --datastore-root FILE.mfdb"
            )
        return str(core.split_root(root)[0])

    def __init__(self) -> None:
        self._tmp: str | None = None

    def __enter__(self) -> MfdbDataClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    @staticmethod
    def _parse(key: str) -> tuple[Path, str, str]:
        text = str(key)[len(PREFIX) :] if str(key).startswith(PREFIX) else str(key)
        file, parts = core.split_root(text)
        if len(parts) != 2 or len(parts[1]) != 40:
            raise MetaflowException(f"Not an included file of a .mfdb: '{key}'")
        return file, parts[0], parts[1]

    def put(self, key: str, obj: bytes, overwrite: bool = True) -> str:
        """Store ``obj`` (gzip, as IncludeFile hands it) as a blob; return its URL."""
        file, flow, sha = self._parse(key)
        raw = gzip.decompress(obj)
        if hashlib.sha1(raw).hexdigest() != sha:
            raise MetaflowException(f"Included file {key}: its bytes do not have sha {sha}")
        sess = core.session(file, create=True)
        if not blobs.has_blob(sess.store, sha):
            sess.writer.put_blob(raw, sha)
        return f"{PREFIX}{file}/{flow}/{sha}"

    def _find(self, key: str) -> tuple[Any, str] | None:
        """(store, sha) of the file holding the blob: the URL's, else this process's."""
        file, _flow, sha = self._parse(key)
        candidates = [file]
        root = storage.MfdbStorage.datastore_root
        info = str(getattr(metadata.MfdbMetadataProvider, "INFO", "") or "")  # metadata("mfdb@F")
        for extra in (root, info, core.default_file(create=False)):
            if extra and not str(extra).startswith("<"):
                candidates.append(core.split_root(extra)[0])
        for candidate in dict.fromkeys(candidates):
            if candidate.is_file():
                store = core.session(candidate).store
                if blobs.has_blob(store, sha):
                    return store, sha
        return None

    def _missing(self, key: str, return_missing: bool) -> MfdbIncludedObject:
        if not return_missing:
            raise MetaflowException(f"Included file {key} is not in the .mfdb file")
        return MfdbIncludedObject(str(key), None, None)

    def info(self, key: str, return_missing: bool = False) -> MfdbIncludedObject:
        """Whether the blob is there, and its size."""
        found = self._find(key)
        if found is None:
            return self._missing(key, return_missing)
        store, sha = found
        return MfdbIncludedObject(str(key), None, int(store.scalar(*query.compile_blob_size(sha))))

    def get(self, key: str, return_missing: bool = False) -> MfdbIncludedObject:
        """The blob as a local gzip file (what IncludeFile reads)."""
        found = self._find(key)
        if found is None:
            return self._missing(key, return_missing)
        store, sha = found
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="mfdb-include-")
        path = str(Path(self._tmp) / sha)
        with open(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=1) as gz:
            size = blobs.copy_blob_to(store, sha, gz)  # type: ignore[arg-type]
        return MfdbIncludedObject(str(key), path, size)

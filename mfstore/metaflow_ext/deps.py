"""The mfstore modules below this package that the provider, the datastore and the data
client use, each imported on first use (see ``Deferred``): ``from .deps import blobs, query``.
The plugin modules themselves (``metadata``, ``storage``) are imported directly: Metaflow
loads them anyway."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import Deferred

if TYPE_CHECKING:
    from .. import artifacts, blobs, exception, importer, query, writer
    from . import core
else:
    artifacts = Deferred("mfstore.artifacts")
    blobs = Deferred("mfstore.blobs")
    exception = Deferred("mfstore.exception")
    importer = Deferred("mfstore.importer")
    query = Deferred("mfstore.query")
    writer = Deferred("mfstore.writer")
    core = Deferred("mfstore.metaflow_ext.core")

__all__ = [
    "artifacts",
    "blobs",
    "core",
    "exception",
    "importer",
    "query",
    "writer",
]

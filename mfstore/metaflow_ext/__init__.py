"""Real Metaflow on a .mfdb: the metadata provider and datastore behind ``--metadata mfdb
--datastore mfdb`` (registered by ``metaflow_extensions/mfstore/plugins/mfextinit_mfstore.py``, kept under
``ext/`` in the source tree so a checkout never shadows the installed copy).

``core`` holds the Metaflow-free part (which file, keys, rows -> Metaflow's dicts);
``metadata`` and ``storage`` subclass Metaflow's classes and are imported only by Metaflow.
``import mfstore`` never imports this package, and this package never imports Metaflow
at load time.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

#: Metaflow versions the extension is tested with (the ``[metaflow]`` extra pins these).
TESTED_METAFLOW = ("2.19.39",)

#: The plugin name: ``--metadata mfdb``, ``--datastore mfdb``, ``metadata("mfdb@FILE")``.
TYPE = "mfdb"


class Deferred:
    """A module imported on first attribute use.

    Metaflow imports every registered plugin class when it starts (``metaflow.plugins``),
    in every process, whichever backend a run uses: the provider and datastore modules
    keep their mfstore imports (SQLite, the writer, blobs) for the first call that needs
    them, so an installed mfstore costs local Metaflow runs next to nothing.
    """

    def __init__(self, module: str) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(import_module(self._module), name)

"""Real Metaflow on a .mfdb: the metadata provider and datastore behind ``--metadata mfdb
--datastore mfdb`` (registered by ``metaflow_extensions/mfstore/plugins/mfextinit_mfstore.py``, kept under
``ext/`` in the source tree so a checkout never shadows the installed copy).

``core`` holds the Metaflow-free part (which file, keys, rows -> Metaflow's dicts);
``metadata`` and ``storage`` subclass Metaflow's classes and are imported only by Metaflow.
``import mfstore`` never imports this package, and this package never imports Metaflow
at load time.
"""

#: Metaflow versions the extension is tested with (the ``[metaflow]`` extra pins these).
TESTED_METAFLOW = ("2.19.39",)

#: The plugin name: ``--metadata mfdb``, ``--datastore mfdb``, ``metadata("mfdb@FILE")``.
TYPE = "mfdb"

"""mfstore's Metaflow extension: ``--metadata mfdb`` and ``--datastore mfdb`` keep runs,
artifacts, logs and cards in one .mfdb file (see docs/metaflow.md).

Metaflow imports this file when it loads its plugins; nothing else does. The classes
live in ``mfstore.metaflow_ext`` and are imported only when Metaflow resolves them.
"""

import os
import sys

METADATA_PROVIDERS_DESC = [("mfdb", "mfstore.metaflow_ext.metadata.MfdbMetadataProvider")]
DATASTORES_DESC = [("mfdb", "mfstore.metaflow_ext.storage.MfdbStorage")]
#: IncludeFile's uploads on ``--datastore mfdb``.
DATACLIENTS_DESC = [("mfdb", "mfstore.metaflow_ext.dataclient.MfdbDataClient")]


def _warn_untested():
    """One line on stderr (once per run: child processes inherit the flag) when this
    Metaflow is not a version the extension was tested with."""
    try:  # light imports: this runs in every process Metaflow starts
        from metaflow.version import metaflow_version as found

        from mfstore.env import MFSTORE_METAFLOW_VERSION_WARNED as warned
        from mfstore.metaflow_ext import TESTED_METAFLOW
    except Exception:
        return
    if found in TESTED_METAFLOW or os.environ.get(warned):
        return
    os.environ[warned] = "1"
    print(
        "mfstore: the mfdb metadata provider and datastore are tested with Metaflow {}, "
        "not {}; install mfstore[metaflow] for a tested Metaflow".format(
            " / ".join(TESTED_METAFLOW), found
        ),
        file=sys.stderr,
    )


_warn_untested()

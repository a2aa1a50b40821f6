"""The names of the environment variables mfstore reads or sets, each defined here once.

Code reads ``os.environ.get(MFSTORE_DB)``, never the name spelled out again (a test
greps the package for such literals); messages name a variable through its constant
(``f"set {MFSTORE_DB}"``). Nothing is read at import: the environment may change after
it (tests, a notebook, the runtime in a task process).
"""

from __future__ import annotations

from typing import Final

# -- mfstore's own ---------------------------------------------------------------------

#: The .mfdb file to use (skips the search for ``metaflow.mfdb``).
MFSTORE_DB: Final = "MFSTORE_DB"
#: The Client API's initial namespace (set by the runtime in task processes for
#: ``run --namespace``; cleared for a production run); the empty string means None.
MFSTORE_NAMESPACE: Final = "MFSTORE_NAMESPACE"
#: The file holding what the deployment a production run starts from fixed and what its
#: trigger gave: a JSON object, ``DEPLOYED_FIXED`` -> ``deployments.values_json`` (its text,
#: or null), ``DEPLOYED_GIVEN`` -> {parameter name: command-line text}, ``DEPLOYED_EVENTS``
#: -> the events that start the run (a list; recorded as the run's trigger). Set by
#: ``mfstore.production`` for the run it starts, read and removed by the flow command (a
#: file, not variables: Linux limits one variable to 128 KiB, and a config or a payload may
#: be larger).
MFSTORE_DEPLOYED_VALUES: Final = "MFSTORE_DEPLOYED_VALUES"
DEPLOYED_FIXED: Final = "fixed"
DEPLOYED_GIVEN: Final = "given"
DEPLOYED_EVENTS: Final = "events"
#: Flows already started in the current trigger chain (comma separated; stops cycles).
MFSTORE_TRIGGER_CHAIN: Final = "MFSTORE_TRIGGER_CHAIN"
#: The default byte budget of ``loads_safe`` (``mfstore.artifacts``).
MFSTORE_LOAD_SAFE_MAX_BYTES: Final = "MFSTORE_LOAD_SAFE_MAX_BYTES"
#: Set once the Metaflow extension warned about an untested Metaflow (child processes
#: inherit it: one warning per run).
MFSTORE_METAFLOW_VERSION_WARNED: Final = "MFSTORE_METAFLOW_VERSION_WARNED"

# -- Metaflow's, with Metaflow's meaning -------------------------------------------------

#: The user name (before ``SUDO_USER``, ``USERNAME``, ``USER``).
METAFLOW_USER: Final = "METAFLOW_USER"
#: A production run's token: its namespace is ``production:<token>``.
METAFLOW_PRODUCTION_TOKEN: Final = "METAFLOW_PRODUCTION_TOKEN"
#: Where production tokens are kept (else ``METAFLOW_HOME``).
METAFLOW_TOKEN_HOME: Final = "METAFLOW_TOKEN_HOME"
#: Metaflow's configuration directory (default ``~/.metaflowconfig``).
METAFLOW_HOME: Final = "METAFLOW_HOME"
#: ``--config NAME PATH`` given through the environment (a JSON object).
METAFLOW_FLOW_CONFIG: Final = "METAFLOW_FLOW_CONFIG"
#: ``--config-value NAME JSON`` given through the environment (a JSON object).
METAFLOW_FLOW_CONFIG_VALUE: Final = "METAFLOW_FLOW_CONFIG_VALUE"
#: Keep warnings out of the cards.
METAFLOW_CARD_NO_WARNING: Final = "METAFLOW_CARD_NO_WARNING"
#: The secrets backend of ``@secrets`` sources given without a type.
METAFLOW_DEFAULT_SECRETS_BACKEND_TYPE: Final = "METAFLOW_DEFAULT_SECRETS_BACKEND_TYPE"
#: The prefix of a flow command's options in the environment (click's
#: ``auto_envvar_prefix``): ``METAFLOW_RUN_ALPHA=0.5`` is ``run --alpha 0.5``.
METAFLOW_OPTION_PREFIX: Final = "METAFLOW"

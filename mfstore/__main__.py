"""``python -m mfstore``: the same as the ``mfstore`` command."""

from mfstore.cli import main

main()

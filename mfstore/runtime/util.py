"""Small helpers Metaflow's ``metaflow.util`` offers that flows and test suites import."""

from __future__ import annotations

from typing import Any


def is_stringish(x: Any) -> bool:
    """Whether ``x`` is text (``str`` or ``bytes``), as Metaflow's ``is_stringish``."""
    return isinstance(x, (str, bytes, bytearray))

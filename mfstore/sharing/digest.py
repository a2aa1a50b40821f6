"""Content digests of a run: what ``copy_runs`` compares to call a run identical."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from .. import query
from ..store import Store
from ..tags import is_provenance

# -- content digests -----------------------------------------------------------------


def _h(rows: Iterable[Sequence[Any]]) -> str:
    h = hashlib.sha1()
    for row in rows:
        h.update(
            json.dumps(
                list(row), ensure_ascii=False, default=lambda b: hashlib.sha1(b).hexdigest()
            ).encode("utf-8", "surrogatepass")
        )
        h.update(b"\n")
    return h.hexdigest()


def run_digest(store: Store, run_pk: int) -> dict[str, str]:
    """sha1 per part of a run's content (everything but user tags and tag events)."""
    out = {}
    for part, (sql, params) in query.compile_run_digest_parts(run_pk).items():
        rows = store.query(sql, params)
        if part == "system_tags":
            # Where a copy came from is not its content.
            rows = [(tag,) for (tag,) in rows if not is_provenance(tag)]
        out[part] = _h(rows)
    return out

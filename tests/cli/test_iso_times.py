"""The run listing's time text (``query.common.iso``) equals the views' ``strftime`` text
for every value a file may hold, out-of-range and non-numeric ones included."""

from __future__ import annotations

import random

import apsw

from mfstore.query.common import iso

VIEWS = "strftime('%Y-%m-%dT%H:%M:%fZ', x / 1000.0, 'unixepoch')"


def test_iso_equals_the_views_text() -> None:
    rng = random.Random(13)
    values: list[object] = [rng.randint(-(10**14), 10**15) for _ in range(20_000)]
    values += [0, 1, 999, 1000, -1, -999, 1_700_000_000_123, 253_402_300_799_999]
    values += [253_402_300_800_000, -62_135_596_800_000, -62_135_596_800_001, 10**16, -(10**16)]
    values += [1.5, 999.9995, 0.0005, None, "abc", "1700000000000", b"\x00", 2**63 - 1, -(2**63)]
    conn = apsw.Connection(":memory:")
    conn.execute("CREATE TABLE v (x)")
    conn.executemany("INSERT INTO v VALUES (?)", [(v,) for v in values])
    rows = list(conn.execute(f"SELECT x, {VIEWS}, {iso('x')} FROM v"))
    assert len(rows) == len(values)
    assert [r for r in rows if r[1] != r[2]] == []
    assert any(r[1] == "2023-11-14T22:13:20.123Z" for r in rows)

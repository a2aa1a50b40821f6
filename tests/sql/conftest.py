"""A fixture .mfdb shared by the SQL tests (built once per session with Writer)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .fixture import build


@pytest.fixture(scope="session")
def fixture_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of the fixture file (read-only use: copy it before writing)."""
    return build(tmp_path_factory.mktemp("sqlfx") / "fixture.mfdb")

"""Code packages from a received file: whatever their bytes, extraction writes nothing
outside its directory and damage is one ``MetaflowDataCorruption`` (never a traceback from
tarfile or a decompressor, which stopped an event's other runs)."""

from __future__ import annotations

import bz2
import io
import lzma
import os
import tarfile
from pathlib import Path

import pytest

from mfstore import code_packages
from mfstore.code_packages import extract_code_package, open_code_package
from mfstore.exception import MetaflowDataCorruption


def _tar(compress=lambda b: b, **pax: str) -> bytes:
    src = os.urandom(300_000) + b"x = 1\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("flow.py")
        info.size = len(src)
        info.pax_headers = dict(pax)
        tar.addfile(info, io.BytesIO(src))
    return compress(buf.getvalue())


def _flip(data: bytes, at: float) -> bytes:
    i = int(len(data) * at)
    return data[:i] + bytes(b ^ 0x5A for b in data[i : i + 50]) + data[i + 50 :]


def _gz(raw: bytes) -> bytes:
    import gzip

    return gzip.compress(raw)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_flip(_tar(bz2.compress), 0.75), id="bz2-damaged"),
        pytest.param(_flip(_tar(lzma.compress), 0.75), id="xz-damaged"),
        pytest.param(_flip(_tar(_gz), 0.75), id="gzip-damaged"),
        pytest.param(_tar(_gz)[:5000], id="gzip-cut"),
        pytest.param(_tar()[:5000], id="tar-cut"),
        pytest.param(b"garbage" * 10, id="junk"),
        pytest.param(b"", id="empty"),
    ],
)
def test_damaged_packages_are_one_error(tmp_path: Path, data: bytes) -> None:
    dest = tmp_path / "x"
    dest.mkdir()
    with pytest.raises(MetaflowDataCorruption, match=r"^The code package is damaged: "):
        extract_code_package(data, str(dest))


@pytest.mark.parametrize("mtime", ["nan", "1e400", "99999999999999999999", "-5"])
def test_a_time_that_is_no_time_is_extracted_as_0(tmp_path: Path, mtime: str) -> None:
    extract_code_package(_tar(_gz, mtime=mtime), str(tmp_path))
    assert (tmp_path / "flow.py").read_bytes().endswith(b"x = 1\n")
    assert os.stat(tmp_path / "flow.py").st_mtime == 0


def test_a_package_larger_than_allowed_unpacked(monkeypatch) -> None:
    monkeypatch.setattr(code_packages, "MAX_UNPACKED", 100_000)
    with pytest.raises(MetaflowDataCorruption, match="more than 100000 bytes uncompressed"):
        open_code_package(_tar(_gz))
    assert open_code_package(_tar()).getnames() == ["flow.py"]  # (uncompressed: its size)

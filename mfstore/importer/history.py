"""Reading a Metaflow local datastore (``.metaflow``): files only, confined to the
directory given; blobs checked against their sha."""

from __future__ import annotations

import contextlib
import errno
import gzip
import json
import os
import re
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from .. import artifacts as _artifacts
from ..artifacts import PreparedArtifact, prepare_raw_artifact
from ..blobs import sha1_hex
from ..exception import HistoryPathError, NotAMetaflowHistory

_MFLOG_RE = re.compile(r"^\[!?MFLOG\|(\d+)\|([^|]+)\|([^|]*)\|([^\]]*)\](.*)$", re.S)


def find_metaflow_root(path: str | os.PathLike[str]) -> Path:
    """``path`` itself if it is a ``.metaflow`` directory, else ``path/.metaflow``."""
    p = Path(path).expanduser()
    if (p / ".metaflow").is_dir():
        p = p / ".metaflow"
    if not p.is_dir():
        raise NotAMetaflowHistory(
            f"{p} is not a directory: give a .metaflow directory or the directory holding it"
        )
    if not any(_is_flow_dir(d) for d in p.iterdir()):
        raise NotAMetaflowHistory(
            f"{p} holds no Metaflow flows (no <Flow>/_meta/_self.json): is it a .metaflow directory?"
        )
    return p


def _is_flow_dir(d: Path) -> bool:
    return d.is_dir() and (d / "_meta" / "_self.json").is_file()


#: The real path of the history being imported: nothing outside it is read.
_confined_to: list[str] = []


@contextlib.contextmanager
def confined_to(root: Path) -> Iterator[None]:
    """Inside the block, every path read must resolve inside ``root``."""
    _confined_to.append(os.path.realpath(root))
    try:
        yield
    finally:
        _confined_to.pop()
        _real_dirs.clear()


def forget_real_paths() -> None:
    """Drop the cached real paths of directories (before reading the next run)."""
    _real_dirs.clear()


_SHA = re.compile(r"^[0-9a-f]{40}$")
P = TypeVar("P", Path, str)


#: Real paths of the directories of the run being read (cleared for every run): a file's
#: real path is its directory's plus its name unless the file itself is a symlink, so
#: each file costs one lstat instead of one per component of its path.
_real_dirs: dict[str, str] = {}


def _realpath(path: str) -> str:
    parent, name = os.path.split(path)
    if not parent or not name or name in (".", "..") or parent == path:
        return os.path.realpath(path)
    real_parent = _real_dirs.get(parent)
    if real_parent is None:
        # Directories too: a parent's real path plus the name, unless it is a symlink.
        real_parent = _real_dirs[parent] = _realpath(parent)
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            return os.path.realpath(path)
    except OSError:
        pass  # missing: realpath too just appends the name
    return os.path.join(real_parent, name)


def _inside(path: P) -> P:
    """``path`` if it (after symlinks) lies inside the history being imported."""
    if _confined_to:
        _check(path, _realpath(os.fspath(path)))
    return path


def _check(path: object, real: str) -> None:
    root = _confined_to[-1]
    if real != root and not real.startswith(root + os.sep):
        raise HistoryPathError(
            f"{path} leads outside the history ({real}): refused, nothing read from it"
        )


#: Open flags of ``read_bytes``: a file that is itself a symlink fails to open (ELOOP)
#: and is then checked like any other path; its directory's real path is remembered.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_READ_SIZE = 1 << 16


def read_bytes(path: str) -> bytes:
    """The bytes of the file at ``path``, which must lie inside the history. One open,
    one read and one close for a small file (a Metaflow task has ~30 of them): the file
    is opened without following a final symlink, so only its directory's real path is
    checked (remembered per run); a symlink is resolved and checked in full."""
    parent, name = os.path.split(path)
    real_parent = _real_dirs.get(parent)
    checked = bool(_confined_to) and real_parent is not None and name not in ("", ".", "..")
    if checked:
        _check(path, os.path.join(str(real_parent), name))
    return _read_all(_open(path, checked))


def _open(path: str, dir_checked: bool) -> int:
    """A descriptor of ``path``; ``dir_checked``: its directory lies inside the history,
    so unless the file itself is a symlink it does too."""
    if dir_checked and _NOFOLLOW:
        try:
            return os.open(path, _OPEN_FLAGS | _NOFOLLOW)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
    return os.open(_inside(path), _OPEN_FLAGS)


def _read_all(fd: int) -> bytes:
    """Read ``fd`` to its end and close it (one read for a small file)."""
    try:
        data = os.read(fd, _READ_SIZE)
        if len(data) < _READ_SIZE:
            return data
        parts = [data]
        while data:
            data = os.read(fd, 1 << 20)
            parts.append(data)
        return b"".join(parts)
    finally:
        os.close(fd)


_decode = json.JSONDecoder().decode


def loads(data: bytes) -> Any:
    """``json.loads`` of a file's bytes (UTF-8 decoded directly: Metaflow writes UTF-8)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return json.loads(data)
    return _decode(text)


def read_json(path: Path | str) -> Any:
    return loads(read_bytes(os.fspath(path)))


class Folder:
    """A directory of the history, checked once (its real path lies inside the history,
    remembered for the run); the files in it are then opened by name without following a
    final symlink: one open, one read and one close each (a task has ~30 files). A file
    that is a symlink is resolved and checked in full."""

    __slots__ = ("_prefix", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self._prefix = path + os.sep
        if _confined_to:
            real = _realpath(path)
            _check(path, real)
            _real_dirs[path] = real

    def read(self, name: str) -> bytes:
        checked = bool(_confined_to) and os.sep not in name and name not in ("", ".", "..")
        return _read_all(_open(self._prefix + name, checked))

    def json(self, name: str) -> Any:
        return loads(self.read(name))

    def names(self) -> list[str]:
        """The names in the directory."""
        return os.listdir(self.path)

    def sub(self, name: str) -> Folder:
        """A directory in this one (checked)."""
        return Folder(self._prefix + name)


def list_runs(root: Path, problems: list[str] | None = None) -> list[tuple[str, Path]]:
    """``(flow_id, run_dir)`` of every run, oldest run id first (resume origins come first).
    Flow or run directories that lead outside the history are skipped (and reported)."""
    out = []
    for flow_dir in sorted(root.iterdir()):
        if not _is_flow_dir(flow_dir):
            continue
        try:
            _inside(flow_dir)
        except HistoryPathError as exc:
            if problems is not None:
                problems.append(f"{flow_dir.name}: not imported ({exc})")
            continue
        for run_dir in flow_dir.iterdir():
            if (
                run_dir.name in ("_meta", "data")
                or not (run_dir / "_meta" / "_self.json").is_file()
            ):
                continue
            out.append((flow_dir.name, run_dir))
    out.sort(key=lambda fr: (int(fr[1].name) if fr[1].name.isdigit() else 0, fr[1].name, fr[0]))
    return out


# -- logs and blobs ------------------------------------------------------------------


def parse_mflog(path: Path) -> Iterator[tuple[int, str]]:
    """``(utc_microseconds, text)`` of each line of an MFLOG file; unparsable lines keep
    the previous line's time (Metaflow shows them last; mfstore keeps file order)."""
    try:
        data = read_bytes(os.fspath(path))
    except FileNotFoundError:
        return
    yield from parse_mflog_bytes(data)


def parse_mflog_bytes(data: bytes) -> Iterator[tuple[int, str]]:
    """``parse_mflog`` of the bytes of an MFLOG file."""
    last = 0
    for raw in data.decode("utf-8", "replace").split("\n"):
        if raw == "":
            continue
        m = _MFLOG_RE.match(raw)
        if m:
            last = _iso_us(m.group(2), last)
            yield last, m.group(5)
        else:
            yield last, raw


def _iso_us(text: str, default: int) -> int:
    try:
        dt = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return default
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


class BlobFiles:
    """The blobs of one flow (``<flow>/data/<sha[:2]>/<sha>``), each checked against its sha."""

    def __init__(self, flow_dir: Path) -> None:
        self.data_dir = os.path.join(os.fspath(flow_dir), "data")

    def load(
        self, sha: str, info: dict[str, Any], what: str, problems: list[str]
    ) -> PreparedArtifact | None:
        """The blob ``sha`` prepared for the writer; None (and a line in ``problems``)
        when it is unreadable or holds other content. A "sha" that is not one (a path)
        raises ``HistoryPathError``: the run is skipped."""
        if not isinstance(sha, str) or not _SHA.match(sha):
            raise HistoryPathError(f"{what}: its sha {sha!r} is not a sha1 hex digest: refused")
        path = os.path.join(self.data_dir, sha[:2], sha)
        try:
            packed = read_bytes(path)  # outside the history: raises, the run is skipped
            cas_raw = False
            with contextlib.suppress(FileNotFoundError):
                cas_raw = bool(read_json(path + "_meta").get("cas_raw"))
            raw = packed if cas_raw else gzip.decompress(packed)
        except HistoryPathError:
            raise
        except (OSError, EOFError, ValueError, gzip.BadGzipFile) as exc:
            problems.append(f"{what}: blob {path} unreadable ({exc})")
            return None
        actual = sha1_hex(raw)
        if actual != sha:
            problems.append(
                f"{what}: blob {sha} holds content with sha {actual}: artifact not imported"
            )
            return None
        type_name, value_json = _describe(raw, info)
        return prepare_raw_artifact(raw, type_name=type_name, value_json=value_json, sha=sha)


def _describe(raw: bytes, info: dict[str, Any]) -> tuple[str, str | None]:
    """Type name and JSON of a pickled value, without running code from the pickle."""
    return _artifacts.describe_pickled(raw, info.get("type"))

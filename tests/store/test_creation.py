"""A new file appears complete or not at all (mfstore/store/publish.py): readers polling
while processes create it see no file or a whole one, a creator killed half-way leaves no
file at the path, and no temporary file is left by a creation that ended."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mfstore.exception import (
    MetaflowNotFound,
    NotAnMfdbError,
    StoreError,
    StoreFullError,
    StoreReadOnlyError,
)
from mfstore.store import Store
from tests.flowfiles import MFSTORE_ROOT

#: A writer creates PATHS in order; a reader polls them in order, each until it opens.
#: Both start at the same instant (argv: role, directory, number of paths, start time).
CHILD = r"""
import json, sys, time
from pathlib import Path
from mfstore.exception import MetaflowNotFound
from mfstore.store import Store
role, directory, n, start = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
paths = [directory / f"new{i}.mfdb" for i in range(n)]
time.sleep(max(0.0, start - time.time()))
if role == "writer":
    for p in paths:
        Store(p, create=True).close()
else:
    errors, opened, deadline = [], 0, time.monotonic() + 60
    for p in paths:
        while time.monotonic() < deadline:
            try:
                Store(p, reader=True).close()
                opened += 1
                break
            except MetaflowNotFound:
                pass
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
    print(json.dumps({"errors": errors, "opened": opened}))
"""

#: Creates argv[1] after patching argv[2] so that the process SIGKILLs itself there.
KILLED = r"""
import os, signal, sys
from pathlib import Path
import mfstore.migrations
import mfstore.store.checks
from mfstore.store import Store

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

where = sys.argv[2]
if where == "in_schema":  # the schema written, not committed
    real = mfstore.migrations.initialize
    def initialize(store):
        real(store)
        die()
    mfstore.migrations.initialize = mfstore.store.checks.initialize = initialize
elif where == "before_publish":  # the file complete under its temporary name
    os.link = die
Store(Path(sys.argv[1]), create=True).close()
"""


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(MFSTORE_ROOT)}


def leftovers(directory: Path, keep: set[str]) -> list[str]:
    """Names in ``directory`` other than ``keep`` and their -wal/-shm."""
    sidecars = {f"{k}{s}" for k in keep for s in ("-wal", "-shm")}
    return sorted(n for n in os.listdir(directory) if n not in keep | sidecars)


def test_readers_never_see_a_file_half_made_by_concurrent_creators(tmp_path: Path) -> None:
    n_paths, n_writers = 12, 6
    start = time.time() + 3.0  # every child has imported mfstore by then
    args = [str(tmp_path), str(n_paths), str(start)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, role, *args],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for role in ["reader", "reader"] + ["writer"] * n_writers
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for proc, (_, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err
    for out, _ in outs[:2]:
        report = json.loads(out)
        assert report == {"errors": [], "opened": n_paths}
    names = {f"new{i}.mfdb" for i in range(n_paths)}
    assert leftovers(tmp_path, names) == []
    for name in names:
        with Store(tmp_path / name, reader=True) as store:
            assert store.scalar("SELECT count(*) FROM runs") == 0


@pytest.mark.parametrize("where", ["in_schema", "before_publish"])
def test_a_creator_killed_half_way_leaves_no_file(
    tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "new.mfdb"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED, str(path), where],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,  # a safety net only
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not path.exists()
    # What it leaves is its hidden temporary file, which no *.mfdb glob matches.
    assert all(n.startswith(".new.mfdb.creating-") for n in os.listdir(tmp_path))
    assert list(tmp_path.glob("*.mfdb")) == []
    from mfstore.store import publish

    # The next creation removes it, its creator's lock being gone, once it is older than
    # the moment between a creator's creating its file and locking it.
    Store(path, create=True).close()
    assert any(n.startswith(".new.mfdb.creating-") for n in os.listdir(tmp_path))
    path.unlink()
    monkeypatch.setattr(publish, "UNLOCKED_STALE_SECONDS", 0.0)
    Store(path, create=True).close()
    assert leftovers(tmp_path, {"new.mfdb"}) == []
    with Store(path, reader=True) as store:
        assert store.scalar("SELECT count(*) FROM runs") == 0


def test_a_failed_creation_leaves_no_file_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mfstore.migrations

    def initialize(store: object) -> None:
        raise RuntimeError("no room")

    monkeypatch.setattr(mfstore.migrations, "initialize", initialize)
    with pytest.raises(RuntimeError, match="no room"):
        Store(tmp_path / "new.mfdb", create=True)
    assert os.listdir(tmp_path) == []


def test_a_creation_leaves_no_temporary_file(tmp_path: Path) -> None:
    Store(tmp_path / "new.mfdb", create=True).close()
    assert leftovers(tmp_path, {"new.mfdb"}) == []


def refuse_links(src: object, dst: object) -> None:
    raise OSError(errno.EPERM, "Operation not permitted")


def test_without_hard_links_a_new_file_is_renamed_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mfstore.store import publish

    monkeypatch.setattr(os, "link", refuse_links)
    path = tmp_path / "new.mfdb"
    Store(path, create=True).close()
    assert leftovers(tmp_path, {"new.mfdb"}) == []
    Store(path, reader=True).close()
    # Another process's file, published first, is kept and used.
    other = tmp_path / "other.mfdb"
    Store(other, create=True).close()
    before = other.read_bytes()
    tmp = tmp_path / ".x"
    tmp.write_bytes(b"x")
    assert publish.rename_noreplace(tmp, other) in (False, None)
    assert other.read_bytes() == before


def test_without_any_atomic_publishing_a_new_file_is_made_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mfstore.store import publish

    monkeypatch.setattr(os, "link", refuse_links)
    monkeypatch.setattr(publish, "rename_noreplace", lambda src, dst: None)
    path = tmp_path / "new.mfdb"
    Store(path, create=True).close()
    assert leftovers(tmp_path, {"new.mfdb"}) == []
    Store(path, reader=True).close()


def test_the_temporary_file_is_never_one_planted_at_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mfstore.store import publish

    planted = tmp_path / ".new.mfdb.creating-planted"
    target = tmp_path / "victim"
    target.write_bytes(b"keep")
    planted.symlink_to(target)
    monkeypatch.setattr(publish, "temp_name", lambda path: planted)
    with pytest.raises(StoreError, match="File exists; nothing was created"):
        Store(tmp_path / "new.mfdb", create=True)
    assert target.read_bytes() == b"keep"
    assert planted.is_symlink()
    assert not (tmp_path / "new.mfdb").exists()


def test_an_empty_file_is_refused_without_advice_to_remove_a_file_being_made(
    tmp_path: Path,
) -> None:
    path = tmp_path / "empty.mfdb"
    path.touch()
    with pytest.raises(NotAnMfdbError) as info:
        Store(path, reader=True)
    message = str(info.value)
    assert "is empty (0 bytes)" in message
    assert "if no process is writing it, remove it" in message
    assert path.stat().st_size == 0


def test_a_dangling_symlink_is_refused_and_its_target_not_created(tmp_path: Path) -> None:
    link = tmp_path / "new.mfdb"
    link.symlink_to(tmp_path / "elsewhere.mfdb")
    with pytest.raises(StoreError, match="symbolic link to a missing file"):
        Store(link, create=True)
    assert sorted(os.listdir(tmp_path)) == ["new.mfdb"]


def test_the_flow_command_creates_its_file_as_any_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``flow.py run`` creates its file through the store's creation (one temporary name,
    the file's own), which removes the temporary file of a creator killed long ago."""
    from mfstore.env import MFSTORE_DB
    from mfstore.runtime.cli_common import State
    from mfstore.runtime.graph import FlowGraph
    from mfstore.store import publish
    from tests.flowfiles import start_end_flow

    path = tmp_path / "new.mfdb"
    stale = publish.temp_name(path)
    stale.touch()
    os.utime(stale, (1, 1))
    named: list[Path] = []
    real = publish.temp_name
    monkeypatch.setattr(publish, "temp_name", lambda p: named.append(p) or real(p))
    monkeypatch.setenv(MFSTORE_DB, str(path))
    flow = start_end_flow("NewFileFlow")
    state = State(flow, FlowGraph(flow))
    state.quiet = True
    state.store(create=True).close()
    assert named == [path]
    assert leftovers(tmp_path, {"new.mfdb"}) == []


def longest(directory: Path) -> int:
    """The longest name of an .mfdb in ``directory`` (its NAME-wal must fit too)."""
    return os.pathconf(directory, "PC_NAME_MAX") - len("-wal")


@pytest.mark.parametrize("char", ["n", "é", "中", "😀"])
@pytest.mark.parametrize("short_of_longest", [0, 1, 10, 26, 33, 34, 40])
def test_a_name_up_to_the_longest_is_created(
    tmp_path: Path, short_of_longest: int, char: str
) -> None:
    """In any characters: a long name's temporary name is cut between characters (cut
    inside one, it was not a name SQLite could open)."""
    room = longest(tmp_path) - short_of_longest - len("a.mfdb")
    path = tmp_path / ("a" + char * (room // len(char.encode())) + ".mfdb")
    Store(path, create=True).close()
    assert leftovers(tmp_path, {path.name}) == []
    with Store(path, reader=True) as store:
        assert store.scalar("SELECT count(*) FROM runs") == 0


def test_stale_temporary_files_are_recognised_by_their_whole_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A creation removes the old temporary files of its own name, also of a name too
    long to be in them whole, and never a file of another name's or not mfstore's."""
    from mfstore.store import publish

    long = tmp_path / ("n" * (longest(tmp_path) - 5) + ".mfdb")
    short = tmp_path / "new.mfdb"
    ours = [publish.temp_name(long), publish.temp_name(short)]
    ours.append(Path(f"{ours[0]}-wal"))
    kept = [
        # another long name with the same head
        publish.temp_name(tmp_path / ("n" * (longest(tmp_path) - 6) + "m.mfdb")),
        # another name that starts as a temporary file of new.mfdb's
        publish.temp_name(tmp_path / "new.mfdb.creating-1-0123abcd"),
        tmp_path / ".new.mfdb.creating-mine",
        tmp_path / ".new.mfdb.creating-1-0123abcd.bak",
        tmp_path / ".new.mfdb.creating-1-0123abcd-journal",
    ]
    for p in ours + kept:
        p.touch()
        os.utime(p, (1, 1))
    Store(long, create=True).close()
    Store(short, create=True).close()
    assert leftovers(tmp_path, {long.name, short.name}) == sorted(p.name for p in kept)


def test_a_temporary_file_is_removed_once_its_creator_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A creator holds its temporary file locked for as long as it builds: a later
    creation of the same file removes a killed creator's at once (nobody holds it), and
    never a live one's, however long it has been quiet."""
    import fcntl

    from mfstore.store import publish

    path = tmp_path / "new.mfdb"
    dead, alive, young = (publish.temp_name(path) for _ in range(3))
    for p in (dead, alive, young):
        p.write_bytes(b"x")
    for p in (dead, alive):
        os.utime(p, (time.time() - 30, time.time() - 30))  # quiet for 30 s
    held = os.open(alive, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)  # a live creator (any process: the lock is the fd's)
        monkeypatch.setattr(publish, "STALE_SECONDS", 0.0)  # only where locks are missing
        Store(path, create=True).close()
        # the young one: a creator between creating its file and taking its lock
        assert leftovers(tmp_path, {path.name}) == sorted([alive.name, young.name])
    finally:
        os.close(held)


def test_older_versions_temporary_files_are_removed_once_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Older mfstore named its temporary files ``.NAME.PID.tmp`` (a flow's run) and
    ``.NAME.snapshot-PID``/``.NAME.export-PID``; they locked nothing, so theirs go by age."""
    from mfstore.store import publish

    path = tmp_path / "new.mfdb"
    legacy = [f".new.mfdb.{n}" for n in ("123.tmp", "snapshot-123", "export-123")]
    others = [".new.mfdb.x.tmp", ".new.mfdb.snapshot-12a", ".other.mfdb.123.tmp"]
    for name in legacy + others:
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (time.time() - 30, time.time() - 30))
    Store(path, create=True).close()  # 30 s old: maybe a live older process's
    assert leftovers(tmp_path, {path.name}) == sorted(legacy + others)
    path.unlink()
    monkeypatch.setattr(publish, "STALE_SECONDS", 20.0)
    Store(path, create=True).close()
    assert leftovers(tmp_path, {path.name}) == sorted(others)


def test_only_a_file_that_was_written_is_published(tmp_path: Path) -> None:
    from mfstore.store import publish

    path = tmp_path / "new.mfdb"
    with pytest.raises(StoreError, match="nothing was written into its temporary file"):
        publish.publish_new(path, lambda tmp: None)
    with pytest.raises(StoreError, match=r"its temporary file .* was removed meanwhile"):
        publish.publish_new(path, lambda tmp: tmp.unlink())
    assert os.listdir(tmp_path) == []


def fail_with(code: int) -> object:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    return fail


@pytest.mark.parametrize(
    "call, code, error",
    [
        ("open", errno.EACCES, StoreReadOnlyError),
        ("open", errno.EROFS, StoreReadOnlyError),
        ("open", errno.ENOSPC, StoreFullError),
        ("fsync", errno.ENOSPC, StoreFullError),
        ("fsync", errno.EIO, StoreError),
        ("link", errno.EDQUOT, StoreFullError),
        ("link", errno.EACCES, StoreReadOnlyError),
    ],
)
def test_a_system_error_is_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str, code: int, error: type
) -> None:
    path = tmp_path / "new.mfdb"
    monkeypatch.setattr(os, call, fail_with(code))
    with pytest.raises(error) as info:
        Store(path, create=True)
    monkeypatch.undo()
    message = str(info.value)
    assert "\n" not in message and str(path) in message and ".creating-" not in message
    assert os.strerror(code) in message and "nothing" in message
    assert os.listdir(tmp_path) == []


def test_a_full_disk_while_the_schema_is_written_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import apsw

    import mfstore.migrations

    def initialize(store: object) -> None:
        raise apsw.FullError("database or disk is full")

    monkeypatch.setattr(mfstore.migrations, "initialize", initialize)
    path = tmp_path / "new.mfdb"
    with pytest.raises(StoreFullError) as info:
        Store(path, create=True)
    message = str(info.value)
    assert message.startswith(f"{path}: the disk is full") and ".creating-" not in message
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("extra", [1, 4, 300])
def test_a_name_too_long_is_one_line_and_leaves_nothing(tmp_path: Path, extra: int) -> None:
    path = tmp_path / ("n" * (longest(tmp_path) + extra - 5) + ".mfdb")
    with pytest.raises(StoreError, match=r"File name too long.*; choose a shorter name"):
        Store(path, create=True)
    # Longer than the system's longest name: opening it says so too.
    with pytest.raises(MetaflowNotFound if extra < 5 else StoreError):
        Store(path, reader=True)
    assert os.listdir(tmp_path) == []


def test_the_mfstore_command_says_in_one_line_why_it_cannot_create(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import mfstore_cli

    too_long = tmp_path / ("n" * (longest(tmp_path) + 1 - 5) + ".mfdb")
    under_a_file = tmp_path / "file" / "new.mfdb"
    (tmp_path / "file").touch()
    for into in (too_long, under_a_file):
        result = mfstore_cli("import-metaflow", str(tmp_path), "--into", str(into))
        assert result.exit_code == 1
        assert result.output.startswith(f"Error: cannot create {into}: ")
        assert result.output.count("\n") == 1 and "Traceback" not in result.output
    src = tmp_path / "src.mfdb"
    Store(src, create=True).close()
    for command in ("snapshot", "export"):
        result = mfstore_cli(command, str(src), str(too_long))
        assert result.exit_code == 1
        assert result.output.startswith(f"Error: cannot create {too_long}: File name too long")
        assert result.output.count("\n") == 1
    for p in (src, Path(f"{src}-wal"), Path(f"{src}-shm")):
        p.unlink(missing_ok=True)
    monkeypatch.setattr(os, "fsync", fail_with(errno.ENOSPC))
    result = mfstore_cli("import-metaflow", str(tmp_path), "--into", str(tmp_path / "new.mfdb"))
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {tmp_path / 'new.mfdb'}: the disk is full")
    assert result.output.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == ["file"]


@pytest.mark.parametrize("where", ["too long", "under a file", "long"])
def test_a_flow_run_says_in_one_line_why_it_cannot_create(tmp_path: Path, where: str) -> None:
    from tests.flowfiles import FlowRunner

    flows = FlowRunner(tmp_path)
    n = {"too long": longest(tmp_path) + 1, "long": longest(tmp_path)}.get(where, 8)
    flows.db = tmp_path / ("n" * (n - 5) + ".mfdb")
    if where == "under a file":
        (tmp_path / "file").touch()
        flows.db = tmp_path / "file" / "new.mfdb"
    cp = flows.run("linear_params_flow.py", "run", check=False)
    if where == "long":
        assert cp.returncode == 0, cp.stderr
        assert leftovers(tmp_path, {flows.db.name, "linear_params_flow.py"}) == []
        return
    assert cp.returncode == 1 and "Traceback" not in cp.stderr, cp.stderr
    # Metaflow's layout: the headline, then the message on one line.
    lines = cp.stderr.splitlines()
    at = lines.index("    mfstore file error:")
    assert lines[at + 1].startswith(f"    cannot create {flows.db}: ")
    assert lines[at + 2 :] == [""]
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["linear_params_flow.py"] + ["file"] * (where == "under a file")
    )


def test_or_replace_renames_where_nothing_can_be_published_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``publish_new(or_replace=True)`` (snapshot, export): without hard links or an
    exclusive rename, the file is renamed into place unless a file is there."""
    from mfstore.store import publish

    monkeypatch.setattr(os, "link", refuse_links)
    monkeypatch.setattr(publish, "rename_noreplace", lambda src, dst: None)

    new = publish.SQLITE_HEADER + b"new"  # only a SQLite file is published

    def build(tmp: Path) -> None:
        tmp.write_bytes(new)

    path = tmp_path / "new.bin"
    assert publish.publish_new(path, build) is None
    assert os.listdir(tmp_path) == []
    assert publish.publish_new(path, build, or_replace=True) is True
    assert path.read_bytes() == new
    path.write_bytes(b"theirs")
    assert publish.publish_new(path, build, or_replace=True) is False
    assert path.read_bytes() == b"theirs"
    assert os.listdir(tmp_path) == ["new.bin"]

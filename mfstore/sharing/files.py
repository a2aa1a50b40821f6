"""Whole-file commands: snapshot, export, merge (written to a temp file, fsynced, renamed)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import suppress
from glob import escape as glob_escape
from pathlib import Path

from .. import query
from ..blobs import Progress
from ..exception import CommandException, StoreError, StoreFullError, disk_full, is_no_room
from ..store import Store
from .copy import CopyReport, copy_runs
from .select import RunFilter, select_runs

# -- commands --------------------------------------------------------------------------


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with suppress(OSError):  # some file systems cannot fsync a directory
        _fsync(path)


def _fresh_target(dst: Path) -> Path:
    if dst.exists():
        raise CommandException(
            f"{dst} already exists: choose a new file name (nothing was written)"
        )
    for suffix in ("-wal", "-shm", "-journal"):
        if Path(str(dst) + suffix).exists():
            raise CommandException(f"{dst}{suffix} exists beside the target: remove it first")
    if not dst.parent.is_dir():
        raise CommandException(f"directory {dst.parent} does not exist")
    return dst


def remove_stale_temp_files(dst: Path, kind: str) -> list[Path]:
    """Remove what a killed ``snapshot``/``export`` to ``dst`` left: the hidden
    ``.NAME.<kind>-PID`` file (and its -wal/-shm) of a process that no longer runs."""
    removed = []
    prefix = f".{dst.name}.{kind}-"
    for p in dst.parent.glob(f".{glob_escape(dst.name)}.{kind}-*"):
        pid_text = p.name[len(prefix) :].split("-", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def snapshot(src_path: Path, dst_path: Path) -> int:
    """Consistent single-file copy of ``src_path`` at ``dst_path`` (VACUUM INTO), even
    while other processes write; fsynced; returns its size in bytes. A failure (a full
    disk) leaves no ``dst_path`` and no temporary file."""
    dst_path = _fresh_target(Path(dst_path))
    with _new_file(
        dst_path,
        "snapshot",
        f"no snapshot was written (nothing left beside it) and {src_path} is unchanged",
        "free some space there, or snapshot to another disk",
    ) as tmp:
        src = Store(src_path, reader=True)
        try:
            # VACUUM INTO reads one snapshot of the source (a read transaction: writers go on).
            src.execute("VACUUM INTO ?", (str(tmp),))
        finally:
            src.close()
    return dst_path.stat().st_size


@contextlib.contextmanager
def _new_file(dst_path: Path, kind: str, unwritten: str, advice: str) -> Iterator[Path]:
    """A temporary path beside ``dst_path`` for the body to write: renamed to ``dst_path``
    (fsynced) when the body succeeds, removed with its sidecars when anything fails. A full
    disk is reported as ``disk_full(dst_path, unwritten, advice)``."""
    remove_stale_temp_files(dst_path, kind)
    tmp = dst_path.with_name(f".{dst_path.name}.{kind}-{os.getpid()}")
    _remove_with_sidecars(tmp)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, dst_path)
        _fsync_dir(dst_path.parent)
    except BaseException as exc:
        _remove_with_sidecars(tmp)
        if is_no_room(exc):
            raise disk_full(dst_path, unwritten, advice) from None
        raise


def _remove_with_sidecars(path: Path) -> None:
    for p in (path, *(Path(f"{path}{s}") for s in ("-wal", "-shm", "-journal"))):
        p.unlink(missing_ok=True)


def export(
    src_path: Path, dst_path: Path, f: RunFilter, *, progress: Progress | None = None
) -> CopyReport:
    """Write the runs of ``src_path`` matching ``f`` to a new file ``dst_path``. A
    failure (a full disk) leaves no ``dst_path`` and no temporary file."""
    dst_path = _fresh_target(Path(dst_path))
    # Salvage: a file refused for a planted SQL object can still be exported; the copy
    # reads only the data tables and the new file is made from schema.sql alone.
    src = Store(src_path, salvage=True)
    try:
        run_pks = select_runs(src, f)
        with _new_file(
            dst_path,
            "export",
            f"nothing was exported (no file and no temporary file left) and "
            f"{src_path} is unchanged",
            "free some space there, or export to another disk",
        ) as tmp:
            dst = Store(tmp, create=True)
            try:
                report = copy_runs(src, dst, run_pks, progress=progress)
                if not dst.checkpoint():
                    raise StoreError(
                        f"{tmp}: could not fold its log into the file; nothing exported"
                    )
            finally:
                dst.close()
            # Everything is in the main file (checkpointed): a finished export leaves no
            # -wal/-shm of its temporary file behind.
            for p in (Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
                p.unlink(missing_ok=True)
    finally:
        src.close()
    return report


def merge(
    other_path: Path,
    into_path: Path,
    *,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> CopyReport:
    """Add the runs of ``other_path`` to ``into_path`` (see the module docstring).

    THEIRS is checked first (``guards.check_source``: every blob that would be
    copied verifies, no run is future-dated, no row is malformed); any failure refuses
    the whole merge before anything is written. Each run added carries a provenance
    system tag (``Run.merged_from``). ``dry_run``: check and report, write nothing
    (``report.preview``: flow, user, runs that would come in, runs already there).
    """
    from ..guards import check_source, make_provenance, preview
    from ..identity import get_username

    if Path(other_path).absolute() == Path(into_path).absolute():
        raise CommandException(f"cannot merge {other_path} into itself")
    other = Store(other_path, reader=True)
    try:
        run_pks = [int(r[0]) for r in other.query(query.ALL_RUNS)]
        # Checked with MINE opened only to read: a refused merge leaves it as it was.
        exists = Path(into_path).exists()
        mine = Store(into_path, reader=True) if exists else Store(":memory:")
        try:
            check_source(other, mine, run_pks)
            if dry_run:
                report = CopyReport()
                report.preview = preview(other, mine, run_pks)
                return report
        finally:
            mine.close()
        tag = make_provenance(other, run_pks, get_username()).tag()
        nothing = f"nothing was merged (one transaction): {into_path} is as it was"
        try:
            into = Store(into_path, create=True)
        except StoreFullError:
            raise disk_full(into_path, nothing) from None
        try:
            try:
                report = copy_runs(other, into, run_pks, progress=progress, provenance=tag)
            except StoreFullError:
                raise disk_full(into_path, nothing) from None
            fold_after_commit(into, f"the merge ({len(report.added)} runs added) is kept")
        finally:
            into.close()
    finally:
        other.close()
    return report


def fold_after_commit(store: Store, kept: str) -> None:
    """Checkpoint after a committed change; a full disk there loses nothing (the change
    stays in the -wal file beside the file), and the message says so."""
    try:
        store.checkpoint()
    except StoreFullError:
        raise disk_full(
            store.path,
            f"{kept}, in {store.path.name}-wal beside the file (copy the two together, or "
            "`mfstore snapshot` it once there is room)",
            "free some space: the next write to the file folds it in",
        ) from None

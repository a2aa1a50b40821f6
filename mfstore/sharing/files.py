"""Whole-file commands: snapshot and export (a new file, made as every new file is:
``store.publish_new``), merge."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .. import query
from ..blobs import Progress
from ..exception import CommandException, StoreError, StoreFullError, disk_full
from ..store import SIDECARS, Store, build_new_file, publish_new
from .copy import CopyReport, copy_runs
from .select import RunFilter, select_runs

# -- commands --------------------------------------------------------------------------


def _fresh_target(dst: Path) -> Path:
    # (os.path.exists: a name too long has no file; publish_new says it is too long)
    if os.path.exists(dst):
        raise CommandException(
            f"{dst} already exists: choose a new file name (nothing was written)"
        )
    for suffix in SIDECARS:
        if os.path.exists(f"{dst}{suffix}"):
            raise CommandException(f"{dst}{suffix} exists beside the target: remove it first")
    if not dst.parent.is_dir():
        what = "is not a directory" if dst.parent.exists() else "does not exist"
        raise CommandException(f"directory {dst.parent} {what}")
    return dst


def _write_new(
    dst_path: Path, build: Callable[[Path], None], kind: str, unwritten: str, advice: str
) -> None:
    """Write the new file ``dst_path`` with ``build(tmp)`` as every new file is made
    (``store.publish_new``: under a hidden temporary name, fsynced, published atomically,
    never over another file; a killed one's temporary file is removed by a later one).
    A full disk is reported as ``disk_full(dst_path, unwritten, advice)``; nothing is
    left beside ``dst_path`` by a failure."""
    try:
        published = publish_new(
            dst_path, build, or_replace=True, elsewhere=f"{kind} to another place"
        )
    except StoreFullError:
        raise disk_full(dst_path, unwritten, advice) from None
    if not published:
        raise CommandException(
            f"{dst_path} was created by another process meanwhile and is kept; {unwritten}; "
            "choose a new file name"
        )


def snapshot(src_path: Path, dst_path: Path) -> int:
    """Consistent single-file copy of ``src_path`` at ``dst_path`` (VACUUM INTO), even
    while other processes write; fsynced; returns its size in bytes. A failure (a full
    disk) leaves no ``dst_path`` and no temporary file."""
    dst_path = _fresh_target(Path(dst_path))

    def build(tmp: Path) -> None:
        src = Store(src_path, reader=True)
        try:
            # VACUUM INTO reads one snapshot of the source (a read transaction: writers
            # go on); it writes into the empty temporary file.
            # (absolute: a relative name starting "file:" would be read as a URI)
            src.execute("VACUUM INTO ?", (os.path.abspath(tmp),))
        finally:
            src.close()

    _write_new(
        dst_path,
        build,
        "snapshot",
        f"no snapshot was written (nothing left beside it) and {src_path} is unchanged",
        "free some space there, or snapshot to another disk",
    )
    return dst_path.stat().st_size


def export(
    src_path: Path, dst_path: Path, f: RunFilter, *, progress: Progress | None = None
) -> CopyReport:
    """Write the runs of ``src_path`` matching ``f`` to a new file ``dst_path``. A
    failure (a full disk) leaves no ``dst_path`` and no temporary file."""
    dst_path = _fresh_target(Path(dst_path))
    # Salvage: a file refused for a planted SQL object can still be exported; the copy
    # reads only the data tables and the new file is made from schema.sql alone.
    src = Store(src_path, salvage=True)
    reports: list[CopyReport] = []

    def build(tmp: Path) -> None:
        build_new_file(tmp)
        dst = Store(tmp)
        try:
            reports.append(copy_runs(src, dst, run_pks, progress=progress))
            # Everything in the main file: the published file has no -wal to go with it.
            if not dst.checkpoint():
                raise StoreError(
                    f"{dst_path}: could not fold the new file's log into it; nothing exported"
                )
        finally:
            dst.close()

    try:
        run_pks = select_runs(src, f)
        _write_new(
            dst_path,
            build,
            "export",
            f"nothing was exported (no file and no temporary file left) and "
            f"{src_path} is unchanged",
            "free some space there, or export to another disk",
        )
    finally:
        src.close()
    return reports[0]


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

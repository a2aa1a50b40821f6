"""``mfstore`` commands for sharing files: snapshot, export, merge, import-metaflow,
delete, verify, stats. The logic lives in ``mfstore.sharing`` and ``mfstore.importer``."""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..env import MFSTORE_DB
from ..escape import escape_terminal
from ..exception import CliError, StoreFullError, disk_full
from .common import (
    errors,
    mfdb_option,
    missing_file,
    progress,
    resolve_file,
)
from .output import Output, columns, output_options

_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class _Filters:
    """The run-filter options as given (see ``_filter_options``)."""

    flow: str | None
    namespace: str | None
    tags: tuple[str, ...]
    runs: tuple[str, ...]
    since: str | None
    before: str | None

    def run_filter(self, pathspecs: tuple[str, ...] = ()) -> Any:
        """The ``RunFilter`` of these options and ``pathspecs`` (parses the times: call it
        inside ``errors()``)."""
        from ..sharing import RunFilter, parse_time

        return RunFilter(
            flow=self.flow,
            namespace=self.namespace,
            tags=self.tags,
            pathspecs=(*pathspecs, *self.runs),
            since=parse_time(self.since) if self.since else None,
            before=parse_time(self.before) if self.before else None,
        )


def _filter_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The run-filter options, handed to ``f`` as one ``_Filters`` (keyword ``filters``)."""

    @functools.wraps(f)
    def with_filters(**kwargs: Any) -> Any:
        given = {field.name: kwargs.pop(field.name) for field in dataclasses.fields(_Filters)}
        return f(filters=_Filters(**given), **kwargs)

    for opt in reversed(
        [
            click.option("--flow", help="Only runs of this flow."),
            click.option(
                "--namespace",
                callback=lambda _ctx, _param, value: value or None,
                help='Only runs carrying this tag, e.g. user:alice or production:tok; "" = all.',
            ),
            click.option(
                "--tag",
                "tags",
                multiple=True,
                help="Only runs carrying this tag (repeat: all must match).",
            ),
            click.option(
                "--run",
                "runs",
                multiple=True,
                metavar="PATHSPEC",
                help="Only this run, Flow/RunId (repeatable).",
            ),
            click.option("--since", metavar="ISO", help="Only runs created at or after this time."),
            click.option("--before", metavar="ISO", help="Only runs created before this time."),
        ]
    ):
        with_filters = opt(with_filters)
    return with_filters


def _mb(n: int) -> str:
    return "%.2f MB" % (n / 1e6)


def _existing(path: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise missing_file(p)
    return p


def register(cli: click.Group) -> None:
    """Add the sharing commands to the ``mfstore`` group."""

    @cli.command()
    @click.argument("src", metavar="SRC")
    @click.argument("dst", metavar="DST")
    def snapshot(src: str, dst: str) -> None:
        """Copy SRC to DST consistently, even while runs are writing to SRC.

        DST is one self-contained file (no -wal/-shm beside it), fsynced.

        Example:

            mfstore snapshot metaflow.mfdb backup.mfdb
        """
        from ..sharing import snapshot as do

        with errors():
            size = do(_existing(src), Path(dst))
        click.echo(escape_terminal(f"snapshot {src} -> {dst}: {_mb(size)}"))

    @cli.command()
    @click.argument("src", metavar="SRC")
    @click.argument("dst", metavar="DST")
    @_filter_options
    def export(src: str, dst: str, filters: _Filters) -> None:
        """Write the runs of SRC matching the filters to a new file DST.

        DST holds those runs with their steps, tasks, logs, metadata, code, and only
        the blobs they reference.

        Example:

            mfstore export metaflow.mfdb for-bob.mfdb --flow TeamCollabFlow --tag shared
        """
        from ..sharing import export as do

        with errors():
            f = filters.run_filter()
            with progress("export") as update:
                report = do(_existing(src), Path(dst), f, progress=update)
        click.echo(
            escape_terminal(
                f"exported {len(report.added)} runs to {dst} ({report.blobs_added} blobs, "
                f"{_mb(Path(dst).stat().st_size)})"
            )
        )

    @cli.command()
    @click.argument("src", metavar="SRC")
    @click.option(
        "--into",
        metavar="DST",
        help=f"The file to merge into (default: ${MFSTORE_DB}, else the discovered metaflow.mfdb).",
    )
    @click.option(
        "--dry-run",
        is_flag=True,
        help="Check SRC and list what would come in, per flow and user; write nothing.",
    )
    def merge(src: str, into: str | None, dry_run: bool) -> None:
        """Add the runs of SRC to DST, in one transaction.

        Runs already there with the same content are skipped; user tag edits from both
        files are reconciled; a run present in both with different content is reported
        and left untouched. SRC is checked first: if a blob that would be copied does
        not verify, a run is dated in the future or a row is malformed, nothing is
        copied. Each run added records where it came from (a merged-from: system tag,
        Run.merged_from).

        Example:

            mfstore merge backup.mfdb --into metaflow.mfdb
        """
        from ..sharing import merge as do

        with errors():
            target = resolve_file(into, must_exist=False)
            with progress("merge") as update:
                report = do(_existing(src), target, progress=update, dry_run=dry_run)
        if dry_run:
            for flow, user, new, known in report.preview:
                click.echo(
                    escape_terminal(
                        f"{flow}  {user or '-'}  {new} would be added  {known} already there"
                    )
                )
            total = sum(p[2] for p in report.preview)
            click.echo(f"dry run: {total} runs would be added to {target}; nothing was written")
            return
        for line in report.conflicts:
            click.echo(escape_terminal(f"conflict (left untouched): {line}"), err=True)
        click.echo(
            escape_terminal(
                f"merged {src} into {target}: {len(report.added)} added, "
                f"{len(report.identical)} identical, {len(report.retagged)} retagged, "
                f"{len(report.conflicts)} conflicts, {report.blobs_added} new blobs"
            )
        )

    @cli.command("import-metaflow")
    @click.argument("path", metavar="SRC")
    @click.option(
        "--into",
        metavar="DST",
        help=f"The file to import into (default: ${MFSTORE_DB}, else the discovered metaflow.mfdb, "
        "else ./metaflow.mfdb).",
    )
    def import_metaflow(path: str, into: str | None) -> None:
        """Import a Metaflow local history SRC (a .metaflow directory, or its parent).

        Re-importing is safe: runs already imported are skipped, tag edits are synced.

        Example:

            mfstore import-metaflow ~/project/.metaflow --into project.mfdb
        """
        from ..importer import import_metaflow as do
        from ..provider import default_write_path
        from ..store import Store

        src = Path(path).expanduser()
        if not src.exists():
            raise CliError(f"{src} does not exist")
        with errors():
            target = Path(into) if into else default_write_path()
            try:
                store = Store(target, create=True)
            except StoreFullError:
                raise disk_full(target, f"nothing was imported: {target} is as it was") from None
            try:
                with progress("import") as update:
                    report = do(src, store, progress=update)
            finally:
                store.close()
        for line in report.problems + ["conflict (left untouched): " + c for c in report.conflicts]:
            click.echo(escape_terminal(line), err=True)
        click.echo(
            escape_terminal(
                f"imported {len(report.added)} runs ({report.tasks} tasks read) into {target} "
                f"in {report.seconds:.1f}s: {len(report.identical)} already present, "
                f"{len(report.retagged)} retagged, {len(report.conflicts)} conflicts, "
                f"{len(report.problems)} problems"
            )
        )

    @cli.command()
    @click.argument("pathspecs", nargs=-1, metavar="[PATHSPEC]...")
    @_filter_options
    @click.option("--dry-run", is_flag=True, help="Only list the runs that would be deleted.")
    @click.option(
        "--force",
        is_flag=True,
        help="Also delete runs still marked running whose runtime is gone (idle for 10 minutes).",
    )
    @click.option(
        "--yes",
        "-y",
        is_flag=True,
        help="Do not ask for confirmation (required when not on a terminal).",
    )
    @mfdb_option
    @click.option("--into", "legacy_into", hidden=True, default=None)
    def delete(
        pathspecs: tuple[str, ...],
        filters: _Filters,
        dry_run: bool,
        force: bool,
        yes: bool,
        mfdb: str | None,
        legacy_into: str | None,
    ) -> None:
        """Delete runs (Flow/RunId pathspecs and/or filters) and reclaim their space.

        Blobs still used by a kept run stay; the file shrinks. Runs still running are
        refused; --force deletes those whose runtime is gone (no activity for 10 minutes).
        Asks for confirmation on a terminal; otherwise --yes is required.

        Example:

            mfstore delete --flow TeamCollabFlow --before 2020-01-01 --dry-run
        """
        from ..sharing import delete as do

        if mfdb and legacy_into:
            raise click.UsageError("give the file once, with --mfdb FILE")
        target = resolve_file(mfdb or legacy_into)
        with errors(), progress("delete: planning") as update:
            f = filters.run_filter(pathspecs)
            planned = do(target, f, dry_run=True, force=force, progress=update)
        if dry_run:
            for ps in planned.runs:
                click.echo(escape_terminal(ps))
            click.echo(
                escape_terminal(
                    f"would delete {len(planned.runs)} runs ({planned.tasks} tasks) from {target}"
                )
            )
            return
        if not planned.runs:
            click.echo(escape_terminal(f"no run matches: nothing deleted from {target}"))
            return
        if not yes:
            question = escape_terminal(
                f"delete {len(planned.runs)} runs ({planned.tasks} tasks) from {target}?"
            )
            if not _stdin_is_terminal():
                raise click.UsageError(
                    f"{question} Not on a terminal, so not asking: add --yes to delete"
                )
            if not click.confirm(question, default=False):
                raise CliError("nothing deleted")
        with errors(), progress("delete") as update:
            report = do(target, f, force=force, progress=update)
        click.echo(
            escape_terminal(
                f"deleted {len(report.runs)} runs ({report.tasks} tasks), {report.blobs_removed} "
                f"blobs from {target}: {_mb(report.bytes_before)} -> {_mb(report.bytes_after)}"
            )
        )

    @cli.command()
    @click.argument("file", required=False, metavar="")
    @mfdb_option
    def upgrade(file: str | None, mfdb: str | None) -> None:
        """Migrate the file to this mfstore's file format, in one transaction.

        Reading (the Client API, flows, runs, show, logs, sql, verify, stats) never
        changes a file, so an older file is migrated only by a write or by this command.

        Example:

            mfstore upgrade --mfdb old.mfdb
        """
        from ..migrations import FORMAT_VERSION
        from ..store import Store

        path = resolve_file(_one_file(file, mfdb))
        with errors():
            with open(path, "rb") as fh:
                header = fh.read(100)
            before = int.from_bytes(header[60:64], "big") if len(header) == 100 else None
            try:
                Store(path).close()  # checks the file, migrates it in one transaction
            except StoreFullError:
                raise disk_full(
                    path,
                    f"it was not migrated (one transaction): still file format {before}, unchanged",
                ) from None
        if before == FORMAT_VERSION:
            click.echo(escape_terminal(f"{path} is already file format {FORMAT_VERSION}"))
        else:
            click.echo(escape_terminal(f"{path}: file format {before} -> {FORMAT_VERSION}"))

    @cli.command()
    @click.argument("legacy_file", required=False, metavar="")
    @mfdb_option
    @output_options(tabular=False)
    def verify(legacy_file: str | None, mfdb: str | None, out: Output) -> None:
        """Check the file: SQLite integrity, every blob against its sha, every artifact's
        blob and every task's run present. Exits 1 if anything is wrong.

        Example:

            mfstore verify --mfdb metaflow.mfdb
        """
        from ..sharing import verify as do

        target, problems = _run_on_file("verify", do, legacy_file, mfdb)
        if out.is_json:
            out.document({"file": str(target), "ok": not problems, "problems": problems})
        else:
            for p in problems:
                click.echo(escape_terminal(p))
        if problems:
            n = len(problems)
            raise CliError(f"{target}: {n} problem{'' if n == 1 else 's'} found")
        if not out.is_json:
            click.echo(escape_terminal(f"{target}: ok"))

    @cli.command()
    @click.argument("legacy_file", required=False, metavar="")
    @mfdb_option
    @output_options()
    def stats(legacy_file: str | None, mfdb: str | None, out: Output) -> None:
        """Runs, tasks and artifacts per flow; stored vs raw bytes; dedup and compression ratios.

        A table on a terminal, one TSV line per flow when piped, everything with --json.

        Example:

            mfstore stats --mfdb metaflow.mfdb
        """
        from ..sharing import stats as do

        _, s = _run_on_file("stats", do, legacy_file, mfdb)
        if out.is_json:
            out.document(s)
            return
        cols = columns(
            "flow",
            "runs",
            "successful",
            "failed",
            "running",
            "tasks",
            "artifacts",
            "artifact_bytes",
            flow="id",
            runs="num",
            tasks="num",
            artifacts="num",
            artifact_bytes="num",
        )
        rows = [(name, *(f.get(c.name, 0) for c in cols[1:])) for name, f in s["flows"].items()]
        summary = (
            f"{s['file']}: {s['runs']} runs, {s['tasks']} tasks, {s['artifacts']} artifacts; "
            f"artifacts {_mb(s['artifact_bytes'])}, distinct {_mb(s['raw_bytes'])}, "
            f"stored {_mb(s['stored_bytes'])}; dedup {s['dedup_ratio']}x, "
            f"compression {s['compression_ratio']}x; file {_mb(s['file_bytes'])}"
        )
        out.rows(cols, iter(rows), title="flows", footer=summary)


def _run_on_file(
    what: str, action: Callable[..., _T], legacy: str | None, mfdb: str | None
) -> tuple[Path, _T]:
    """The file a command names and ``action(file, progress=...)``'s result, run with the
    command's progress line and one-line errors."""
    target = resolve_file(_one_file(legacy, mfdb))
    with errors(), progress(what) as update:
        return target, action(target, progress=update)


def _one_file(legacy: str | None, mfdb: str | None) -> str | None:
    if legacy and mfdb:
        raise click.UsageError("give the file once, with --mfdb FILE")
    return mfdb or legacy


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False

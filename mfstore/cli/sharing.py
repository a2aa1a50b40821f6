"""``mfstore`` commands for sharing files: snapshot, export, merge, import-metaflow,
delete, verify, stats. The logic lives in ``mfstore.sharing`` and ``mfstore.importer``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..exception import MetaflowException


def _default_file() -> Path | None:
    from ..provider import discover

    return discover()


def _file_or_default(path: str | None, what: str = "FILE") -> Path:
    if path:
        return Path(path)
    found = _default_file()
    if found is None:
        raise click.ClickException(
            f"no {what} given and no metaflow.mfdb found here or above (set MFSTORE_DB or pass --into)"
        )
    return found


@contextmanager
def _errors() -> Iterator[None]:
    """Library errors -> one-line click errors."""
    try:
        yield
    except click.ClickException:
        raise
    except MetaflowException as exc:
        raise click.ClickException(
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        ) from None
    except OSError as exc:
        raise click.ClickException(f"{exc}") from None


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int, str], None]]:
    """A rich progress bar on stderr (hidden when stderr is not a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("", total=None)

        def update(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what)

        yield update


def _filter_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(
        [
            click.option("--flow", help="Only runs of this flow."),
            click.option(
                "--namespace",
                help="Only runs carrying this tag, e.g. user:alice or production:tok.",
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
        f = opt(f)
    return f


def _make_filter(
    flow: str | None,
    namespace: str | None,
    tags: tuple[str, ...],
    runs: tuple[str, ...],
    since: str | None,
    before: str | None,
    pathspecs: tuple[str, ...] = (),
) -> Any:
    from ..sharing import RunFilter, parse_time

    return RunFilter(
        flow=flow,
        namespace=namespace,
        tags=tags,
        pathspecs=(*pathspecs, *runs),
        since=parse_time(since) if since else None,
        before=parse_time(before) if before else None,
    )


def _mb(n: int) -> str:
    return "%.2f MB" % (n / 1e6)


def register(cli: click.Group) -> None:
    """Add the sharing commands to the ``mfstore`` group."""

    @cli.command()
    @click.argument("src", type=click.Path(exists=True, dir_okay=False))
    @click.argument("dst", type=click.Path(dir_okay=False))
    def snapshot(src: str, dst: str) -> None:
        """Copy SRC to DST consistently, even while runs are writing to SRC.

        DST is one self-contained file (no -wal/-shm beside it), fsynced.

        Example:

            mfstore snapshot metaflow.mfdb backup/2026-11-24.mfdb
        """
        from ..sharing import snapshot as do

        with _errors():
            size = do(Path(src), Path(dst))
        click.echo(f"snapshot {src} -> {dst}: {_mb(size)}")

    @cli.command()
    @click.argument("src", type=click.Path(exists=True, dir_okay=False))
    @click.argument("dst", type=click.Path(dir_okay=False))
    @_filter_options
    def export(
        src: str,
        dst: str,
        flow: str | None,
        namespace: str | None,
        tags: tuple[str, ...],
        runs: tuple[str, ...],
        since: str | None,
        before: str | None,
    ) -> None:
        """Write the runs of SRC matching the filters to a new file DST.

        DST holds those runs with their steps, tasks, logs, metadata, code, and only
        the blobs they reference.

        Example:

            mfstore export metaflow.mfdb for-bob.mfdb --flow TrainFlow --tag exp1 --since 2026-11-01
        """
        from ..sharing import export as do

        with _errors():
            f = _make_filter(flow, namespace, tags, runs, since, before)
            with _progress("export") as progress:
                report = do(Path(src), Path(dst), f, progress=progress)
        click.echo(
            f"exported {len(report.added)} runs to {dst} ({report.blobs_added} blobs, {_mb(Path(dst).stat().st_size)})"
        )

    @cli.command()
    @click.argument("other", type=click.Path(exists=True, dir_okay=False))
    @click.option(
        "--into",
        type=click.Path(dir_okay=False),
        help="Target file (default: the discovered metaflow.mfdb).",
    )
    def merge(other: str, into: str | None) -> None:
        """Add the runs of OTHER to the target file, in one transaction.

        Runs already there with the same content are skipped; user tag edits from both
        files are reconciled; a run present in both with different content is reported
        and left untouched.

        Example:

            mfstore merge from-alice.mfdb --into metaflow.mfdb
        """
        from ..sharing import merge as do

        with _errors():
            target = _file_or_default(into, "--into")
            with _progress("merge") as progress:
                report = do(Path(other), target, progress=progress)
        for line in report.conflicts:
            click.echo(f"conflict (left untouched): {line}", err=True)
        click.echo(
            f"merged {other} into {target}: {len(report.added)} added, {len(report.identical)} identical, {len(report.retagged)} retagged, {len(report.conflicts)} conflicts, {report.blobs_added} new blobs"
        )

    @cli.command("import-metaflow")
    @click.argument("path", type=click.Path(exists=True, file_okay=False))
    @click.option(
        "--into",
        type=click.Path(dir_okay=False),
        help="Target file (default: the discovered metaflow.mfdb, else ./metaflow.mfdb).",
    )
    def import_metaflow(path: str, into: str | None) -> None:
        """Import a Metaflow local history (a .metaflow directory, or its parent).

        Re-importing is safe: runs already imported are skipped, tag edits are synced.

        Example:

            mfstore import-metaflow ~/project/.metaflow --into project.mfdb
        """
        from ..importer import import_metaflow as do
        from ..provider import default_write_path
        from ..store import Store

        with _errors():
            target = Path(into) if into else default_write_path()
            store = Store(target, create=True)
            try:
                with _progress("import") as progress:
                    report = do(path, store, progress=progress)
            finally:
                store.close()
        for line in report.problems + ["conflict (left untouched): " + c for c in report.conflicts]:
            click.echo(line, err=True)
        click.echo(
            f"imported {len(report.imported)} runs ({report.tasks} tasks read) into {target} in {report.seconds:.1f}s: {len(report.skipped)} already present, {len(report.retagged)} retagged, {len(report.conflicts)} conflicts, {len(report.problems)} problems"
        )

    @cli.command()
    @click.argument("pathspecs", nargs=-1, metavar="[PATHSPEC]...")
    @_filter_options
    @click.option("--dry-run", is_flag=True, help="Only list the runs that would be deleted.")
    @click.option(
        "--into",
        "file",
        type=click.Path(exists=True, dir_okay=False),
        help="The file (default: the discovered metaflow.mfdb).",
    )
    def delete(
        pathspecs: tuple[str, ...],
        flow: str | None,
        namespace: str | None,
        tags: tuple[str, ...],
        runs: tuple[str, ...],
        since: str | None,
        before: str | None,
        dry_run: bool,
        file: str | None,
    ) -> None:
        """Delete runs (Flow/RunId pathspecs and/or filters) and reclaim their space.

        Blobs still used by a kept run stay; the file shrinks.

        Example:

            mfstore delete --flow TrainFlow --before 2026-01-01 --dry-run
        """
        from ..sharing import delete as do

        with _errors():
            target = _file_or_default(file, "--into")
            f = _make_filter(flow, namespace, tags, runs, since, before, pathspecs)
            report = do(target, f, dry_run=dry_run)
        if dry_run:
            for ps in report.runs:
                click.echo(ps)
            click.echo(f"would delete {len(report.runs)} runs ({report.tasks} tasks) from {target}")
        else:
            click.echo(
                f"deleted {len(report.runs)} runs ({report.tasks} tasks), {report.blobs_removed} blobs from {target}: {_mb(report.bytes_before)} -> {_mb(report.bytes_after)}"
            )

    @cli.command()
    @click.argument("file", type=click.Path(exists=True, dir_okay=False), required=False)
    def verify(file: str | None) -> None:
        """Check FILE: SQLite integrity, every blob against its sha, every artifact's
        blob and every task's run present. Exits 1 if anything is wrong.

        Example:

            mfstore verify metaflow.mfdb
        """
        from ..sharing import verify as do

        with _errors():
            target = _file_or_default(file)
            with _progress("verify") as progress:
                problems = do(target, progress=progress)
        for p in problems:
            click.echo(p)
        if problems:
            raise click.ClickException(f"{target}: {len(problems)} problems found")
        click.echo(f"{target}: ok")

    @cli.command()
    @click.argument("file", type=click.Path(exists=True, dir_okay=False), required=False)
    @click.option("--table", is_flag=True, help="A table for people instead of JSON.")
    def stats(file: str | None, table: bool) -> None:
        """Runs, tasks and artifacts per flow; stored vs raw bytes; dedup and compression ratios.

        Example:

            mfstore stats metaflow.mfdb --table
        """
        from ..sharing import stats as do

        with _errors():
            s = do(_file_or_default(file))
        if not table:
            click.echo(json.dumps(s, indent=2, ensure_ascii=False))
            return
        click.echo(
            "{!s:<28} {!s:6} {!s:7} {!s:9} {!s:12}".format(
                "flow", "runs", "tasks", "artifacts", "artifact MB"
            )
        )
        for name, f in s["flows"].items():
            click.echo(
                "{!s:<28} {:6d} {:7d} {:9d} {:12.2f}".format(
                    name,
                    f["runs"],
                    f.get("tasks", 0),
                    f.get("artifacts", 0),
                    f.get("artifact_bytes", 0) / 1e6,
                )
            )
        click.echo(
            "{}: {} runs, {} tasks, {} artifacts; artifacts {}, distinct {}, stored {}; dedup {}x, compression {}x; file {}".format(
                s["file"],
                s["runs"],
                s["tasks"],
                s["artifacts"],
                _mb(s["artifact_bytes"]),
                _mb(s["raw_bytes"]),
                _mb(s["stored_bytes"]),
                s["dedup_ratio"],
                s["compression_ratio"],
                _mb(s["file_bytes"]),
            )
        )

"""``mfstore ui``: serve a .mfdb in the browser, or export it as a static site (issue 17)."""

from __future__ import annotations

from pathlib import Path

import click

from ..exception import MetaflowException
from .common import mfdb_option, resolve_file


def register(cli: click.Group) -> None:
    """Add the ``ui`` command to the ``mfstore`` group."""
    cli.add_command(ui)


@click.command()
@click.argument("file", required=False, metavar="", type=click.Path(dir_okay=False, path_type=Path))
@mfdb_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind (localhost only by default).",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: a free one).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a web browser.")
@click.option(
    "--export",
    "export_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the pages as a static site into this directory instead of serving.",
)
@click.option(
    "--runs", default=100, show_default=True, type=int, help="With --export: newest runs per flow."
)
def ui(
    file: Path | None,
    mfdb: str | None,
    host: str,
    port: int,
    open_browser: bool,
    export_dir: Path | None,
    runs: int,
) -> None:
    """Look at a .mfdb in the browser: flows, runs, DAG, timeline, logs, artifacts,
    comparisons and search. The file is opened read-only and never written.

    The file: --mfdb FILE, else $MFSTORE_DB, else metaflow.mfdb in this directory or a parent.

    Example:

        mfstore ui --mfdb metaflow.mfdb --open

        mfstore ui --mfdb metaflow.mfdb --export report/
    """
    if file is not None and mfdb:
        raise click.UsageError("give the file once, with --mfdb FILE")
    path = resolve_file(mfdb or file)
    try:
        from .. import ui as ui_pkg

        if export_dir is not None:
            n = ui_pkg.export_site(path, export_dir, runs=runs)
            click.echo(f"wrote {n} pages to {export_dir} (open {export_dir / 'index.html'})")
            return
        ui_pkg.serve(
            path,
            host=host,
            port=port,
            open_browser=open_browser,
            announce=lambda url: click.echo(
                f"mfstore ui: serving {path} (read-only) on {url}  (Ctrl-C to stop)"
            ),
        )
    except MetaflowException as exc:
        raise click.ClickException(" ".join(str(exc).split())) from None

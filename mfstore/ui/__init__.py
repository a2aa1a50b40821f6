"""``mfstore ui``: look at a .mfdb in the browser (Starlette + Jinja2, server-rendered).

Nothing here is imported by ``import mfstore``. The file is opened read-only and never
written (not even a ``-wal``/``-shm`` beside it when there was none), nothing is ever
unpickled, and the server binds to localhost unless told otherwise.

- ``create_app(path)``: the ASGI application (``mfstore.ui.app``)
- ``export_site(path, directory)``: the same pages as a static site (``mfstore.ui.export``)
- ``serve(path, host=..., port=...)``: run it with uvicorn
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["create_app", "export_site", "serve"]


def create_app(path: Path | str) -> Any:
    """The Starlette application serving ``path``."""
    from .app import create_app as _create

    return _create(path)


def export_site(path: Path | str, directory: Path | str, *, runs: int = 100) -> int:
    """Write the pages of ``path`` (the newest ``runs`` runs of each flow) under ``directory``
    as a static site that works from ``file://``; returns the number of pages written."""
    from .export import export_site as _export

    return _export(path, directory, runs=runs)


def serve(
    path: Path | str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    open_browser: bool = False,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve the UI of ``path`` until interrupted.

    The socket is bound before anything is announced: ``port=0`` picks a free port, and
    ``announce`` (if given) is called with the URL actually listened on. A port that cannot
    be bound raises :class:`~mfstore.exception.CliError`.
    """
    import errno
    import socket

    import uvicorn

    from ..exception import CliError

    app = create_app(path)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            todo = "give --host an address of this machine (e.g. 127.0.0.1)"
        else:
            todo = "give another --port (--port 0 picks a free one)"
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; {todo}") from None
    url = "http://{}:{}/".format(f"[{host}]" if ":" in host else host, sock.getsockname()[1])
    if announce is not None:
        announce(url)
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(0.8, webbrowser.open, args=(url,)).start()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()

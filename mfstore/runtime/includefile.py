"""``IncludeFile``: a Parameter whose command-line value is a local file; steps see the
file's content (``str``, or ``bytes`` with ``is_text=False``), stored in the run like any
parameter value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mfstore.exception import MetaflowException

from .parameters import Parameter


class _FileType(click.ParamType):  # type: ignore[type-arg]
    name = "FILE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return value


class IncludeFile(Parameter):
    """Include a local file with the run: ``data = IncludeFile("data", default="x.csv")``.

    ``python flow.py run --data other.csv`` includes another file; a missing file without
    ``required=True`` gives None.
    """

    def __init__(
        self,
        name: str,
        default: Any = None,
        *,
        is_text: bool = True,
        encoding: str = "utf-8",
        required: bool | None = None,
        help: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            name, default=default, type=_FileType(), help=help, required=required, **kwargs
        )
        self.is_text = is_text
        self.encoding = encoding

    def finish(self, value: Any) -> Any:
        """Read the file named on the command line (or by the default)."""
        if value is None:
            return None
        path = Path(str(value)).expanduser()
        if not path.exists():
            if self.required:
                raise MetaflowException(
                    f"IncludeFile *{self.name}*: the file {path} does not exist"
                )
            return None
        if not path.is_file():
            raise MetaflowException(f"IncludeFile *{self.name}*: {path} is not a file")
        data = path.read_bytes()
        return data.decode(self.encoding) if self.is_text else data

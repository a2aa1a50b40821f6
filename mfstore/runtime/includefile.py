"""``IncludeFile``: a Parameter whose command-line value is a local file; steps see the
file's content (``str``, or ``bytes`` with ``is_text=False``), stored in the run like any
parameter value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mfstore.exception import CommandException, MetaflowException

from . import deployed
from .parameters import Parameter


class IncludedFile:
    """Metaflow's ``metaflow.includefile.IncludedFile`` (an included file's descriptor and
    content), kept so that code written for Metaflow imports it (Metaflow's own core tests
    check ``isinstance(artifact, IncludedFile)``). mfstore stores an included file's content
    as the artifact itself, so no artifact it returns is one."""

    def __init__(self, descriptor: str, content: Any = None) -> None:
        self.descriptor = descriptor
        self.content = content

    def decode(self, name: str, var_type: str = "Artifact") -> Any:
        """The file's content."""
        return self.content


class _FileType(click.ParamType):  # type: ignore[type-arg]
    name = "FILE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return value


class IncludeFile(Parameter):
    """A Parameter whose value is the content of a local file, stored with the run.

    ``--name PATH`` (or ``default``) names the file; when the run starts its content is
    read and stored in the .mfdb like any parameter value, so every step, a ``resume``
    and the Client see the same bytes even after the file changes. ``production create``
    reads the default file and keeps its bytes with the deployment (one it cannot read
    fails the deployment), and the deployment's runs use them, as in Metaflow. Unlike Metaflow,
    mfstore reads local paths only (no ``s3://`` ...), and a missing file gives None
    unless the parameter is required.

    Parameters
    ----------
    name : str
        The option's name (``--name PATH``).
    default : str, optional, default None
        The path read when the option is not given (``~`` expanded).
    is_text : bool, default True
        Steps see the content as ``str`` decoded with ``encoding``; False: as ``bytes``.
    encoding : str, default "utf-8"
        The text encoding (with ``is_text``); content not valid in it stops the run with
        a one-line error.
    required : bool, optional, default None
        A value is required, and the file must exist.
    help : str, optional, default None
        The option's help text.
    **kwargs : any
        Other Parameter keywords (``show_default`` ...).

    Example
    -------
    ::

        class LoadFlow(FlowSpec):
            data = IncludeFile("data", default="rows.csv")

            @step
            def start(self):
                self.n = len(self.data.splitlines())
                self.next(self.end)
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
        """Read the file named on the command line (or by the default; in a production
        run, the default's content as ``production create`` read it)."""
        ctx = click.get_current_context(silent=True)
        from_default = ctx is not None and ctx.get_parameter_source(self.dest) in (
            None,
            click.core.ParameterSource.DEFAULT,
        )
        fixed = deployed.current().files
        if from_default and self.name in fixed:
            return self._decoded(fixed[self.name])
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
        return self._decoded(path.read_bytes(), path)

    @property
    def deployed_section(self) -> str | None:
        """A value fixed for an IncludeFile is its default file's bytes (``files``)."""
        return deployed.FILES

    def _evaluate_default(self, flow_name: str, deploy_time: bool | None = None) -> Any:
        """The default function's path; in a production run whose deployment kept the
        default file's bytes, the function is not called again (``finish`` uses the bytes),
        as in Metaflow, whose deployed default is the file ``create`` uploaded."""
        if deploy_time is None and self.name in deployed.current().files:
            return self.name  # (a value, so a required one is given; finish ignores it)
        return super()._evaluate_default(flow_name, deploy_time)

    def _decoded(self, data: bytes, path: Path | None = None) -> Any:
        """The content as steps see it: ``bytes``, or text in ``encoding`` (content that is
        not is refused with one line; without ``path``, the deployment's copy of the file)."""
        if not self.is_text:
            return data
        try:
            return data.decode(self.encoding)
        except UnicodeDecodeError as e:
            where = path or "the default file kept with this run's deployment"
            raise MetaflowException(
                f"IncludeFile *{self.name}*: the content of {where} is not valid {self.encoding} "
                f"text ({e.reason} at byte {e.start}): give a file in {self.encoding}, the "
                "file's encoding as encoding=, or is_text=False to read its bytes"
            ) from None
        except LookupError:
            raise MetaflowException(
                f"IncludeFile *{self.name}*: there is no text encoding {self.encoding!r}"
            ) from None

    def deploy_time_content(self, flow_name: str) -> bytes | None:
        """The default file's bytes, read by ``production create`` to be kept with the
        deployment, as Metaflow's create reads (and uploads) it: a file that cannot be read
        fails the deployment (Metaflow's words), and so does text not in its encoding (every
        run would refuse it). None without a default."""
        path = self.deploy_time_default(flow_name) if callable(self.default) else self.default
        if path is None:
            return None
        try:
            content = Path(str(path)).expanduser().read_bytes()
        except OSError:
            raise CommandException(
                f"IncludeFile: could not open file '{path}' for reading"
            ) from None
        self._decoded(content, Path(str(path)))
        return content

"""``MetaflowCode``: the code package (a tarball blob) stored with a run."""

from __future__ import annotations

import io
import json
import tarfile
from tempfile import TemporaryDirectory
from typing import Any

from .. import query
from ..code_packages import extract_code_package, open_code_package, read_member
from ..exception import MetaflowDataCorruption, MetaflowInternalError
from ..store import Store
from ._guard import guard_class


class MetaflowCode:
    """
    Snapshot of the code used to execute this `Run`. Instantiate the object through
    `Run(...).code` or `Task(...).code` for an individual task. The code package is
    the same for all steps of a `Run`.

    mfstore stores the code package (deduplicated) with every run it executes,
    local runs included.

    The `TarFile` for the `Run` is given by `Run(...).code.tarball`

    Attributes
    ----------
    path : str
        Location (in the .mfdb file) of the code package.
    info : Dict[str, str]
        Dictionary of information related to this code-package.
    flowspec : str
        Source code of the file containing the `FlowSpec` in this code package.
    tarball : TarFile
        Python standard library `tarfile.TarFile` archive containing all the code.
    """

    def __init__(self, store: Store, sha: str, *, flow_name: str) -> None:
        from ..blobs import get_blob

        row = store.one(*query.compile_code_package(sha))
        if row is None:
            raise MetaflowInternalError(f"Code package {sha} is missing from {store.path}")
        script_name, info_json = row
        self._flow_name = flow_name
        self._sha = sha
        self._path = f"{store.path}#code_packages/{sha}"
        self._info: dict[str, Any] = {**json.loads(info_json), "script": script_name}
        self._code_obj = io.BytesIO(get_blob(store, sha, what=f"code package of {flow_name}"))
        self._tarball: tarfile.TarFile | None = None
        self._flowspec: str | None = None

    @property
    def path(self) -> str:
        """
        Location (in the .mfdb file) of the code package.

        Returns
        -------
        str
            Full path of the code package
        """
        return self._path

    @property
    def info(self) -> dict[str, Any]:
        """
        Metadata associated with the code package.

        Returns
        -------
        Dict[str, str]
            Dictionary of metadata. Keys and values are strings
        """
        return self._info

    @property
    def flowspec(self) -> str:
        """
        Source code of the Python file containing the FlowSpec.

        Returns
        -------
        str
            Content of the Python file
        """
        if self._flowspec is None:
            raw = read_member(self.tarball, self.script_name)
            if raw is None:
                raise MetaflowInternalError("Code package metadata is invalid.")
            try:
                self._flowspec = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise MetaflowDataCorruption(
                    "The code package is damaged: its script is not UTF-8 text"
                ) from None
        return self._flowspec

    @property
    def tarball(self) -> tarfile.TarFile:
        """
        TarFile for this code package.

        Returns
        -------
        TarFile
            TarFile for everything in this code package
        """
        if self._tarball is None:
            # (in memory, kept open for the object's life: ``tarball`` is a property)
            self._tarball = open_code_package(self._code_obj.getvalue())
        return self._tarball

    def extract(self) -> TemporaryDirectory[str]:
        """
        Extracts the code package to a temporary directory.

        This creates a temporary directory containing all user code
        files from the code package. The temporary directory is
        automatically deleted when the returned TemporaryDirectory
        object is garbage collected or when its cleanup() is called.

        Returns
        -------
        TemporaryDirectory
            A temporary directory containing the extracted code files.
            The directory and its contents are automatically deleted when
            this object is garbage collected.
        """
        tmp = TemporaryDirectory()
        extract_code_package(self._code_obj.getvalue(), tmp.name)
        return tmp

    @property
    def script_name(self) -> str:
        """
        Returns the filename of the Python script containing the FlowSpec.

        This is the main Python file that was used to execute the flow. For example,
        if your flow is defined in 'myflow.py', this property will return 'myflow.py'.

        Returns
        -------
        str
            Name of the Python file containing the FlowSpec
        """
        return str(self._info["script"])

    def __str__(self) -> str:
        return "<MetaflowCode: {}>".format(self._info["script"])

    def __repr__(self) -> str:
        return str(self)


guard_class(MetaflowCode)

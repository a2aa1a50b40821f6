"""The public API: a sorted ``__all__``, docstrings, and a light ``import mfstore``."""

from __future__ import annotations

import json
import subprocess
import sys

import mfstore


def test_all_sorted_and_documented():
    # the runtime's names too (tests/runtime/test_docstrings.py checks how well)
    assert mfstore.__all__ == sorted(mfstore.__all__)
    for name in mfstore.__all__:
        obj = getattr(mfstore, name)
        assert (obj.__doc__ or "").strip(), name


def test_client_members_documented():
    from mfstore import DataArtifact, Flow, Metaflow, MetaflowCode, MetaflowData, Run, Step, Task
    from mfstore.client import MetaflowTrigger

    for cls in (
        Metaflow,
        Flow,
        Run,
        Step,
        Task,
        DataArtifact,
        MetaflowData,
        MetaflowCode,
        MetaflowTrigger,
    ):
        assert _undocumented(cls) == []


def _undocumented(cls: type) -> list[str]:
    return [
        f"{cls.__name__}.{name}"
        for name, member in vars(cls).items()
        if not name.startswith("_") or name in ("__iter__", "__getitem__", "__contains__")
        if callable(member) or isinstance(member, property)
        if not (member.__doc__ or "").strip()
    ]


def test_runtime_members_documented():
    """What a flow uses (``self.name``, ``self.next``, ``self.merge_artifacts``, the
    ``current`` facts, a Parameter's methods) is documented as the client's names are."""
    from mfstore.runtime import FlowSpec, IncludeFile, Parameter
    from mfstore.runtime.current import Current

    assert [
        m for cls in (FlowSpec, Parameter, IncludeFile, Current) for m in _undocumented(cls)
    ] == []


def test_cold_import_is_light():
    code = (
        "import sys, mfstore; "
        "print(','.join(m for m in ('cloudpickle', 'zstandard', 'click', 'rich', "
        "'mfstore.runtime') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_unknown_attribute():
    import pytest

    with pytest.raises(AttributeError):
        mfstore.no_such_name


def test_all_is_exactly_the_public_names() -> None:
    # httpx's check: nothing public sneaks in (typing names, __future__, submodules),
    # also after every name was used and submodules were imported.
    code = (
        "import json, mfstore, mfstore.store, mfstore.writer\n"
        "for name in mfstore.__all__: getattr(mfstore, name)\n"
        "print(json.dumps(sorted(n for n in vars(mfstore) if not n.startswith('_'))))\n"
        "print(json.dumps(sorted(n for n in dir(mfstore) if not n.startswith('_'))))\n"
        "print(mfstore.store.__name__, mfstore.query.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    public, listed, modules = out.stdout.splitlines()
    assert json.loads(public) == sorted(mfstore.__all__)
    assert json.loads(listed) == sorted(mfstore.__all__)
    assert modules == "mfstore.store mfstore.query"  # submodules still reachable


def test_every_public_name_is_its_homes_own() -> None:
    # mfstore serves each name from mfstore.runtime or mfstore.client: every runtime name
    # is in mfstore's list, and each name is the very object its home exports.
    import mfstore.client
    import mfstore.runtime

    assert set(mfstore.runtime.__all__) <= set(mfstore.__all__)
    for name in mfstore.__all__:
        homes = [m for m in (mfstore.runtime, mfstore.client) if name in m.__all__]
        assert len(homes) == 1, name
        assert getattr(mfstore, name) is getattr(homes[0], name), name

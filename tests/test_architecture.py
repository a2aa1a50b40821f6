"""Where the code sits: imports run one way between the concerns, with no circle.

cli/runtime -> client, sharing, importer, production (and ui, the Metaflow extension)
-> writer, query, artifacts, provider -> blobs -> store -> migrations -> exception.
Every import counts, also one inside a function (a lazy import is still a dependency);
only ``if TYPE_CHECKING:`` blocks are left out.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import mfstore

PACKAGE = Path(mfstore.__file__).resolve().parent

#: Layer of each concern: a module may import its own layer or lower ones only.
LAYERS = {
    "exception": 0,
    "_version": 0,
    "migrations": 1,
    "identity": 1,
    "tags": 1,
    "schema": 1,
    "store": 2,
    "blobs": 3,
    "artifacts": 4,
    "query": 4,
    "provider": 4,
    "writer": 4,
    "client": 5,
    "sharing": 5,
    "guards": 5,
    "cards": 5,
    "importer": 5,
    "production": 5,
    "ui": 5,
    "metaflow_ext": 5,
    "cli": 6,
    "runtime": 6,
    "__init__": 7,
    "__main__": 7,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """mfstore modules ``path`` imports (anywhere but under ``if TYPE_CHECKING``)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text("utf-8"))
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                out.add(full if _is_module(full) else target)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func).endswith("import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            target = node.args[0].value
            out.add(package + target if target.startswith(".") else target)
    return {m for m in out if m.split(".")[0] == "mfstore"} - {name}


def _is_module(dotted: str) -> bool:
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _concern(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        src = _concern(_module_name(path))
        for target in _imports(path):
            dst = _concern(target)
            if dst != src:
                graph[src].add(dst)
    return graph


def test_every_concern_has_a_layer() -> None:
    concerns = {_concern(_module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert concerns <= set(LAYERS), sorted(concerns - set(LAYERS))


def test_every_import_names_a_module_that_exists() -> None:
    # A relative import left behind by a move (``from .identity`` in a subpackage)
    # would otherwise only fail when its function runs.
    missing = [
        f"{_module_name(path)} -> {target}"
        for path in PACKAGE.rglob("*.py")
        for target in _imports(path)
        if not _is_module(target)
    ]
    for path in PACKAGE.rglob("*.py"):
        depth = len(_module_name(path).split(".")) - (path.name != "__init__.py")
        missing += [
            f"{_module_name(path)}: from {'.' * node.level}{node.module or ''} (above mfstore)"
            for node in ast.walk(ast.parse(path.read_text("utf-8")))
            if isinstance(node, ast.ImportFrom) and node.level > depth
        ]
    assert missing == []


def test_imports_run_one_way() -> None:
    upward = [
        f"{src} -> {dst}"
        for src, targets in sorted(_graph().items())
        for dst in sorted(targets)
        if LAYERS[dst] > LAYERS[src]
    ]
    assert upward == []


def test_no_import_circles_between_concerns() -> None:
    graph = _graph()
    circles = []
    for start in sorted(graph):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    circles.append(" -> ".join([*path, nxt]))
                elif nxt not in path:
                    stack.append((nxt, [*path, nxt]))
    assert circles == []


def test_the_format_and_the_store_import_one_way() -> None:
    assert "mfstore.store" not in _imports(PACKAGE / "migrations.py")
    assert "mfstore.store" not in _imports(PACKAGE / "blobs.py")


def test_task_processes_never_import_the_writer() -> None:
    task = _imports(PACKAGE / "runtime" / "task.py")
    assert "mfstore.writer" not in task and "mfstore.artifacts" in task


def test_the_recorded_schema_digest_is_current() -> None:
    """The schema check's fast path (mfstore/schema.py) records the digest of a new file's
    schema (made from schema.sql); change it together with schema.sql."""
    from mfstore import schema
    from mfstore.migrations import FORMAT_VERSION
    from mfstore.store import Store

    store = Store(":memory:")
    try:
        text = store.query(schema.SCHEMA_TEXT_SQL)[0][1]
    finally:
        store.close()
    current = (FORMAT_VERSION, schema.digest(text))
    assert current == schema.AS_CREATED_DIGEST, (
        f"schema.sql changed: set AS_CREATED_DIGEST = {current!r} in mfstore/schema.py"
    )

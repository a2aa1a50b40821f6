"""Where the code sits: imports run one way between the concerns, with no circle.

cli/runtime -> client, sharing, importer, production (and ui, the Metaflow extension)
-> writer, query, artifacts, provider -> blobs -> store -> migrations -> exception.
Every import counts, also one inside a function (a lazy import is still a dependency)
and one under ``if TYPE_CHECKING:`` (a name used only in annotations is one too: such a
type lives below its users, or the user takes a ``Protocol`` of its own).
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections import defaultdict
from pathlib import Path

import mfstore

PACKAGE = Path(mfstore.__file__).resolve().parent

#: Layer of each concern: a module may import its own layer or lower ones only.
LAYERS = {
    "exception": 0,
    "_version": 0,
    "env": 0,
    "escape": 0,
    "migrations": 1,
    "identity": 1,
    "tags": 1,
    "schema": 1,
    "store": 2,
    "blobs": 3,
    "artifacts": 4,
    "code_packages": 4,
    "query": 4,
    "provider": 4,
    "writer": 4,
    "client": 5,
    "sharing": 5,
    "guards": 5,
    "cards": 5,
    "importer": 5,
    "deployments": 5,
    "production": 5,
    "ui": 5,
    "metaflow_ext": 5,
    "cli": 6,
    "runtime": 6,
    "__init__": 7,
    "__main__": 7,
}


def _module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _from_target(node: ast.ImportFrom, package: str) -> str:
    """The module ``from <module> import ...`` names, in ``package`` (a relative one
    resolved)."""
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(path: Path, root: Path = PACKAGE, *, type_only: bool = True) -> set[str]:
    """Modules of the package at ``root`` (mfstore) that ``path`` imports, anywhere in it
    (also inside functions and ``if TYPE_CHECKING:``). ``from pkg import name`` of a name
    that is not a module is an import of ``pkg`` itself (its ``__init__``).
    ``type_only=False``: only what runs (``if TYPE_CHECKING:`` blocks left out)."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text("utf-8"))
    skip = {
        id(n)
        for node in ast.walk(tree)
        if not type_only and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            target = _from_target(node, package)
            for alias in node.names:
                full = f"{target}.{alias.name}"
                out.add(full if _is_module(full, root) else target)
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
    # ``import a.b.c`` first runs ``a.b``'s ``__init__`` (and ``a``'s): a dependency too,
    # but for the importer's own packages (already running when it runs).
    own = {".".join(name.split(".")[:i]) for i in range(1, len(name.split(".")))}
    out |= {
        ".".join(m.split(".")[:i]) for m in list(out) for i in range(2, len(m.split(".")))
    } - own
    return {m for m in out if m.split(".")[0] == root.name} - {name}


def _is_module(dotted: str, root: Path = PACKAGE) -> bool:
    path = root.parent.joinpath(*dotted.split("."))
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


def _circles(graph: dict[str, set[str]]) -> list[str]:
    """One circle (``a -> b -> a``) through each group of nodes that import each other
    (the strongly connected components of ``graph`` with more than one node)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in order:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], order[nxt])
        if low[node] == order[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in order:
            visit(node)
    circles = []
    for group in groups:
        start = min(group)
        # the shortest way back to ``start`` inside the group (breadth first)
        paths = {start: [start]}
        queue = [start]
        while queue:
            node = queue.pop(0)
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    circles.append(" -> ".join([*paths[node], start]))
                    queue = []
                    break
                if nxt in group and nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    queue.append(nxt)
    return sorted(circles)


def _module_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    return {_module_name(p, root): _imports(p, root) for p in root.rglob("*.py")}


def test_no_import_circles_between_concerns() -> None:
    assert _circles(_graph()) == []


def test_no_import_circles_between_modules() -> None:
    """No module imports itself back through others, also inside one concern, and also
    through a package's ``__init__`` (``pkg/__init__`` importing ``pkg.a``, which takes a
    name from ``pkg``). Lazy imports count: they are dependencies all the same."""
    assert _circles(_module_graph()) == []


def test_the_circle_check_sees_circles_through_package_inits(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .a import f\nHELPER = 1\n")
    (pkg / "sub" / "a.py").write_text("def f():\n    from . import HELPER\n")
    (pkg / "b.py").write_text("from pkg.c import x\n")
    (pkg / "c.py").write_text("import pkg.b\nx = 1\n")
    (pkg / "d.py").write_text("from .sub import a\nfrom . import c\n")  # no circle
    # ``import pkg.two.y`` runs ``pkg/two/__init__``, which imports pkg.x back
    (pkg / "two").mkdir()
    (pkg / "two" / "__init__.py").write_text("from pkg import x\n")
    (pkg / "two" / "y.py").write_text("")
    (pkg / "x.py").write_text("def f():\n    import pkg.two.y\n")
    # a name used only in annotations still ties two modules together
    (pkg / "t1.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .t2 import T\n"
    )
    (pkg / "t2.py").write_text("from .t1 import f\nT = int\n")
    assert _circles(_module_graph(pkg)) == [
        "pkg.b -> pkg.c -> pkg.b",
        "pkg.sub -> pkg.sub.a -> pkg.sub",
        "pkg.t1 -> pkg.t2 -> pkg.t1",
        "pkg.two -> pkg.x -> pkg.two",
    ]


#: Longest module (lines): a longer one is split into a package of coherent modules.
MAX_MODULE_LINES = 600


def test_no_module_is_over_the_size_limit() -> None:
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text("utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_the_format_and_the_store_import_one_way() -> None:
    assert "mfstore.store" not in _imports(PACKAGE / "migrations.py")
    # The blobs name ``Store`` in annotations only: a task process loads no store.
    for path in (PACKAGE / "blobs").rglob("*.py"):
        assert "mfstore.store" not in _imports(path, type_only=False), path


def test_executors_know_the_task_not_the_run_loop() -> None:
    """``runtime.executors`` run tasks (``runtime.task``) for the scheduler: nothing in them
    imports the run loop or the commands above it (scheduler -> executors -> task)."""
    above = ("scheduler", "launch", "cli", "cli_common", "production_cli", "tag_cli")
    found = [
        f"{_module_name(path)} -> {target}"
        for path in (PACKAGE / "runtime" / "executors").rglob("*.py")
        for target in _imports(path)
        if target.split(".")[1:] == ["runtime"] or target.split(".")[2:3] in ([a] for a in above)
    ]
    assert found == []


#: Run as a Dask worker runs a task (``executors.worker``): a process that has not loaded
#: the store forks a task process, which runs step ``middle`` of LinearParamsFlow with its
#: input ``x`` read from a blob sent with the task; prints what the task process loaded.
_TASK_PROCESS = """
import importlib.util, json, pickle, sys
from mfstore.runtime.executors.worker import MemoryBlobs, run_forked
from mfstore.runtime.graph import FlowGraph
from mfstore.runtime.task import ArtifactRef, InputSource, TaskSpec, load_result, run_task

flow_file, result_path = sys.argv[1:]
found = importlib.util.spec_from_file_location("linear_params_flow", flow_file)
module = importlib.util.module_from_spec(found)
found.loader.exec_module(module)
graph = FlowGraph(module.LinearParamsFlow)
x = ArtifactRef("ab" * 20, "builtins.int", None)  # no value_json: loaded from its blob
spec = TaskSpec("LinearParamsFlow", "1", "middle", "2", 0, 0, [InputSource("start", "1", {"x": x})],
                [], "", result_path)
loaded = []

def body():
    code = run_task(module.LinearParamsFlow, graph, graph.graph_info([], []), spec,
                    MemoryBlobs({x.sha: pickle.dumps(20)}))
    print("LOADED", json.dumps(sorted(sys.modules)))
    return code

lines, status, _ = run_forked(body, lambda *a: None, lambda: False)
result = load_result(result_path)
out = [line for _, line in lines["stdout"]]
print(json.dumps({"status": status, "ok": result and result.task_ok, "out": out,
                  "y": result and result.artifacts["y"].value_json}))
"""


def test_task_processes_never_import_the_writer_or_the_store(tmp_path: Path) -> None:
    """A task process imports ``artifacts`` and ``blobs``, never ``writer`` or ``store``:
    ``runtime.task`` does not import them, and a real task process run the way a Dask
    worker runs one (not a fork of the runtime, which has them loaded) loads neither, nor
    the provider or SQLite's driver. (A process forked from the runtime gets its blobs
    from the file through ``runtime.local_task``, which the runtime imports.)"""
    import json
    import subprocess
    import sys

    from tests.flowfiles import install

    task = _imports(PACKAGE / "runtime" / "task.py")
    assert not task & {"mfstore.writer", "mfstore.store", "mfstore.provider"}
    assert "mfstore.artifacts" in task
    flow = install("linear_params_flow.py", tmp_path)
    cp = subprocess.run(
        [sys.executable, "-c", _TASK_PROCESS, str(flow), str(tmp_path / "result")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert cp.returncode == 0, cp.stderr[-3000:]
    report = json.loads(cp.stdout.strip().splitlines()[-1])
    assert (report["status"], report["ok"], report["y"]) == (0, True, "21"), report
    line = next(line for line in report["out"] if line.startswith("LOADED "))
    loaded = set(json.loads(line.removeprefix("LOADED ")))
    assert "mfstore.artifacts" in loaded and "mfstore.blobs" in loaded
    assert sorted(loaded & {"mfstore.writer", "mfstore.store", "mfstore.provider", "apsw"}) == []


def test_the_recorded_schema_digest_is_current() -> None:
    """The schema check's fast path (mfstore/schema.py) records the digest of a new file's
    schema (made from schema.sql); change it together with schema.sql."""
    from mfstore import schema
    from mfstore.migrations import FORMAT_VERSION
    from mfstore.store import Store

    store = Store(":memory:")
    try:
        text = store.query(schema.SCHEMA_TEXT_SQL)[0][1]
        sorted_text = store.query(schema.SORTED_SCHEMA_TEXT_SQL)[0][1]
    finally:
        store.close()
    current = (FORMAT_VERSION, schema.digest(text))
    assert current == schema.AS_CREATED_DIGEST, (
        f"schema.sql changed: set AS_CREATED_DIGEST = {current!r} in mfstore/schema.py"
    )
    current = (FORMAT_VERSION, schema.digest(sorted_text))
    assert current == schema.AS_CREATED_SORTED_DIGEST, (
        f"schema.sql changed: set AS_CREATED_SORTED_DIGEST = {current!r} in mfstore/schema.py"
    )


def test_no_module_imports_another_modules_private_names() -> None:
    """``from mfstore.x import _name`` reaches into another module's private state: a name
    two modules share is public in its home (a private module, ``client._object``, is
    imported by name, which is fine)."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if not isinstance(node, ast.ImportFrom) or (node.module or "") == "__future__":
                continue
            target = _from_target(node, package)
            found += [
                f"{name}: from {target} import {alias.name}"
                for alias in node.names
                if alias.name.startswith("_")
                and not alias.name.startswith("__")
                and not _is_module(f"{target}.{alias.name}")
            ]
    assert found == []


def _exception_classes_outside_home(root: Path) -> list[str]:
    """Classes under ``root`` (a package) but outside its ``exception.py`` that derive from
    an exception: a base named as a builtin exception, as an exception of ``exception.py``,
    as a class found here, or ``...Error`` / ``...Exception`` / ``...Warning`` (``Exit``,
    ``Interrupt``); also classes nested in functions."""
    import builtins

    names = {
        n for n, o in vars(builtins).items() if isinstance(o, type) and issubclass(o, BaseException)
    }
    home = root / "exception.py"
    if home.exists():
        names |= {
            n.name
            for n in ast.walk(ast.parse(home.read_text("utf-8")))
            if isinstance(n, ast.ClassDef)
        }
    classes = [
        (path, node)
        for path in sorted(root.rglob("*.py"))
        if path != home
        for node in ast.walk(ast.parse(path.read_text("utf-8")))
        if isinstance(node, ast.ClassDef)
    ]
    suffixes = ("Error", "Exception", "Warning", "Exit", "Interrupt")
    found: dict[str, str] = {}
    grew = True
    while grew:  # a class deriving from one found here is one too
        grew = False
        for path, node in classes:
            bases = {ast.unparse(b).rpartition(".")[2] for b in node.bases}
            if node.name not in found and any(b in names or b.endswith(suffixes) for b in bases):
                found[node.name] = f"{path.relative_to(root.parent)}:{node.lineno} {node.name}"
                names.add(node.name)
                grew = True
    return sorted(found.values())


def test_every_exception_lives_in_exception_py() -> None:
    assert _exception_classes_outside_home(PACKAGE) == []


def test_the_exception_check_sees_exceptions_elsewhere(tmp_path: Path) -> None:
    pkg = _write_package(
        tmp_path / "pkg",
        {
            "exception.py": "class Base(Exception):\n    pass\n",
            "a.py": "import click\nclass A(click.ClickException):\n    pass\n"
            "class Plain:\n    pass\n",
            "b.py": "from .exception import Base\nclass B(Base):\n    pass\n",
            "c.py": "def f():\n    class C(KeyError):\n        pass\n",
            "d.py": "from .b import B\nclass D(B):\n    pass\n",
            "e.py": "class E(D, object):\n    pass\n",
        },
    )
    assert [s.split()[1] for s in _exception_classes_outside_home(pkg)] == ["A", "B", "C", "D", "E"]


def test_only_the_store_touches_the_driver() -> None:
    """The SQLite connection (``store.conn``) and apsw are used in ``mfstore.store`` only:
    every other module asks the store (``insert`` gives the new rowid, ``change`` the
    changed row count, ``columns`` a result's column names). ``apsw.complete`` (is this
    text a whole SQL statement?) is a function of text, used by the format's statement
    splitters below the store."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.is_relative_to(PACKAGE / "store"):
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Attribute) and node.attr in ("conn", "_conn"):
                found.append(f"{where}: .{node.attr}")
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "apsw"
                and node.attr != "complete"
            ):
                found.append(f"{where}: apsw.{node.attr}")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("apsw"):
                found.append(f"{where}: from {node.module} import ...")
    assert found == []


def _private_reads(path: Path, root: Path = PACKAGE) -> list[str]:
    """``m._name`` in ``path`` where ``m`` is another module of the package at ``root``:
    bound by ``import pkg.x as m``, ``import pkg.x`` (``pkg.x._name``), ``from pkg import
    x`` / ``from . import x``, ``m = importlib.import_module("pkg.x")`` or
    ``__import__("pkg.x")``, or such a call itself (``import_module("pkg.x")._name``)."""
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text("utf-8"))

    def imported(node: ast.expr) -> str | None:
        """The module a literal ``import_module("...")`` / ``__import__("...")`` returns."""
        if not (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            return None
        func, target = ast.unparse(node.func), node.args[0].value
        if func.endswith("import_module"):
            return package + target if target.startswith(".") else target
        if func == "__import__":
            fromlist = node.args[3] if len(node.args) > 3 else None
            fromlist = next((k.value for k in node.keywords if k.arg == "fromlist"), fromlist)
            whole = isinstance(fromlist, ast.List | ast.Tuple) and bool(fromlist.elts)
            return target if whole else target.split(".")[0]
        return None

    modules: dict[str, str] = {}  # local name -> module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    modules[alias.asname] = alias.name
                else:
                    modules[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            target = _from_target(node, package)
            for alias in node.names:
                if _is_module(f"{target}.{alias.name}", root):
                    modules[alias.asname or alias.name] = f"{target}.{alias.name}"
        elif isinstance(node, ast.Assign) and (module := imported(node.value)):
            modules.update({t.id: module for t in node.targets if isinstance(t, ast.Name)})

    def resolve(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return modules.get(node.id)
        if isinstance(node, ast.Attribute) and (outer := resolve(node.value)):
            inner = f"{outer}.{node.attr}"
            return inner if _is_module(inner, root) else None
        return imported(node)

    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and (module := resolve(node.value))
            and module.split(".")[0] == root.name
            and module != name
            and not _is_module(f"{module}.{node.attr}", root)
        ):
            found.append(f"{name}:{node.lineno} {module}.{node.attr}")
    return found


def test_no_module_reads_another_modules_private_names() -> None:
    """``m._name`` of another module (imported as a module, however) reaches into its
    private state, as ``from mfstore.x import _name`` does: the name is public in its home,
    or the home gives a function for what the reader needs."""
    assert [f for path in PACKAGE.rglob("*.py") for f in _private_reads(path)] == []


def _write_package(root: Path, files: dict[str, str]) -> Path:
    """A package at ``root`` made of ``files`` (relative path -> text); returns ``root``."""
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_private_name_check_sees_every_way_in(tmp_path: Path) -> None:
    reads = (
        "def f():\n"
        "    return (m._y, pkg.sub.x._y, x._y, x2._y, m2._y, m3._y,\n"
        "            importlib.import_module('.sub.x', 'pkg')._y, __import__('pkg').sub.x._y)\n"
    )
    fine = "def f(obj):\n    return m.z, _hidden.w, pkg.sub._hidden.w, me._own, obj._private\n"
    pkg = _write_package(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            "sub/__init__.py": "",
            "sub/x.py": "_y = 1\nz = 2\n",
            "sub/_hidden.py": "w = 1\n",
            "a.py": "import pkg.sub.x as m\nimport pkg.sub.x\nfrom pkg.sub import x\n"
            "from .sub import x as x2\nimport importlib\n"
            "m2 = importlib.import_module('pkg.sub.x')\n"
            "m3 = __import__('pkg.sub.x', fromlist=['x'])\n" + reads,
            # public names, private modules and a module's own private names are fine
            "b.py": "import pkg.sub.x as m\nfrom pkg.sub import _hidden\n"
            "import pkg.sub._hidden\n_own = 1\nimport pkg.b as me\n" + fine,
        },
    )
    found = [_private_reads(p, pkg) for p in (pkg / "a.py", pkg / "b.py")]
    assert [len(f) for f in found] == [8, 0], found


def test_queries_are_pure() -> None:
    """``mfstore.query`` compiles reads (SQL and parameters): nothing it imports, directly
    or through others, opens, holds or writes a file (store, provider, writer, blobs)."""
    graph = _module_graph()
    seen: set[str] = set()
    todo = [m for m in graph if m.split(".")[1:2] == ["query"]]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += graph.get(module, ())
    banned = {"store", "provider", "writer", "blobs"}
    assert sorted(m for m in seen if m.split(".")[1:2] and m.split(".")[1] in banned) == []


#: Names that look like environment variables but are not: the placeholder Metaflow's
#: cards replace with their reload token.
NOT_ENVIRONMENT_VARIABLES = {"METAFLOW_RELOAD_TOKEN"}
_ENV_NAME = re.compile(r"\b(?:MFSTORE|METAFLOW)(?:_[A-Z0-9]+)*\b")


def _environment_names_spelled_out(root: Path, home: Path) -> list[str]:
    """Strings (docstrings aside) and keyword arguments in the ``.py`` files under
    ``root`` that spell out an ``MFSTORE_*`` / ``METAFLOW_*`` name, outside ``home``."""
    found: list[tuple[Path, int, str]] = []
    for path in sorted(root.rglob("*.py")):
        if path == home:
            continue
        tree = ast.parse(path.read_text("utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = "" if id(node) in docstrings else node.value
            elif isinstance(node, ast.keyword):
                text = node.arg or ""
            else:
                continue
            names = set(_ENV_NAME.findall(text)) - NOT_ENVIRONMENT_VARIABLES
            found += [(path, node.lineno, n) for n in sorted(names)]
    return [f"{p.relative_to(root.parent)}:{line} {n}" for p, line, n in sorted(found)]


def test_environment_variable_names_are_spelled_out_once() -> None:
    """Every environment variable's name is a constant of ``mfstore/env.py``: code and
    messages use the constant (``os.environ.get(MFSTORE_DB)``, ``f"set {MFSTORE_DB}"``),
    also in the Metaflow extension's plugin file."""
    found = _environment_names_spelled_out(PACKAGE, PACKAGE / "env.py")
    ext = PACKAGE.parent / "ext"
    if ext.is_dir():
        found += _environment_names_spelled_out(ext, PACKAGE / "env.py")
    assert found == []


def test_the_environment_check_sees_names_in_strings_and_keywords(tmp_path: Path) -> None:
    source = textwrap.dedent(
        '''\
        """Reads $MFSTORE_DB (a docstring may name it)."""
        import os
        os.environ.get("MFSTORE_DB")
        def f(x):
            """MFSTORE_X in a docstring."""
            return f"set METAFLOW_USER {x}"
        dict(METAFLOW_PRODUCTION_TOKEN=1)
        click(auto_envvar_prefix="METAFLOW")
        html = "[METAFLOW_RELOAD_TOKEN]"
        '''
    )
    pkg = _write_package(
        tmp_path / "pkg", {"a.py": source, "env.py": 'MFSTORE_DB = "MFSTORE_DB"\n'}
    )
    found = _environment_names_spelled_out(pkg, pkg / "env.py")
    assert [s.split(":")[1] for s in found] == [
        "3 MFSTORE_DB",
        "6 METAFLOW_USER",
        "7 METAFLOW_PRODUCTION_TOKEN",
        "8 METAFLOW",
    ]

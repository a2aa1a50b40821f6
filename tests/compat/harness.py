"""Differential-test harness: run the same flow files under real Metaflow and under
mfstore, dump what the Client API answers in a normalized form, and diff the dumps.

Usage sketch::

    from tests.compat.harness import snapshot, diff
    from tests.flowfiles import run_flow
    run_flow("metaflow", "foreach_flow.py", wd_mf, ["run"])  # a flow of tests/flowfiles.py
    run_flow("mfstore", "foreach_flow.py", wd_ms, ["run"])
    a = snapshot("metaflow", wd_mf, "ForeachFlow", "user:alice")
    b = snapshot("mfstore", wd_ms, "ForeachFlow", "user:alice")
    assert diff(a, b, ignore=KNOWN_DIFFERENCES) == []

Only the dumper (`_dump.py`) touches a client library, always in a fresh subprocess,
so both libraries never share one interpreter.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.flowfiles import DEFAULT_TIMEOUT, LIBS, MFDB, lib_env, run_flow, run_python

HERE = Path(__file__).resolve().parent
DUMPER = HERE / "_dump.py"


# Snapshot paths (see `diff`) that differ between Metaflow and mfstore *on purpose*
# (reference section 7) or depend on the storage implementation.  Paths use `*`
# as a wildcard for one path component.
KNOWN_DIFFERENCES: set[str] = {
    # finished of failed runs/tasks is True in mfstore, False in Metaflow
    "runs.*.finished",
    "runs.*.steps.*.tasks.*.finished",
    # origin_pathspec of a non-resumed run: "F/None" in Metaflow, None in mfstore
    "runs.*.origin_pathspec",
    "runs.*.steps.*.origin_pathspec",
    # Run.code: None for local Metaflow runs, present in mfstore
    "runs.*.code_is_none",
    # ties in created_at: filesystem order in Metaflow, newest id first in mfstore
    "runs.*.step_order",
    "runs.*.steps.*.task_order",
    # Metaflow().flows raw order (the sorted list is compared)
    "metaflow_flows_raw_order",
}

# Paths that depend on the storage layer / pickling details rather than on semantics;
# compare them only when you mean to.
STORAGE_DETAILS: set[str] = {
    "runs.*.steps.*.tasks.*.artifacts.*.sha",
    "runs.*.steps.*.tasks.*.artifacts.*.size",
    "runs.*.steps.*.tasks.*.metadata_values.ds-type",
    "runs.*.steps.*.tasks.*.metadata_values.ds-root",
    "metadata_type",
    "runs.*.steps.*.tasks.*.stdout_size",
    "runs.*.steps.*.tasks.*.stderr_size",
}


def flow_class_name(flow_file: Path) -> str:
    """`foreach_flow.py` -> `ForeachFlow` (the convention all flows here follow)."""
    return "".join(p.capitalize() for p in Path(flow_file).stem.split("_"))


def _snake(name: str) -> str:
    """`ForeachFlow` -> `foreach_flow`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def snapshot(
    lib: str,
    root: Path,
    flow_name: str,
    ns,
    tag: str | None = None,
    user: str = "alice",
    timeout: float = DEFAULT_TIMEOUT,
    timestamps: bool = False,
) -> dict:
    """Dump, in a fresh subprocess running `_dump.py`, a normalized description of
    everything the Client API of `lib` answers about `flow_name` stored under `root`.

    `root`: for metaflow the directory containing `.metaflow`; for mfstore either the
    `.mfdb` file or a directory containing `metaflow.mfdb`.
    `ns`: namespace for the dump (a string, or None for the global namespace).
    `tag`: tag used for the `Flow(name).runs(tag)` query (None: skipped).
    `timestamps`: also record every created_at/finished_at (epoch ms), for two clients
    reading the same history.
    If the flow file (snake-case name of the flow) is in the workdir, the dumper imports it
    so that artifacts of classes defined in the flow file can be unpickled.
    """
    root = Path(root)
    metadata = None
    if lib == MFDB:
        # Metaflow's client reading the .mfdb through the extension
        lib = "metaflow"
        root = root / "metaflow.mfdb" if root.is_dir() else root
        metadata = f"mfdb@{root}"
    if lib == "mfstore" and root.is_dir():
        target = root / "metaflow.mfdb"
        workdir = root
    else:
        target = root
        workdir = root if root.is_dir() else root.parent
    env = lib_env(lib, workdir)
    env["METAFLOW_USER"] = user
    if lib == "mfstore":
        env["MFSTORE_DB"] = str(target)
    flow_file = workdir / (_snake(flow_name) + ".py")
    cfg = {
        "lib": lib,
        "root": str(target),
        "flow": flow_name,
        "ns": ns,
        "tag": tag,
        "flow_file": str(flow_file) if flow_file.exists() else None,
        "metadata": metadata,
        "timestamps": timestamps,
    }
    cp = run_python([DUMPER, json.dumps(cfg)], workdir, env, timeout=timeout, check=False)
    if cp.returncode != 0:
        raise RuntimeError(
            f"dumper failed for {cfg} (rc={cp.returncode}):\n{cp.stdout[-3000:]}\n{cp.stderr[-5000:]}"
        )
    return json.loads(cp.stdout)


# ----------------------------------------------------------------------------- diff


def _match(path: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """A pattern matches a path if it matches a prefix of it (`*` = one component)."""
    if len(pattern) > len(path):
        return False
    return all(p == "*" or p == q for p, q in zip(pattern, path, strict=False))


def _ignored(path: tuple[str, ...], patterns: list[tuple[str, ...]]) -> bool:
    return any(_match(path, p) for p in patterns)


def _short(v, limit: int = 200) -> str:
    s = json.dumps(v, sort_keys=True, ensure_ascii=False)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def diff(a: dict, b: dict, ignore: Iterable[str] = frozenset()) -> list[str]:
    """Readable differences between two snapshots.

    `ignore`: dotted paths such as `runs.*.finished` or `errors`; `*` matches one
    component; a pattern also ignores everything below the path it matches.
    List elements are addressed by their index (`runs.0.user_tags`).
    """
    patterns = [tuple(p.split(".")) for p in ignore]
    out: list[str] = []

    def walk(x, y, path: tuple[str, ...]):
        if _ignored(path, patterns):
            return
        where = ".".join(path) or "<root>"
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y), key=str):
                p = (*path, str(k))
                if _ignored(p, patterns):
                    continue
                if k not in x:
                    out.append("{}: only in b: {}".format(".".join(p), _short(y[k])))
                elif k not in y:
                    out.append("{}: only in a: {}".format(".".join(p), _short(x[k])))
                else:
                    walk(x[k], y[k], p)
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                out.append(f"{where}: length {len(x)} != {len(y)}: a={_short(x)} b={_short(y)}")
                # still compare common prefix for detail
            for i, (xi, yi) in enumerate(zip(x, y, strict=False)):
                walk(xi, yi, (*path, str(i)))
        elif x != y or type(x) is not type(y):
            out.append(f"{where}: a={_short(x)} b={_short(y)}")

    walk(a, b, ())
    return out


# ------------------------------------------------------------------- scenarios

# Every scenario is a list of (user, args) executions of one flow file, in order.
# `resume` needs a previous `run` of the same flow in the same workdir.
SCENARIOS: dict[str, list[tuple[str, list[str]]]] = {
    "linear_params_flow.py": [
        ("alice", ["run", "--tag", "exp1"]),
        ("bob", ["run", "--tag", "exp1", "--alpha", "5"]),
        ("alice", ["run", "--tag", "exp2", "--label", "bye", "--ratio", "1.5"]),
    ],
    "team_collab_flow.py": [("alice", ["run"])],  # examples/ (see RANDOM_BY_DESIGN)
    "current_flow.py": [
        ("alice", ["run", "--tag", "t1"]),
        ("alice", ["resume", "end"]),
    ],
    "branch_join_flow.py": [("alice", ["run"])],
    "foreach_flow.py": [("alice", ["run", "--max-workers", "1"])],
    "nested_foreach_flow.py": [("alice", ["run", "--max-workers", "1"])],
    "retry_flow.py": [("alice", ["run"])],
    "catch_flow.py": [("alice", ["run"])],
    "failing_flow.py": [("alice", ["run"])],
    "artifact_types_flow.py": [("alice", ["run"])],
}

# The flows whose runs are expected to fail (non-zero exit).
EXPECTED_FAILURES = {"failing_flow.py"}

# What a flow draws at random, per flow file: `differential` ignores it for that flow.
RANDOM_BY_DESIGN = {
    "team_collab_flow.py": {
        "runs.*.steps.end.tasks.*.artifacts.choice",
        "runs.*.steps.end.tasks.*.stdout",
    },
}

# Tag used for `runs(tag)` in the snapshot, per flow file.
SNAPSHOT_TAGS = {"linear_params_flow.py": "exp1", "current_flow.py": "t1"}


def scenario_files(flow_files: Iterable[str] | None = None) -> list[str]:
    """The scenario flow files among ``flow_files`` (all when None), in SCENARIOS' order;
    a file without a scenario is an error, not a flow silently left out."""
    if flow_files is None:
        return list(SCENARIOS)
    unknown = set(flow_files) - set(SCENARIOS)
    if unknown:
        raise ValueError(f"no scenario for {sorted(unknown)}; SCENARIOS has {sorted(SCENARIOS)}")
    return [f for f in SCENARIOS if f in flow_files]


#: One execution of a scenario: (user, args, extra environment, expected to fail).
Execution = tuple[str, list[str], dict[str, str], bool]


def run_scenarios(
    lib: str,
    workdir: Path,
    scenarios: dict[str, list[Execution]],
    timeout: float = DEFAULT_TIMEOUT,
    parallel: bool = False,
) -> dict[str, list[subprocess.CompletedProcess[str]]]:
    """Run each flow file's executions, in order, under `lib` in `workdir` (with
    `parallel`, the flow files at once, one thread each); an execution that is not
    expected to fail must succeed. Returns {flow file: [CompletedProcess...]}."""

    def one(fname: str) -> list[subprocess.CompletedProcess[str]]:
        out = []
        for user, args, env, fails in scenarios[fname]:
            cp = run_flow(lib, fname, workdir, args, user, env or None, not fails, timeout)
            out.append(cp)
        return out

    if not parallel:
        return {fname: one(fname) for fname in scenarios}
    with ThreadPoolExecutor(max_workers=len(scenarios) or 1) as pool:
        futures = {fname: pool.submit(one, fname) for fname in scenarios}
        return {fname: fut.result() for fname, fut in futures.items()}


def build_history(
    lib: str,
    workdir: Path,
    flow_files: Iterable[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, list[subprocess.CompletedProcess[str]]]:
    """Run every scenario (or those of `flow_files`) under `lib` in `workdir`.
    Returns {flow file: [CompletedProcess...]}."""
    scenarios = {
        fname: [(user, args, {}, fname in EXPECTED_FAILURES) for user, args in SCENARIOS[fname]]
        for fname in scenario_files(flow_files)
    }
    return run_scenarios(lib, workdir, scenarios, timeout=timeout)


def snapshot_history(
    lib: str, root: Path, flow_files: Iterable[str] | None = None, namespaces=("user:alice", None)
) -> dict:
    """Snapshots of every scenario flow under every namespace in `namespaces`:
    {"<FlowName>@<ns>": snapshot}."""
    out = {}
    for fname in scenario_files(flow_files):
        name = flow_class_name(fname)
        for ns in namespaces:
            out[f"{name}@{ns}"] = snapshot(lib, root, name, ns, tag=SNAPSHOT_TAGS.get(fname))
    return out


def differential(
    flow_files: Iterable[str],
    workdir: Path,
    namespaces=("user:alice", None),
    ignore: Iterable[str] = KNOWN_DIFFERENCES | STORAGE_DETAILS,
) -> list[str]:
    """Build the same history under both libraries (in workdir/metaflow and
    workdir/mfstore) and return the differences of their snapshots."""
    workdir = Path(workdir)
    snaps = {}
    for lib in LIBS:
        wd = workdir / lib
        build_history(lib, wd, flow_files)
        snaps[lib] = snapshot_history(lib, wd, flow_files, namespaces)
    random = {
        flow_class_name(f): RANDOM_BY_DESIGN.get(f, set()) for f in scenario_files(flow_files)
    }
    out = []
    for key in sorted(set(snaps["metaflow"]) | set(snaps["mfstore"])):
        a, b = snaps["metaflow"].get(key), snaps["mfstore"].get(key)
        if a is None or b is None:
            out.append("{}: missing in {}".format(key, "metaflow" if a is None else "mfstore"))
            continue
        a = dict(a, lib=None)
        b = dict(b, lib=None)
        extra = random[key.partition("@")[0]]
        out.extend(f"{key}: {d}" for d in diff(a, b, set(ignore) | extra))
    return out


def main(argv=None):  # pragma: no cover - manual use
    """`python -m tests.compat.harness LIB WORKDIR [FLOWFILE...]`: build the history and
    print the snapshots as JSON."""
    argv = list(sys.argv[1:] if argv is None else argv)
    lib, workdir = argv[0], Path(argv[1])
    files = argv[2:] or None
    build_history(lib, workdir, files)
    json.dump(snapshot_history(lib, workdir, files), sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":  # pragma: no cover
    main()

"""Dump a normalized, run-id-independent description of what a client library answers.

Run as `python _dump.py '<json config>'` with config keys:
  lib   "metaflow" or "mfstore" (the ONLY client library imported)
  root  metaflow: directory containing `.metaflow`; mfstore: path of the `.mfdb` file
  flow  flow name
  ns    namespace for the dump (string or null)
  tag   tag for `Flow(flow).runs(tag)` (string or null)
Prints JSON to stdout.

Normalization:
* run ids -> "R<k>", k = position of the run in creation order (ascending numeric id,
  looked up in the global namespace), so R0 is the oldest run of the flow.  Run ids are
  replaced in pathspecs (`Flow/<id>`), in `run id: <id>` texts and in metadata values.
* the storage root path -> "<ROOT>".
* system tags python_version:* / metaflow_version:* -> value "*"; the same metadata.
* timestamps are never recorded, only whether they are None.
* every property read is guarded: an exception becomes {"error": ClassName, "message": ...}.
"""

import importlib
import json
import os
import re
import sys

cfg = json.loads(sys.argv[1])
LIB = cfg["lib"]
ROOT = cfg["root"]
FLOW = cfg["flow"]
NS = cfg["ns"]
TAG = cfg.get("tag")
FLOW_FILE = cfg.get("flow_file")
#: Record timestamps (epoch ms) too: for two clients reading the same history (import).
TIMESTAMPS = bool(cfg.get("timestamps"))

client = importlib.import_module(LIB)
exc_mod = importlib.import_module(LIB + ".exception")
MetaflowException = getattr(exc_mod, "MetaflowException", Exception)

VOLATILE_TAG_PREFIXES = ("python_version:", "metaflow_version:")
VOLATILE_META = {"python_version", "metaflow_version"}

ID_MAP = {}  # raw run id -> "R<k>"
WORKDIR = ROOT if os.path.isdir(ROOT) else os.path.dirname(os.path.abspath(ROOT))
# (path, replacement), longest path first: the store file itself, then its directory
_PATHS = [(ROOT, "<DB>")] if not os.path.isdir(ROOT) else []
_PATHS += [(WORKDIR, "<ROOT>"), (os.path.realpath(WORKDIR), "<ROOT>")]
if not os.path.isdir(ROOT):
    _PATHS.append((os.path.realpath(ROOT), "<DB>"))
ROOTS = sorted(set(_PATHS), key=lambda pr: len(pr[0]), reverse=True)
HERE = os.path.dirname(os.path.abspath(__file__))


def norm(s):
    """Normalize a string: root paths and run ids."""
    if not isinstance(s, str):
        return s
    s = s.replace(os.path.join(HERE, "_dump.py"), "<DUMPER>")
    for r, rep in ROOTS:
        if r and r not in ("/", "."):
            s = s.replace(r, rep)
    if ID_MAP:

        def sub(m):
            return m.group(1) + ID_MAP.get(m.group(2), m.group(2))

        s = re.sub(rf"({re.escape(FLOW)}/)([A-Za-z0-9_.-]+)", sub, s)
        s = re.sub(
            r"((?:run[ _-]?id|run_id|run-id)\s*[:=]?\s*)([0-9A-Za-z_-]+)", sub, s, flags=re.I
        )
    return s


_FRAME_RE = re.compile(r'^(?P<pfx>\s*(?:>\s*)?)File "(?P<path>[^"]*)", line \d+, in ')


def norm_log(s):
    """Normalize a task log: like `norm`, and in Python tracebacks drop every frame
    that is not in a file under the storage root (i.e. library internals), keeping the
    `Traceback ...` header, the user-code frames and the final exception line."""
    if not isinstance(s, str):
        return s
    s = norm(s)
    out = []
    skipping_indent = None
    for line in s.split("\n"):
        m = _FRAME_RE.match(line)
        if m:
            if m.group("path").startswith("<ROOT>"):
                skipping_indent = None
                out.append(line)
            else:
                skipping_indent = len(m.group("pfx"))
            continue
        if skipping_indent is not None:
            stripped = line.lstrip(" >")
            indent = len(line) - len(stripped)
            if indent > skipping_indent and stripped:
                continue  # source line / ^^^ marker of a dropped frame
            skipping_indent = None
        out.append(line)
    return "\n".join(out)


def map_id(i):
    if i is None:
        return None
    return ID_MAP.get(str(i), "?" + str(i))


def err(e):
    return {
        "error": type(e).__name__,
        "message": norm(str(e)),
        "is_metaflow_exception": isinstance(e, MetaflowException),
    }


def safe(fn):
    try:
        return fn()
    except Exception as e:
        return err(e)


def expect_error(fn):
    """Run fn; record the exception, or what it returned if none was raised."""
    try:
        r = fn()
    except Exception as e:
        return err(e)
    return {"no_error": True, "returned": norm(repr(r))}


def enc(v, depth=0):
    """JSON-encode an artifact value, deterministically, with type information."""
    if depth > 20:
        return {"type": type(v).__name__, "too_deep": True}
    if v is None or isinstance(v, (bool, str)):
        return norm(v) if isinstance(v, str) else v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return {"float": repr(v)}
    if isinstance(v, (bytes, bytearray)):
        import hashlib

        return {"bytes_len": len(v), "sha1": hashlib.sha1(bytes(v)).hexdigest()}
    if isinstance(v, list):
        return [enc(x, depth + 1) for x in v]
    if isinstance(v, tuple):
        return {"tuple": [enc(x, depth + 1) for x in v]}
    if isinstance(v, (set, frozenset)):
        return {
            type(v).__name__: sorted(
                (enc(x, depth + 1) for x in v), key=lambda x: json.dumps(x, sort_keys=True)
            )
        }
    if isinstance(v, dict):
        return {
            "dict": sorted(
                ([enc(k, depth + 1), enc(x, depth + 1)] for k, x in v.items()),
                key=lambda x: json.dumps(x, sort_keys=True),
            )
        }
    if type(v).__name__ == "MetaflowExceptionWrapper":
        return {
            "MetaflowExceptionWrapper": {
                "type": getattr(v, "type", None),
                "exception": norm(getattr(v, "exception", None)),
            }
        }
    d = getattr(v, "__dict__", None)
    out = {"type": type(v).__name__}
    if isinstance(d, dict):
        out["attrs"] = enc(dict(d), depth + 1)
    return out


def norm_system_tags(tags):
    out = []
    for t in tags:
        for p in VOLATILE_TAG_PREFIXES:
            if t.startswith(p):
                t = p + "*"
        out.append(norm(t))
    return sorted(out)


def pathspec_tail(ps, n):
    """Last n components of a pathspec (e.g. 'step/task')."""
    return "/".join(str(ps).split("/")[-n:])


def meta_value(name, value):
    if name in VOLATILE_META:
        return "*"
    if name == "origin-run-id":
        return ID_MAP.get(str(value), norm(str(value)) if value is not None else None)
    if isinstance(value, list):
        return [norm(x) if isinstance(x, str) else x for x in value]
    return norm(value)


# ------------------------------------------------------------------------ dump parts


def ms(dt):
    """A client's naive local datetime as epoch milliseconds (None stays None)."""
    return None if dt is None else round(dt.timestamp() * 1000)


def stamp(out, **fns):
    """Add ``<name>_ms`` fields when timestamps are recorded."""
    if TIMESTAMPS:
        for name, fn in fns.items():
            out[name + "_ms"] = safe(lambda fn=fn: ms(fn()))
    return out


def dump_artifact(task, name):
    art = task[name]
    out = {
        "sha": safe(lambda: art.sha),
        "size": safe(lambda: art.size),
        "created_at_is_none": safe(lambda: art.created_at is None),
        "value": safe(lambda: enc(art.data)),
    }
    v = out["value"]
    if isinstance(v, dict) and "MetaflowExceptionWrapper" in v:
        # the pickled wrapper contains the stacktrace with absolute paths: not stable
        out["sha"] = "<volatile: exception wrapper>"
        out["size"] = "<volatile: exception wrapper>"
    return stamp(out, created_at=lambda: art.created_at)


def dump_task(task, deep=True):
    t = {
        "index": safe(lambda: task.index),
        "successful": safe(lambda: task.successful),
        "finished": safe(lambda: task.finished),
        "finished_at_is_none": safe(lambda: task.finished_at is None),
        "current_attempt": safe(lambda: task.current_attempt),
        "origin_pathspec": safe(lambda: norm(task.origin_pathspec)),
        "stdout": safe(lambda: norm_log(task.stdout)),
        "stderr": safe(lambda: norm_log(task.stderr)),
    }
    md = safe(lambda: dict(task.metadata_dict))
    if isinstance(md, dict) and "error" not in md:
        t["metadata_keys"] = sorted(md)
        t["metadata_values"] = {k: meta_value(k, v) for k, v in sorted(md.items())}
    else:
        t["metadata_keys"] = md
    names = safe(lambda: sorted(a.id for a in task))
    t["artifact_names"] = names
    if deep and isinstance(names, list):
        t["artifacts"] = {n: safe(lambda n=n: dump_artifact(task, n)) for n in names}
    exc = safe(lambda: task.exception)
    if isinstance(exc, dict) and "error" in exc:
        t["exception"] = exc
    elif exc is None:
        t["exception"] = None
    else:
        t["exception"] = {
            "type": getattr(exc, "type", None),
            "message": norm(getattr(exc, "exception", None)),
            "class": type(exc).__name__,
        }
    t["private_in_task"] = {
        n: safe(lambda n=n: n in task)
        for n in ("_success", "_task_ok", "_graph_info", "_exception")
    }
    t["parent_task_pathspecs"] = safe(
        lambda: sorted(pathspec_tail(p, 2) for p in task.parent_task_pathspecs)
    )
    t["child_task_pathspecs"] = safe(
        lambda: sorted(pathspec_tail(p, 2) for p in task.child_task_pathspecs)
    )
    return stamp(t, created_at=lambda: task.created_at, finished_at=lambda: task.finished_at)


def dump_attempts(task_pathspec, n_attempts):
    """Per-attempt view for tasks with more than one attempt."""
    out = []
    for a in range(n_attempts):

        def one(a=a):
            ta = client.Task(task_pathspec, attempt=a)
            return {
                "current_attempt": safe(lambda: ta.current_attempt),
                "successful": safe(lambda: ta.successful),
                "finished": safe(lambda: ta.finished),
                "stdout": safe(lambda: norm_log(ta.stdout)),
                "artifact_names": safe(lambda: sorted(x.id for x in ta)),
                "exception_type": safe(lambda: getattr(ta.exception, "type", None)),
                "metadata_attempt": safe(lambda: ta.metadata_dict.get("attempt")),
            }

        out.append(safe(one))
    return out


def dump_step(step):
    s = {
        "origin_pathspec": safe(lambda: norm(step.origin_pathspec)),
        "finished_at_is_none": safe(lambda: step.finished_at is None),
        "user_tags": safe(lambda: sorted(step.user_tags)),
        "step_task_index": safe(lambda: step.task.index),
    }
    stamp(s, created_at=lambda: step.created_at, finished_at=lambda: step.finished_at)
    tasks = safe(lambda: list(step))
    if isinstance(tasks, dict):
        s["tasks"] = tasks
        return s
    s["task_order"] = [t.id for t in tasks]
    s["tasks"] = {}
    for t in sorted(tasks, key=lambda t: (len(t.id), t.id)):
        d = dump_task(t)
        ca = d.get("current_attempt")
        if isinstance(ca, int) and ca > 0:
            d["attempts"] = dump_attempts(t.pathspec, ca + 1)
        s["tasks"][t.id] = d
    return s


def dump_run(run):
    r = {
        "id": map_id(run.id),
        "pathspec": norm(run.pathspec),
        "successful": safe(lambda: run.successful),
        "finished": safe(lambda: run.finished),
        "finished_at_is_none": safe(lambda: run.finished_at is None),
        "data_is_none": safe(lambda: run.data is None),
        "code_is_none": safe(lambda: run.code is None),
        "origin_pathspec": safe(lambda: norm(run.origin_pathspec)),
        "user_tags": safe(lambda: sorted(norm(t) for t in run.user_tags)),
        "system_tags": safe(lambda: norm_system_tags(run.system_tags)),
        "tags_is_union": safe(lambda: set(run.tags) == set(run.user_tags) | set(run.system_tags)),
        "end_task": safe(
            lambda: None if run.end_task is None else pathspec_tail(run.end_task.pathspec, 2)
        ),
        "has_parameters_step": safe(lambda: "_parameters" in run),
        "parameters": safe(lambda: {a.id: enc(a.data) for a in run["_parameters"].task}),
        "missing_step": expect_error(lambda: run["nostep"]),
        "nostep_in_run": safe(lambda: "nostep" in run),
        "end_in_run": safe(lambda: "end" in run),
    }
    stamp(r, created_at=lambda: run.created_at, finished_at=lambda: run.finished_at)
    steps = safe(lambda: list(run))
    if isinstance(steps, dict):
        r["steps"] = steps
        return r
    r["step_order"] = [s.id for s in steps]
    r["steps"] = {s.id: dump_step(s) for s in sorted(steps, key=lambda s: s.id)}
    return r


def build_id_map():
    client.namespace(None)
    runs = list(client.Flow(FLOW))

    def key(run):
        rid = run.id
        return (0, int(rid), rid) if str(rid).isdigit() else (1, 0, str(rid))

    for k, run in enumerate(sorted(runs, key=key)):
        ID_MAP[str(run.id)] = f"R{k}"
    # newest alice run (global iteration order) for the error probes
    return [r for r in runs]


def load_flow_module():
    """Import the flow file (already rewritten for LIB) and expose its top-level classes
    in __main__, so that artifacts pickled as `__main__.<Class>` can be loaded."""
    if not FLOW_FILE or not os.path.exists(FLOW_FILE):
        return
    import importlib.util

    spec = importlib.util.spec_from_file_location("_compat_flow_module", FLOW_FILE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    main_mod = sys.modules["__main__"]
    for k, v in vars(mod).items():
        if (
            isinstance(v, type)
            and getattr(v, "__module__", None) == mod.__name__
            and not hasattr(main_mod, k)
        ):
            setattr(main_mod, k, v)


def main():
    load_flow_module()
    out = {"lib": LIB, "flow": FLOW, "ns": NS, "tag": TAG}
    md = client.metadata(cfg.get("metadata") or ROOT)
    out["metadata_type"] = str(md).split("@")[0]
    all_runs = build_id_map()
    out["n_runs_global"] = len(all_runs)
    out["global_order"] = [map_id(r.id) for r in all_runs]
    probe_run = next((r for r in all_runs if "user:alice" in r.system_tags), None)
    probe = probe_run.pathspec if probe_run is not None else None

    client.namespace(NS)
    out["get_namespace"] = safe(lambda: client.get_namespace())
    flow = safe(lambda: client.Flow(FLOW))
    if isinstance(flow, dict):
        out["flow_error"] = flow
        out["runs"] = []
    else:
        runs = list(flow)
        out["run_order"] = [map_id(r.id) for r in runs]
        out["latest_run"] = safe(lambda: map_id(getattr(flow.latest_run, "id", None)))
        out["latest_successful_run"] = safe(
            lambda: map_id(getattr(flow.latest_successful_run, "id", None))
        )
        if TAG is not None:
            out["runs_with_tag"] = safe(lambda: [map_id(r.id) for r in flow.runs(TAG)])
        out["runs_with_unknown_tag"] = safe(
            lambda: [map_id(r.id) for r in flow.runs("no-such-tag")]
        )
        out["runs"] = [dump_run(r) for r in runs]

    flows = safe(lambda: [f.id for f in client.Metaflow().flows])
    out["metaflow_flows"] = sorted(flows) if isinstance(flows, list) else flows
    out["metaflow_flows_raw_order"] = flows

    # ------------------------------------------------------------ error behaviour
    errors = {}
    errors["run_doesnotexist"] = expect_error(lambda: client.Run(f"{FLOW}/doesnotexist"))
    errors["flow_nope"] = expect_error(lambda: client.Flow("Nope"))
    errors["run_bad_pathspec"] = expect_error(lambda: client.Run("a/b/c"))
    errors["flow_bad_pathspec"] = expect_error(lambda: client.Flow("a/b"))
    errors["step_bad_pathspec"] = expect_error(lambda: client.Step(f"{FLOW}/1"))
    if probe is not None:
        client.namespace(None)
        run_steps = sorted(s.id for s in client.Run(probe))  # custom start steps have other names
        first = "start" if "start" in run_steps else run_steps[0]
        start_tasks = list(client.Step(probe + "/" + first))
        tp = start_tasks[0].pathspec
        client.namespace(NS)
        errors["task_attempt_7"] = expect_error(lambda: client.Task(tp, attempt=7))
        errors["task_attempt_neg"] = expect_error(lambda: client.Task(tp, attempt=-1))
        errors["run_attempt"] = expect_error(lambda: client.Run(probe, attempt=0))
        client.namespace("user:bob")
        errors["bob_ns_run"] = expect_error(lambda: client.Run(probe))
        errors["bob_ns_flow_contains"] = safe(lambda: probe.split("/")[1] in client.Flow(FLOW))
        errors["bob_ns_flow"] = safe(lambda: sorted(map_id(r.id) for r in client.Flow(FLOW)))
        client.namespace("")
        errors["empty_ns_run"] = expect_error(lambda: client.Run(probe))
        errors["empty_ns_flow"] = expect_error(lambda: client.Flow(FLOW))
        errors["empty_ns_metaflow_flows"] = safe(
            lambda: sorted(f.id for f in client.Metaflow().flows)
        )
        client.namespace(None)
        errors["none_ns_run_successful"] = safe(lambda: client.Run(probe).successful)
        errors["missing_attr"] = expect_error(lambda: client.Task(tp).data.no_such_attr)
        errors["missing_artifact"] = expect_error(lambda: client.Task(tp)["no_such_artifact"])
        errors["dataartifact_missing"] = expect_error(
            lambda: client.DataArtifact(tp + "/no_such_artifact")
        )
    client.namespace(NS)
    out["errors"] = errors
    json.dump(out, sys.stdout, indent=1, sort_keys=True, ensure_ascii=False)


if __name__ == "__main__":
    main()

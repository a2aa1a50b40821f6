"""Configs in decorators (Metaflow's two-pass flow loading): ``cfg.key``,
``config_expr(...)`` and ``**cfg`` in flow and step decorator arguments, configs in
Parameter defaults and as switch keys. The same flow runs on Metaflow and on mfstore's
runtime, with the defaults and with ``--config-value``, and records the same values."""

from __future__ import annotations

import pytest

from .differential import LIBS, Workdir, snapshot

FLOW = "config_decorators.py"
NAME = "ConfigDecoFlow"

#: What the decorators did, read back through each system's Client API.
DECORATED = """
import json
from {lib} import Flow, namespace
namespace(None)
run = Flow("ConfigDecoFlow").latest_run
gi = run["start"].task["_graph_info"].data
decos = {{
    name: sorted(
        (d["name"], json.dumps(d["attributes"], sort_keys=True, default=str))
        for d in step["decorators"]
    )
    for name, step in gi["steps"].items()
}}
print(json.dumps({{
    "project_tags": sorted(t for t in run.system_tags if t.startswith("project")),
    "decorators": decos,
}}))
"""


@pytest.mark.parametrize(
    ("args", "run_args", "params"),
    [
        ([], [], [42, 43, 42, 7]),
        (["--config-value", "extra", '{"vars": {"EXTRA": "given"}}'], [], [42, 43, 42, 7]),
        ([], ["--inferred", "8", "--from_text", "9"], [42, 43, 8, 9]),
    ],
    ids=["defaults", "config-value", "given"],
)
def test_configs_in_decorators_match_metaflow(
    tmp_path, args: list[str], run_args: list[str], params: list[int]
) -> None:
    snaps = {}
    for lib in LIBS:
        wd = Workdir(tmp_path, lib)
        wd.add(FLOW)
        wd.python(FLOW, *args, "run", *run_args)
        snaps[lib] = (snapshot(wd, NAME), wd.read(DECORATED))
    (ours, our_decos), (theirs, their_decos) = snaps["mfstore"], snaps["metaflow"]
    start = theirs["tasks"]["start"][0]["artifacts"]
    assert (start["normal"], start["expr"], start["project"]) == ("hello", "HELLO", "cfg_proj")
    assert start["params"] == params  # typed as the config value (inferred) or as given
    assert "a" not in theirs["tasks"]
    extra = "given" if "--config-value" in args else "default"
    assert theirs["tasks"]["b"][0]["artifacts"]["extra_env"] == extra
    assert ours["tasks"] == theirs["tasks"]
    assert ours["graph"] == theirs["graph"]
    assert our_decos["project_tags"] == their_decos["project_tags"]
    # the resolved arguments as _graph_info records them (retry times from the config)
    for step_name in ("b", "start"):
        assert dict(our_decos["decorators"][step_name]) == dict(
            their_decos["decorators"][step_name]
        ), step_name


READ_VALUES = """
import json
from {lib} import Flow, namespace
namespace(None)
print(json.dumps(Flow("ConfigParamsFlow").latest_run["start"].task["values"].data))
"""


def _help_lines(text: str) -> list[str]:
    return [" ".join(ln.split()) for ln in text.splitlines() if ln.strip().startswith("--")]


def test_config_valued_parameter_defaults_match_metaflow(tmp_path) -> None:
    seen = {}
    for lib in LIBS:
        wd = Workdir(tmp_path, lib)
        wd.add("config_params.py")
        missing = wd.python("config_params.py", "run", check=False)
        given = ["--needed", "7", "--count", "5"]
        wd.python("config_params.py", "run", *given)
        options = _help_lines(wd.python("config_params.py", "run", "--help").stdout)
        seen[lib] = (
            missing.returncode,
            "Missing option '--needed'" in missing.stderr,
            wd.read(READ_VALUES),
            [o for o in options if o.split()[0] in ("--words", "--table", "--count")],
        )
    assert seen["metaflow"][:3] == (2, True, [["a", "b"], {"x": 1, "y": 2}, 5, "7"])
    assert seen["mfstore"] == seen["metaflow"]

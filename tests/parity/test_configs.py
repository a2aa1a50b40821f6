"""Configs in decorators (Metaflow's two-pass flow loading): ``cfg.key``,
``config_expr(...)`` and ``**cfg`` in flow and step decorator arguments, configs in
Parameter defaults and as switch keys. The same flow runs on Metaflow and on mfstore's
runtime, with the defaults and with ``--config-value``, and records the same values."""

from __future__ import annotations

import pytest

from .differential import FLOWS, LIBS, Workdir, snapshot

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


def test_resume_runs_with_the_origin_runs_configs_as_metaflow(tmp_path) -> None:
    """``resume`` takes the origin run's configs (decorators included) and refuses
    ``--config`` / ``--config-value``."""
    given = ["--config-value", "extra", '{"vars": {"EXTRA": "given"}}']
    again = ["--config-value", "extra", '{"vars": {"EXTRA": "again"}}']
    seen = {}
    for lib in LIBS:
        wd = Workdir(tmp_path, lib)
        wd.add(FLOW)
        wd.python(FLOW, *given, "run")
        refused = wd.python(FLOW, *again, "resume", "b", check=False)
        wd.python(FLOW, "resume", "b")
        resumed = snapshot(wd, NAME)
        seen[lib] = (
            refused.returncode,
            "Cannot specify --config or --config-value with 'resume'" in refused.stderr,
            resumed,
            wd.read(DECORATED),
        )
    theirs = seen["metaflow"]
    assert theirs[:2] == (2, True)
    assert theirs[2]["tasks"]["b"][0]["artifacts"]["extra_env"] == "given"
    assert theirs[2]["steps"] == ["end", "b", "start"]  # start cloned first, so oldest
    assert seen["mfstore"] == theirs


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


#: Each config's artifact through the Client (its type's name and its value), what the
#: steps saw, and the parameters as ``_graph_info`` lists them (type ``Config``).
READ_CONFIGS = """
import json
from {lib} import Flow, namespace
namespace(None)
task = Flow("ConfigParserFlow").latest_run["end"].task
print(json.dumps({{
    name: [type(task[name].data).__name__, task[name].data]
    for name in ("toml", "reqs", "up", "items", "raw", "made", "made_file")
}} | {{
    "in_start": task["in_start"].data,
    "in_end": task["in_end"].data,
    "graph_parameters": task["_graph_info"].data["parameters"],
}}))
"""


def _parser_flow(tmp_path, lib: str, extra_config: str = "") -> Workdir:
    """The parser flow in ``lib``'s directory with its files (and ``extra_config``, a
    Config's arguments, as one more config ``c``)."""
    wd = Workdir(tmp_path, lib)
    source = (FLOWS / "config_parsers.py").read_text()
    if extra_config:
        head = "class ConfigParserFlow(FlowSpec):\n"
        source = source.replace(head, f'{head}    c = Config("c", {extra_config})\n')
    wd.add("config_parsers.py", source)
    (wd.path / "reqs.txt").write_text("requests==2.31.0\n")
    (wd.path / "more.txt").write_text("numpy>=1.0\n")
    (wd.path / "given.toml").write_text("a = 2\nlist = [1, 2]\n")
    return wd


@pytest.mark.parametrize(
    "args",
    [
        [],
        [
            *("--config", "toml", "given.toml", "--config", "reqs", "more.txt"),
            *("--config-value", "up", "given", "--config-value", "items", "p,q,r"),
            *("--config-value", "raw", "just text"),
        ],
    ],
    ids=["defaults", "given"],
)
def test_config_parsers_and_plain_configs_match_metaflow(tmp_path, args: list[str]) -> None:
    seen = {}
    for lib in LIBS:
        wd = Workdir(tmp_path, lib)
        wd.add("config_parsers.py")
        (wd.path / "reqs.txt").write_text("requests==2.31.0\n")
        (wd.path / "more.txt").write_text("numpy>=1.0\n")
        (wd.path / "given.toml").write_text("a = 2\nlist = [1, 2]\n")
        wd.python("config_parsers.py", *args, "run")
        seen[lib] = wd.read(READ_CONFIGS)
    theirs = seen["metaflow"]
    if not args:
        assert theirs["in_start"]["up"] == ["ConfigValue", {"up": '{"K": 1}'}]
        assert theirs["in_start"]["items"] == ["list", ["x", "y"]]
        assert theirs["in_start"]["raw"] == ["str", '{"r": 2}']
        assert theirs["reqs"][1]["packages"] == {"requests": "2.31.0"}
        made = {"flow": "ConfigParserFlow", "param": "made", "user": "tester", "configs": None}
        assert theirs["made"] == ["dict", made]
    else:
        assert theirs["in_end"]["toml"] == ["ConfigValue", {"a": 2, "list": [1, 2]}]
        assert theirs["items"] == ["list", ["p", "q", "r"]]
    assert seen["mfstore"] == theirs


@pytest.mark.parametrize(
    ("config_args", "run_args", "status", "message"),
    [
        (
            'default_value="{}", parser="nosuch.mod.func"',
            [],
            1,
            "Cannot locate parser nosuch.mod.func",
        ),
        ('default_value="{}", parser=".nosuch.f"', [], 1, "Cannot locate parser metaflow.nosuch.f"),
        (
            'default_value="{}", parser="json.nosuch"',
            [],
            1,
            "Parser nosuch is either not part of json or not a callable",
        ),
        (
            'default_value="x", parser=csv_parser',
            [],
            1,
            "returned a value that is not a mapping (got type <class 'list'>): ['x']",
        ),
        (
            "required=True",
            [],
            2,
            "Error: Bad values passed for configuration options: missing configuration for 'c'",
        ),
        (
            'default_value="{nope"',
            [],
            2,
            "Error: Bad values passed for configuration options: configuration value for 'c' "
            "is not valid JSON: Expecting property name enclosed in double quotes",
        ),
        (
            'default="missing.json"',
            [],
            2,
            "default configuration file 'missing.json' could not be read for 'c'",
        ),
        (
            'default_value="{}"',
            ["--config", "c", "nofile.json"],
            2,
            "configuration file 'nofile.json' could not be read for 'c'",
        ),
        (
            'default_value="{}"',
            ["--config", "c", "reqs.txt", "--config-value", "c", "{}"],
            2,
            "Cannot provide both a value and a file for the same configuration. "
            "Found such values for 'c'",
        ),
        (
            'default_value="{}"',
            ["--config-value", "x", "{}"],
            2,
            "Invalid value for '--config-value'",
        ),
        (
            "required=True",
            ["--config-value", "up", "x", "--env", '{"c": {}}'],
            2,
            "missing configuration for 'c'",
        ),
    ],
    ids=[
        "no-module",
        "no-metaflow-module",
        "not-in-module",
        "not-a-mapping",
        "required",
        "not-json",
        "no-default-file",
        "no-file",
        "file-and-value",
        "not-a-config",
        "option-replaces-environment",
    ],
)
def test_config_errors_match_metaflow(
    tmp_path, config_args: str, run_args: list[str], status: int, message: str
) -> None:
    # "--env TEXT": METAFLOW_FLOW_CONFIG_VALUE=TEXT (a command-line --config-value
    # replaces it, so c has no value)
    env = {}
    if "--env" in run_args:
        at = run_args.index("--env")
        env["METAFLOW_FLOW_CONFIG_VALUE"] = run_args[at + 1]
        run_args = run_args[:at] + run_args[at + 2 :]
    seen = {}
    for lib in LIBS:
        wd = _parser_flow(tmp_path, lib, config_args)
        cp = wd.python("config_parsers.py", *run_args, "run", check=False, **env)
        seen[lib] = (cp.returncode, message in cp.stdout + cp.stderr)
    assert seen["metaflow"] == (status, True)
    assert seen["mfstore"] == seen["metaflow"]


def test_a_flow_without_configs_ignores_config_variables_as_metaflow(tmp_path) -> None:
    # Metaflow gives a flow without configs no config options, so the variables (left by
    # another flow's command, or a shell profile) are not read; mfstore used to refuse them
    seen = {}
    for lib in LIBS:
        wd = Workdir(tmp_path, lib)
        wd.add("linear_params_flow.py")
        cp = wd.python(
            "linear_params_flow.py",
            "run",
            check=False,
            METAFLOW_FLOW_CONFIG_VALUE='{"cfg": {"a": 1}}',
            METAFLOW_FLOW_CONFIG='{"other": "missing.json"}',
        )
        seen[lib] = cp.returncode
    assert seen == {"metaflow": 0, "mfstore": 0}


GAINS_A_CONFIG = """
from metaflow import Config, FlowSpec, config_expr, retry, step


class GainFlow(FlowSpec):
    # CONFIG

    @step
    def start(self):
        self.next(self.end)

    @retry(times=RETRIES)
    @step
    def end(self):
        self.seen = getattr(self, "cfg", None)


if __name__ == "__main__":
    GainFlow()
"""


@pytest.mark.parametrize("retries", ["0", "config_expr('cfg.times')"], ids=["step", "decorator"])
def test_resuming_a_run_recorded_before_the_flow_had_a_config(tmp_path, retries: str) -> None:
    """The origin run has no value for the Config the flow now declares. Metaflow stops
    with a KeyError traceback; mfstore says so in one line, naming the config (it used to
    run with ``self.cfg`` a Parameter object, or stop with ``name 'cfg' is not defined``)."""
    before = GAINS_A_CONFIG.replace("RETRIES", "0")
    after = GAINS_A_CONFIG.replace("RETRIES", retries).replace(
        "# CONFIG", "cfg = Config('cfg', default_value={'times': 1})"
    )
    seen = {}
    for lib in LIBS:
        wd = Workdir(tmp_path, lib)
        wd.add("gain.py", before)
        wd.python("gain.py", "run")
        wd.add("gain.py", after)
        seen[lib] = wd.python("gain.py", "resume", "end", check=False)
    theirs, ours = seen["metaflow"], seen["mfstore"]
    assert theirs.returncode != 0 and "KeyError: 'cfg'" in theirs.stderr
    assert ours.returncode != 0
    errors = [ln for ln in ours.stderr.splitlines() if "'cfg'" in ln]
    assert len(errors) == 1, ours.stderr
    assert "has no value for Config 'cfg'" in errors[0] and "`run`" in errors[0], errors[0]
    assert "Traceback" not in ours.stderr and "is not defined" not in ours.stderr


#: mfstore as it recorded a run's configs before 6340237: the ConfigValue itself, where
#: Metaflow (and mfstore since) records a plain dict.
AS_OLDER_MFSTORE = """
import runpy
import sys

import mfstore.runtime.launch as launch


class NotAConfigValue:
    pass


launch.ConfigValue = NotAConfigValue  # so the configs are stored as they are
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

CONFIG_TYPES = """
import json
from {lib} import Flow, namespace
namespace(None)
seen = []
for run in Flow("ConfigDecoFlow"):  # the resumed run, then its origin
    values = {{}}
    for step in ("_parameters", "start", "b", "end"):
        for name in ("cfg", "extra"):
            value = run[step].task[name].data
            inner = value.get("vars", value)  # extra's nested dict
            values[step + "." + name] = [type(value).__name__, type(inner).__name__, value]
    seen.append([type(run.data.cfg).__name__, values])
print(json.dumps(seen))
"""


def test_a_run_older_mfstore_recorded_reads_and_resumes_with_plain_config_dicts(tmp_path) -> None:
    """Older mfstore recorded a run's configs as ConfigValues; a resume cloned them into
    the new run, so its Client showed ConfigValues where new runs (and Metaflow) show
    plain dicts. The Client now reads such a run's config values as plain dicts (through
    the restricted loader), the old run's and the resumed run's alike."""
    seen = {}
    for lib in LIBS:
        wd = Workdir(tmp_path, lib)
        wd.add(FLOW)
        if lib == "mfstore":
            (wd.path / "as_old.py").write_text(AS_OLDER_MFSTORE)
            wd.python("as_old.py", FLOW, "run")
            recorded = wd.read(
                "from mfstore import Flow, namespace; namespace(None); import json; "
                'print(json.dumps(Flow("ConfigDecoFlow").latest_run["start"].task["cfg"]._type))'
            )
            assert recorded == "mfstore.runtime.config.ConfigValue"  # as older mfstore did
        else:
            wd.python(FLOW, "run")
        wd.python(FLOW, "resume", "b")
        seen[lib] = wd.read(CONFIG_TYPES)
    theirs = seen["metaflow"]
    assert {kind for _, values in theirs for kind, _, _ in values.values()} == {"dict"}
    assert seen["mfstore"] == theirs


def _listed_configs(help_text: str) -> list[str]:
    """The configs the help of --config / --config-value lists (``- name: help``)."""
    return [" ".join(ln.split()) for ln in help_text.splitlines() if ln.strip().startswith("- ")]


def _words(line: str) -> str:
    return " ".join(line.lower().replace("'", " ").replace(":", " ").rstrip(".").split())


def test_config_options_and_their_help_as_metaflow(tmp_path) -> None:
    """Metaflow gives a flow --config / --config-value only when it has a Config (click's
    "no such option" otherwise), and their help lists each config with its help."""
    seen = {}
    for lib in LIBS:
        wd = Workdir(tmp_path, lib)
        wd.add("linear_params_flow.py")
        wd.add(FLOW)
        refused = [
            wd.python("linear_params_flow.py", option, "x", "{}", "run", check=False)
            for option in ("--config", "--config-value")
        ]
        seen[lib] = (
            # (the punctuation is each click's: Metaflow's 7 "no such option: --config",
            # mfstore's 8 "No such option '--config'.", as for any unknown option)
            [(cp.returncode, _words(cp.stderr.strip().splitlines()[-1])) for cp in refused],
            "--config" in wd.python("linear_params_flow.py", "--help").stdout,
            _listed_configs(wd.python(FLOW, "--help").stdout),
        )
    theirs = seen["metaflow"]
    assert theirs[0] == [
        (2, "error no such option --config"),
        (2, "error no such option --config-value"),
    ]
    assert theirs[2] == ["- extra: More environment variables for b.", "- cfg:"] * 2
    assert seen["mfstore"] == theirs

"""A run's values end to end: Parameters of every kind, configs and what the command line
and environment give them; bad values are one-line errors that write nothing."""

from __future__ import annotations

import pytest

from tests.flowfiles import run_id_of

from .conftest import FlowRunner


def test_linear_parameters(flows: FlowRunner, client) -> None:
    cp = flows.run(
        "parameter_kinds_flow.py", "run", "--label", "L", "--count", "4", "--other-name", "o"
    )
    run = client.Run(f"ParameterKindsFlow/{run_id_of(cp)}")
    assert run.data.seen == [0.5, 4, "L", {"k": 1}, "o"]
    assert run.data.total == 13 and run.data.doubled == 8
    params = run["_parameters"].task
    assert params.id == "0"
    assert (
        params.data.label == "L"
        and params.data.alpha == 0.5
        and params.data.name == "ParameterKindsFlow"
    )
    assert (
        params.metadata_dict["start_step"] == "start" and params.metadata_dict["end_step"] == "end"
    )
    assert [s.id for s in run] == ["end", "middle", "start"]
    md = run["middle"].task.metadata_dict
    assert md["attempt"] == "0" and md["origin-run-id"] == "None" and md["runtime"] == "dev"
    assert (
        md["user"] == "alice"
        and md["script-name"] == "parameter_kinds_flow.py"
        and md["python_version"] == "3.11.7"
    )
    gi = run["start"].task["_graph_info"].data
    assert gi["start_step"] == "start" and gi["steps"]["start"]["type"] == "start"
    assert [p["name"] for p in gi["parameters"]] == [
        "alpha",
        "config",
        "count",
        "label",
        "other_name",
    ]
    assert "params ['alpha', 'config', 'count', 'label', 'other_name']" in cp.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--count", "x", "--label", "L"],
            "Invalid value for '--count': 'x' is not a valid integer.",
        ),
        ([], "Missing option '--label'"),
        (["--label", "L", "--nope", "1"], "No such option '--nope'"),
        (["--label", "L", "--tag", ""], "    Tagging error:\n    Tags must not be empty string"),
    ],
)
def test_bad_input_writes_nothing(flows: FlowRunner, args, message) -> None:
    cp = flows.run("parameter_kinds_flow.py", "run", *args, check=False)
    assert cp.returncode != 0
    assert message in cp.stderr
    assert not flows.db.exists() or flows.sql("SELECT count(*) FROM runs") == [(0,)]


TOO_DEEP = "is nested too deeply (more than 100 levels of objects and lists)"


@pytest.mark.parametrize(
    "name, args, status, message",
    [
        (
            "parameter_kinds_flow.py",
            ["run", "--label", "L", "--config", "[" * 50_000 + "]" * 50_000],
            2,
            f"Error: Invalid value for '--config': the JSON value {TOO_DEEP}",
        ),
        (
            "parameter_kinds_flow.py",
            ["run", "--label", "L", "--config", "[" * 101 + "]" * 101],
            2,
            f"Error: Invalid value for '--config': the JSON value {TOO_DEEP}",
        ),
        *(
            (
                "config_params.py",
                ["--config-value", "cfg", '{"a":' * depth + "1" + "}" * depth, "run"],
                2,
                "Error: Bad values passed for configuration options: "
                f"configuration value for 'cfg' {TOO_DEEP}",
            )
            for depth in (101, 600, 3000)
        ),
        (
            "include_flow.py",
            ["run"],
            1,
            "IncludeFile text: the content of data.txt is not valid utf-8 text (invalid start "
            "byte at byte 0): give a file in utf-8, the file's encoding as encoding=, or "
            "is_text=False to read its bytes",
        ),
        (
            "config_params.py",
            ["--config-value", "cfg", '{"s": "a", "d": {}, "i": 1}', "run", "--needed", "n"],
            1,
            "Config expression 'cfg.z' could not be evaluated: AttributeError: z",
        ),
    ],
    ids=[
        "json-too-deep-to-read",
        "json-101",
        "config-101",
        "config-600",
        "config-3000",
        "include",
        "config-lacks-a-key",
    ],
)
def test_bad_values_are_one_line_errors(flows: FlowRunner, name, args, status, message) -> None:
    """Values too deep to handle, a text file not in its encoding and a config value
    without a key a Parameter default reads stop the command with one line saying so (no
    traceback) before anything is written."""
    (flows.workdir / "data.txt").write_bytes(b"\xff\xfe")
    (flows.workdir / "data.bin").write_bytes(b"\xff\xfe")
    _one_line_error(flows, flows.run(name, *args, check=False), status, message)


@pytest.mark.parametrize(
    "variable, text, what",
    [
        ("METAFLOW_FLOW_CONFIG_VALUE", "{", "values"),
        ("METAFLOW_FLOW_CONFIG_VALUE", '["cfg"]', "values"),
        ("METAFLOW_FLOW_CONFIG", '{"cfg": 1}', "file paths"),  # 1: not stdout's descriptor
    ],
)
def test_config_variables_must_be_json_objects(flows: FlowRunner, variable, text, what) -> None:
    cp = flows.run("config_params.py", "run", check=False, **{variable: text})
    message = f"Error: {variable} must be a JSON object of config names to {what}"
    _one_line_error(flows, cp, 2, message)


def _one_line_error(flows: FlowRunner, cp, status: int, message: str) -> None:
    """``cp`` exited with ``status`` and the line ``message``, no traceback, no run."""
    out = cp.stdout + cp.stderr
    assert cp.returncode == status, out[-3000:]
    assert message in [line.strip() for line in out.splitlines()], out[-3000:]
    assert "Traceback" not in out
    assert not flows.db.exists() or flows.sql("SELECT count(*) FROM runs") == [(0,)]


def test_values_nested_100_levels_are_taken(flows: FlowRunner, client) -> None:
    table = '{"a":' * 98 + "{}" + "}" * 98  # 99 levels, in the config's 100th
    deep = f'{{"s": "x", "d": {table}, "i": 1, "z": null}}'
    nested = "[" * 100 + "]" * 100
    cp = flows.run("config_params.py", "--config-value", "cfg", deep, "run", "--needed", "n")
    assert client.Run(f"ConfigParamsFlow/{run_id_of(cp)}").data.values[0] == ["x"]
    cp = flows.run("parameter_kinds_flow.py", "run", "--label", "L", "--config", nested)
    value = client.Run(f"ParameterKindsFlow/{run_id_of(cp)}").data.seen[3]
    for _ in range(99):
        (value,) = value
    assert value == []

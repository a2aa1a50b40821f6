"""Metaflow features of the runtime beyond the seeds' flows (issue 14): the flow CLI's
options and commands, cards, project, parallel, timeout/environment/secrets, IncludeFile,
Config, read-only parameters, exception type names."""

from __future__ import annotations

import json
import pickle

from .conftest import FlowRunner


def _run_id(flows: FlowRunner, *args: str, flow: str = "parity_features.py", **env: str) -> str:
    flows.run(flow, *args, "--run-id-file", "rid", **env)
    return (flows.workdir / "rid").read_text()


def test_features_flow(flows: FlowRunner, client) -> None:
    rid = _run_id(flows, "run", "--label", "x")
    run = client.Run(f"ParityFlow/{rid}")
    start = run["start"].task
    assert start["project"].data == ("parity", "user.alice", "parity.user.alice.ParityFlow")
    assert "project:parity" in run.system_tags and "project_branch:user.alice" in run.system_tags
    assert start["inc_value"].data == "included text"
    assert start["cfg_b"].data == 2
    assert "readonly_broken" not in start  # Parameters and constants are read-only in steps
    assert run["join"].task["nodes"].data == [(0, 3, 0), (1, 3, 1), (2, 3, 2)]
    assert len(list(run["inner"].control_tasks())) == 1
    ex = run["slow"].task["ex"].data
    assert ex.type == "metaflow.plugins.timeout_decorator.TimeoutException"
    # Metaflow's legacy ``for step in flow`` (its graph's node order: by name)
    assert run["end"].task["steps"].data == sorted(
        ["start", "split", "inner", "join", "slow", "end"]
    )


def test_cards(flows: FlowRunner, client) -> None:
    rid = _run_id(flows, "run", "--label", "x")
    from mfstore.cards import CardNotPresentException, get_cards

    cards = get_cards(f"ParityFlow/{rid}/start/1")
    assert len(cards) == 1 and cards[0].type == "blank"
    assert "<h1>Parity &lt;card&gt;</h1>" in cards[0].get()  # component text is escaped
    out = flows.workdir / "card.html"
    flows.run("parity_features.py", "card", "get", f"{rid}/start/1", str(out))
    assert out.read_text() == cards[0].get()
    cp = flows.run("parity_features.py", "--quiet", "card", "list", f"{rid}/start/1", "--as-json")
    listed = json.loads(cp.stdout)
    assert [c["type"] for c in listed["cards"]] == ["blank"]
    try:
        get_cards(f"ParityFlow/{rid}/end/{run_task_id(client, rid, 'end')}")
        raise AssertionError("a task without @card has no card")
    except CardNotPresentException:
        pass


def run_task_id(client, rid: str, step: str) -> str:
    return client.Run(f"ParityFlow/{rid}")[step].task.id


def test_cli_options_and_commands(flows: FlowRunner) -> None:
    # -h, typed help, click's own messages, METAFLOW_RUN_<PARAM>
    cp = flows.run("parity_features.py", "run", "-h")
    assert "--alpha INTEGER" in cp.stdout and "[default: 1]" in cp.stdout
    cp = flows.run("parity_features.py", "run", check=False)
    assert cp.returncode == 2 and "Missing option '--label'" in cp.stderr
    cp = flows.run("parity_features.py", "run", "--label", "x", "--alpha", "no", check=False)
    assert cp.returncode == 2 and "'no' is not a valid integer" in cp.stderr
    rid = _run_id(flows, "--metadata=local", "--datastore=local", "run", METAFLOW_RUN_LABEL="env")
    # dump: Metaflow's pickle of {run/step/task: {name: value}}
    out = flows.workdir / "dump.pkl"
    flows.run(
        "parity_features.py", "dump", "--include", "label,alpha", "--file", str(out), f"{rid}/start"
    )
    assert pickle.loads(out.read_bytes()) == {f"{rid}/start/1": {"label": "env", "alpha": 1}}
    cp = flows.run("parity_features.py", "--datastore=s3", "run", "--label", "x", check=False)
    assert cp.returncode == 1 and "only --datastore=local" in cp.stderr


def test_project_branch_and_production(flows: FlowRunner, client) -> None:
    rid = _run_id(flows, "--branch", "feature", "run", "--label", "x")
    run = client.Run(f"ParityFlow/{rid}")
    assert run["start"].task["project"].data[1] == "test.feature"
    rid = _run_id(flows, "--production", "run", "--label", "x")
    assert "project_branch:prod" in client.Run(f"ParityFlow/{rid}").system_tags


def test_with_decorator_and_logs(flows: FlowRunner) -> None:
    cp = flows.run("parity_flaky.py", "run", check=False)
    assert cp.returncode == 1
    rid = _run_id(flows, "--with", "retry:times=1", "run", flow="parity_flaky.py")
    cp = flows.run("parity_flaky.py", "--quiet", "logs", "--stdout", f"{rid}/start")
    assert cp.stdout == "second attempt\n"
    assert "Sleeping" not in flows.run("parity_flaky.py", "--with", "retry", "run").stdout
    cp = flows.run("parity_flaky.py", "--with", "nosuch", "run", check=False)
    assert cp.returncode == 1 and "Unknown decorator" in cp.stderr


def test_cloud_decorators_import_and_refuse_to_run(flows: FlowRunner) -> None:
    cp = flows.run("parity_remote.py", "run", check=False)
    assert cp.returncode == 1
    assert "@kubernetes" in cp.stderr and "Traceback" not in cp.stderr
    assert not flows.db.exists() or flows.sql("SELECT count(*) FROM runs") == [(0,)]

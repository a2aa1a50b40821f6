"""Production runs: identity, namespaces, the deployed code, token reset, resume, triggers, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import mfstore
from mfstore.exception import MetaflowNamespaceMismatch
from mfstore.production import new_token

TOK0 = new_token("prodflow")
TOK1 = new_token("prodflow", TOK0)


def run_of(flow, run_id):
    mfstore.namespace(None)
    return mfstore.Run(f"{flow}/{run_id}")


def test_production_run_identity_namespaces_and_code(prod):
    prod("prod_flow.py", "production", "create")
    # the working copy changes after the deployment: production runs the deployed version
    work = prod.workdir / "prod_flow.py"
    work.write_text(work.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))
    run_id = prod.trigger("prod_flow.py", "--alpha", "7")

    run = run_of("ProdFlow", run_id)
    assert run.successful
    assert f"production:{TOK0}" in run.system_tags
    assert not any(t.startswith("user:") for t in run.tags)
    assert run.data.alpha == "7" and run.data.version == "v1"
    assert run.data.ns == f"production:{TOK0}" and run.data.is_prod is True
    assert run.data.has_trigger is False and run.trigger is None
    assert 'VERSION = "v1"' in run.code.flowspec

    # visible from its production namespace and the global one only
    mfstore.namespace(f"production:{TOK0}")
    assert mfstore.Flow("ProdFlow").latest_run.id == run_id
    mfstore.namespace("user:alice")
    with pytest.raises(MetaflowNamespaceMismatch):
        mfstore.Run(f"ProdFlow/{run_id}")
    mfstore.namespace("production:other-0-abcd")
    with pytest.raises(MetaflowNamespaceMismatch):
        mfstore.Run(f"ProdFlow/{run_id}")

    # a normal run with Metaflow's production-token variable gets the same identity
    prod("prod_flow.py", "run", "--run-id-file", "rid", METAFLOW_PRODUCTION_TOKEN=TOK0)
    env_run = run_of("ProdFlow", (prod.workdir / "rid").read_text())
    assert env_run.data.version == "v2"  # the working copy this time
    assert f"production:{TOK0}" in env_run.system_tags and not any(
        t.startswith("user:") for t in env_run.tags
    )
    mfstore.namespace(f"production:{TOK0}")
    assert {r.id for r in mfstore.Flow("ProdFlow")} == {run_id, env_run.id}

    # a personal run stays personal
    prod("prod_flow.py", "run", "--run-id-file", "rid")
    mine = run_of("ProdFlow", (prod.workdir / "rid").read_text())
    assert "user:alice" in mine.tags and mine.data.is_prod is False and mine.data.ns == "user:alice"


def test_token_reset_and_resume_across_namespaces(prod):
    prod("prod_flow.py", "production", "create")
    old = prod.trigger("prod_flow.py")
    cp = prod("prod_flow.py", "production", "create", "--generate-new-token")
    assert (
        "A new production token generated." in cp.stderr and f"    production:{TOK1}" in cp.stderr
    )
    # the new namespace is fresh and empty; the old run stays in the old namespace
    mfstore.namespace(f"production:{TOK1}")
    with pytest.raises(MetaflowNamespaceMismatch):
        mfstore.Flow("ProdFlow")
    new = prod.trigger("prod_flow.py")
    assert [r.id for r in mfstore.Flow("ProdFlow")] == [new]
    mfstore.namespace(f"production:{TOK0}")
    assert [r.id for r in mfstore.Flow("ProdFlow")] == [old]
    assert f"production:{TOK1}" in run_of("ProdFlow", new).system_tags

    # resume a production run from a personal namespace: the result is personal
    prod("prod_flow.py", "resume", "--origin-run-id", old, "--run-id-file", "rid", user="bob")
    resumed = run_of("ProdFlow", (prod.workdir / "rid").read_text())
    assert resumed.successful
    assert prod.sql("SELECT origin_run_number FROM runs WHERE run_number = ?", (resumed.id,)) == [
        (old,)
    ]
    assert "user:bob" in resumed.tags
    assert not any(t.startswith("production:") for t in resumed.system_tags)
    assert resumed.data.ns == f"production:{TOK0}"  # cloned from the production run
    mfstore.namespace(f"production:{TOK0}")
    assert [r.id for r in mfstore.Flow("ProdFlow")] == [old]


def test_trigger_on_finish_chain(prod):
    prod("up_flow.py", "production", "create")
    prod("down_flow.py", "production", "create")
    # a personal run of UpFlow triggers nothing
    prod("up_flow.py", "run")
    assert prod.sql("SELECT count(*) FROM runs WHERE flow_id = 'DownFlow'") == [(0,)]

    # a failed production run of UpFlow triggers nothing either
    cp = prod("up_flow.py", "production", "trigger", "--fail", "yes", check=False)
    assert cp.returncode == 1 and "upstream failed on purpose" in cp.stdout + cp.stderr
    assert prod.sql("SELECT count(*) FROM runs WHERE flow_id = 'DownFlow'") == [(0,)]

    up_id = prod.trigger("up_flow.py")
    (down_id,) = [r for (r,) in prod.sql("SELECT run_number FROM runs WHERE flow_id = 'DownFlow'")]
    down = run_of("DownFlow", down_id)
    assert down.successful
    assert down.trigger.run.pathspec == f"UpFlow/{up_id}"
    assert [r.pathspec for r in down.trigger.runs] == [f"UpFlow/{up_id}"]
    assert down.trigger["UpFlow"].pathspec == f"UpFlow/{up_id}"
    event = down.trigger.event
    assert event.type == "run" and event.name == "metaflow.UpFlow.end"
    assert event.id.startswith(f"UpFlow/{up_id}/end/")
    assert down.trigger.events == [event]
    # inside the triggered run: current.trigger
    assert down.data.upstream == f"UpFlow/{up_id}" and down.data.model == "m1"
    assert down.data.ns == "production:{}".format(new_token("downflow"))
    assert "production:{}".format(new_token("downflow")) in down.system_tags
    assert run_of("UpFlow", up_id).trigger is None


def test_event_trigger_with_payload(prod):
    prod("event_flow.py", "production", "create")
    prod("mapped_event_flow.py", "production", "create")
    cp = prod(
        "event_flow.py",
        "production",
        "trigger",
        "--event",
        "data_ready",
        "--payload",
        "table=users",
        "--payload",
        "note=a=b",
    )
    ((event_id, payload),) = prod.sql(
        "SELECT event_id, payload FROM events WHERE name = 'data_ready'"
    )
    assert json.loads(payload) == {"table": "users", "note": "a=b"}
    assert "Event data_ready sent" in cp.stderr
    runs = dict(prod.sql("SELECT flow_id, run_number FROM runs"))
    assert set(runs) == {"EventFlow", "MappedEventFlow"}
    ev = run_of("EventFlow", runs["EventFlow"])
    assert ev.data.table == "users" and ev.data.event_name == "data_ready"
    assert ev.trigger.event.name == "data_ready" and ev.trigger.event.type == "event"
    assert ev.trigger.event.id == event_id
    assert ev.trigger["data_ready"] == ev.trigger.event and "data_ready" in ev.trigger
    assert ev.trigger.run is None and ev.trigger.runs is None
    assert run_of("MappedEventFlow", runs["MappedEventFlow"]).data.which == "users"

    # an event nobody waits for is recorded, nothing runs
    cp = prod("event_flow.py", "production", "trigger", "--event", "nobody_listens")
    assert "No deployed flow is triggered by event nobody_listens." in cp.stderr
    assert prod.sql("SELECT count(*) FROM events") == [(2,)]
    assert prod.sql("SELECT count(*) FROM runs") == [(2,)]


def test_bad_inputs_record_nothing(prod):
    def one_line_error(cp, *needles):
        assert cp.returncode != 0
        # Metaflow's error block: the headline, then the message indented on its own line
        lines = [ln for ln in cp.stderr.strip().splitlines() if " executing " not in ln]
        assert len(lines) == 2 and lines[0].endswith(":") and lines[1].startswith("    "), cp.stderr
        for n in needles:
            assert n in lines[1]

    # triggering a flow that was never deployed
    one_line_error(
        prod("prod_flow.py", "production", "trigger", check=False),
        "not deployed",
        "production create",
    )
    prod("up_flow.py", "production", "create")
    one_line_error(
        prod("prod_flow.py", "production", "trigger", check=False),
        "not deployed",
        "production create",
    )
    one_line_error(
        prod("prod_flow.py", "production", "show", check=False), "not deployed", "production create"
    )
    # an unknown flow deployment
    one_line_error(
        prod("up_flow.py", "production", "show", "NoSuchFlow", check=False),
        "Unknown flow deployment",
        "production list",
    )
    # payloads that are not k=v
    one_line_error(
        prod(
            "up_flow.py",
            "production",
            "trigger",
            "--event",
            "e",
            "--payload",
            "novalue",
            check=False,
        ),
        "--payload",
        "KEY=VALUE",
    )
    one_line_error(
        prod("up_flow.py", "production", "trigger", "--event", "e", "--payload", "=x", check=False),
        "KEY=VALUE",
    )
    one_line_error(
        prod("up_flow.py", "production", "trigger", "--payload", "a=b", check=False), "--event"
    )
    assert prod.sql("SELECT count(*) FROM events") == [(0,)]
    assert prod.sql("SELECT count(*) FROM runs") == [(0,)]
    assert prod.sql("SELECT count(*) FROM deployments") == [(1,)]


def test_default_functions_are_evaluated_as_at_deploy_time(prod):
    # one that fails when deployed fails create (as Metaflow's does): nothing deployed
    cp = prod("deploy_time_flow.py", "production", "create", check=False, BREAK_DEPLOY="1")
    assert cp.returncode == 1 and "Parameter field failed" in cp.stdout + cp.stderr
    assert "no settings to deploy" in cp.stdout + cp.stderr
    assert not prod.db.exists()  # refused before anything is written
    prod("deploy_time_flow.py", "production", "create")
    # sending an event evaluates no default function
    cp = prod("deploy_time_flow.py", "production", "trigger", "--event", "nobody_listens")
    assert "No deployed flow is triggered" in cp.stderr
    run_id = prod.trigger("deploy_time_flow.py")
    assert run_of("DeployTimeFlow", run_id).data.seen == {"k": 1, "deploy_time": True}
    # a plain run evaluates it as Metaflow's run does: a JSONType default must be text
    cp = prod("deploy_time_flow.py", "run", check=False)
    assert cp.returncode == 1
    assert "has a wrong type. Expected a string." in cp.stdout + cp.stderr
    assert "Traceback" not in cp.stdout + cp.stderr


def test_create_fixes_default_functions_and_configs(prod):
    """As Metaflow's ``<scheduler> create``: the default function is evaluated once, by
    create, and the configs are resolved there (``--config-value`` given to create, through
    the config's parser); every deployed run uses those values, whatever the function would
    give now; ``--PARAM`` given to trigger, and an event's payload, still override."""
    flow = "deployed_values_flow.py"
    prod(flow, "--config-value", "opts", "a = 5", "production", "create", STAMP="at-create")
    fixed = {"stamp": "at-create", "lr": 0.1, "a": 5}
    seen = lambda run_id: run_of("DeployedValuesFlow", run_id).data.seen  # noqa: E731
    assert seen(prod.trigger(flow, STAMP="later")) == fixed
    assert seen(prod.trigger(flow, "--stamp", "given", STAMP="later")) == {
        **fixed,
        "stamp": "given",
    }
    id_file = prod.workdir / "event_run"
    # a payload field named like a config is no parameter of the run (configs are fixed)
    cfg_field = ("--payload", 'cfg={"lr": 9}')
    for payload, stamp in ((("--payload", "stamp=sent", *cfg_field), "sent"), ((), "at-create")):
        prod(
            flow, "production", "trigger", "--event", "go", *payload, "--run-id-file", str(id_file)
        )
        assert seen(id_file.read_text()) == {**fixed, "stamp": stamp}
    # a personal run evaluates the function and reads the configs' defaults, as before
    prod(flow, "run", "--run-id-file", str(id_file), STAMP="mine")
    assert seen(id_file.read_text()) == {"stamp": "mine", "lr": 0.1, "a": 1}
    # a new deployment fixes new values
    prod(flow, "--config-value", "cfg", '{"lr": 0.5}', "production", "create", STAMP="second")
    assert seen(prod.trigger(flow, STAMP="later")) == {"stamp": "second", "lr": 0.5, "a": 1}
    ((values,), _first) = prod.sql(
        "SELECT values_json FROM deployments ORDER BY deployment_pk DESC"
    )
    assert json.loads(values) == {
        "parameters": {"stamp": "second"},
        "configs": {"cfg": {"lr": 0.5}, "opts": {"a": 1}},
        "files": {},
    }
    ((triggers,), *_) = prod.sql("SELECT triggers FROM deployments")
    assert [t["parameters"] for t in json.loads(triggers)] == [{"stamp": "stamp"}]


def _plant_values(db, text):
    """Set every deployment's ``values_json`` as a file's author could (another process: a
    stdlib connection closed here would drop this process's locks on the file)."""
    code = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
    code += "c.execute('UPDATE deployments SET values_json = ?', (sys.argv[2],)); c.commit()"
    subprocess.run([sys.executable, "-c", code, str(db), text], check=True)


def test_deployed_values_are_data(prod):
    """The fixed values come from the file: text given to the parameter as it is (never
    evaluated), configs used as JSON (no parser); anything else stops the run with one
    line."""
    flow = "deployed_values_flow.py"
    prod(flow, "production", "create")
    planted = "__import__('os').system('touch planted')"
    values = {"parameters": {"stamp": planted}, "configs": {"cfg": {"lr": 2}, "opts": {"a": 3}}}
    _plant_values(prod.db, json.dumps(values))
    run_id = prod.trigger(flow)
    assert run_of("DeployedValuesFlow", run_id).data.seen == {"stamp": planted, "lr": 2, "a": 3}
    assert not (prod.workdir / "planted").exists()
    deep = '{"a":' * 500 + "1" + "}" * 500  # (json reads it; nesting is checked after)
    for damaged in (
        '{"parameters": {"stamp": 5}}',
        '{"configs": {"cfg": [1]}}',
        "[]",
        "{",
        '{"configs": {"cfg": ' + deep + "}}",
    ):
        _plant_values(prod.db, damaged)
        cp = prod(flow, "production", "trigger", check=False)
        out = cp.stdout + cp.stderr
        assert cp.returncode == 1 and "deploy the flow again with `production create`" in out
        assert "Traceback" not in out


def test_a_large_config_reaches_the_deployed_run(prod):
    """A config above Linux's 128 KiB limit of one environment variable (or argument): the
    run gets the fixed values through a file, not the environment."""
    big = prod.workdir / "big.json"
    big.write_text(json.dumps({"lr": 0.25, "pad": "x" * 200_000}))
    prod("deployed_values_flow.py", "--config", "cfg", str(big), "production", "create")
    run_id = prod.trigger("deployed_values_flow.py", STAMP="later")
    assert run_of("DeployedValuesFlow", run_id).data.seen == {"stamp": "unset", "lr": 0.25, "a": 1}


def test_create_reads_include_files(prod):
    """As Metaflow's create: IncludeFile defaults are read by create (one that cannot be
    read fails the deployment); the deployed runs get that content, even once the file
    changed or went; a path given to trigger is read by the run."""
    flow = "include_flow.py"
    cp = prod(flow, "production", "create", check=False)
    assert cp.returncode == 1
    assert "IncludeFile: could not open file 'data.bin' for reading" in cp.stdout + cp.stderr
    assert not prod.db.exists()  # refused before anything is written
    (prod.workdir / "data.bin").write_bytes(b"\x00\xff")
    (prod.workdir / "data.txt").write_bytes(b"\xff not utf-8")  # every run would refuse it
    cp = prod(flow, "production", "create", check=False)
    assert cp.returncode == 1 and "Traceback" not in cp.stdout + cp.stderr
    assert "IncludeFile text: the content of data.txt is not valid utf-8" in cp.stdout + cp.stderr
    assert not prod.db.exists()
    (prod.workdir / "data.txt").write_text("at create\n")
    prod(flow, "production", "create")
    (prod.workdir / "data.txt").write_text("later\n")
    (prod.workdir / "data.bin").unlink()
    run = run_of("IncludeFlow", prod.trigger(flow))
    assert (run.data.text, run.data.blob) == ("at create\n", b"\x00\xff")
    (prod.workdir / "other.txt").write_text("given\n")
    run = run_of("IncludeFlow", prod.trigger(flow, "--text", "other.txt"))
    assert (run.data.text, run.data.blob) == ("given\n", b"\x00\xff")


def test_include_default_function_is_not_called_again(prod):
    """As Metaflow's deployed runs (whose default is the file create uploaded): the
    IncludeFile's default function runs once, at create; the runs use the bytes kept."""
    flow = "include_default_fn_flow.py"
    (prod.workdir / "notes.txt").write_text("at create")
    cp = prod(flow, "production", "create", NOTES="notes.txt")
    assert "notes_path called" in cp.stdout + cp.stderr
    (prod.workdir / "notes.txt").unlink()
    id_file = prod.workdir / "run_id"
    cp = prod(flow, "production", "trigger", "--run-id-file", str(id_file))
    assert "notes_path called" not in cp.stdout + cp.stderr
    assert run_of("IncludeDefaultFnFlow", id_file.read_text()).data.seen == {
        "notes": "at create",
        "label": "none",
    }
    # an event's mapping names the parameter in any case (Metaflow's create lowercases it)
    prod(
        flow,
        "production",
        "trigger",
        "--event",
        "go",
        "--payload",
        "l=sent",
        "--run-id-file",
        str(id_file),
    )
    assert run_of("IncludeDefaultFnFlow", id_file.read_text()).data.seen["label"] == "sent"


def test_fixed_values_only_for_parameters_of_their_kind(prod):
    """A value planted for a parameter of another kind is damage, not data: a "path" for
    an IncludeFile (the run would read that file into the .mfdb), bytes for a Parameter,
    a config the flow has not; the run stops with one line, reading nothing."""
    flow = "include_default_fn_flow.py"
    (prod.workdir / "notes.txt").write_text("at create")
    prod(flow, "production", "create", NOTES="notes.txt")
    secret = prod.workdir / "secret.txt"
    secret.write_text("do not read me")
    b64 = "ZG8gbm90"
    for planted in (
        {"parameters": {"notes": str(secret)}, "files": {}},
        {"parameters": {}, "files": {"notes": b64, "label": b64}},
        {"parameters": {}, "configs": {"cfg": {}}, "files": {"notes": b64}},
        {"parameters": {"label": "x", "nope": "y"}, "files": {"notes": b64}},
    ):
        _plant_values(prod.db, json.dumps(planted))
        cp = prod(flow, "production", "trigger", check=False)
        out = cp.stdout + cp.stderr
        assert cp.returncode == 1, planted
        assert "deploy the flow again with `production create`" in out
        assert "Traceback" not in out
    assert prod.sql("SELECT count(*) FROM runs")[0] == (0,)  # no run started


def _write_flow(prod, body):
    path = prod.workdir / "mapped.py"
    path.write_text(
        "from mfstore import Config, FlowSpec, Parameter, step, trigger\n\n"
        f"{body}\nclass MappedFlow(FlowSpec):\n"
        "    alpha = Parameter('alpha', default='a')\n"
        "    cfg = Config('cfg', default_value={'lr': 1})\n\n"
        "    @step\n    def start(self):\n        self.next(self.end)\n\n"
        "    @step\n    def end(self):\n        pass\n\n\n"
        "if __name__ == '__main__':\n    MappedFlow()\n"
    )
    return path


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (
            {"cfg": "c"},
            "Parameter cfg defined in the event mappings for @trigger decorator not found",
        ),
        (
            {"tag": "t"},
            "Parameter tag defined in the event mappings for @trigger decorator not found",
        ),
        (
            {"alpha": "a", "ALPHA": "b"},
            "Duplicate entries for parameter alpha defined in the event mappings",
        ),
    ],
)
def test_create_refuses_mappings_to_what_is_no_parameter(prod, mapping, message):
    """As Metaflow's create: an event mapping names the flow's parameters (not a config,
    which is fixed at create; not a run option such as ``tag``), each once."""
    trig = json.dumps({"name": "go", "parameters": mapping})
    path = _write_flow(prod, f"@trigger(event={trig})")
    cp = prod(str(path), "production", "create", check=False)
    out = cp.stdout + cp.stderr
    assert cp.returncode == 1 and message in out and "Traceback" not in out
    assert not prod.db.exists()


def test_a_stored_mapping_sets_only_parameters(prod):
    """The mapping comes from the file (a deployment made before create checked it, or
    planted): an event value mapped to a config or to a run option (``tag``,
    ``run-id-file``) is ignored with a line, never a command-line option of the run."""
    path = _write_flow(prod, "@trigger(event='go')")
    prod(str(path), "production", "create")
    pwn = prod.workdir / "pwn"
    mapping = {"alpha": "a", "cfg": "c", "tag": "a", "run-id-file": "p"}
    code = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
    code += "c.execute('UPDATE deployments SET triggers = ?', (sys.argv[2],)); c.commit()"
    triggers = json.dumps([{"type": "event", "name": "go", "parameters": mapping}])
    subprocess.run([sys.executable, "-c", code, str(prod.db), triggers], check=True)
    cp, run_id = prod.send(str(path), "go", "a=sent", 'c={"lr": 9}', f"p={pwn}")
    out = cp.stdout + cp.stderr
    assert "Ignoring the value given for *cfg*: it is a config" in out
    assert "Ignoring the value given for *tag*: it is no parameter" in out
    assert not pwn.exists()
    run = run_of("MappedFlow", run_id)
    assert run.data.alpha == "sent" and run["start"].task["cfg"].data == {"lr": 1}
    assert "sent" not in run.user_tags


_VALUES_FLOW = """
from mfstore import Config, FlowSpec, JSONType, Parameter, step, trigger


@trigger(event="go")
class ValuesFlow(FlowSpec):
    js = Parameter("js", type=JSONType, default="{}")
    Alpha = Parameter("Alpha", default="a")
    with_decos = Parameter("with_decos", default="w")
    cfg = Config("cfg", default_value=DEEP)

    @step
    def start(self):
        self.seen = {"js": self.js, "Alpha": self.Alpha, "with_decos": self.with_decos}
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ValuesFlow()
"""


def test_trigger_values_reach_the_run_as_given(prod):
    """What ``production trigger`` and an event give reaches the run as ``run`` would take
    it: a JSON string stays a string, text that is not UTF-8 is text, a payload above the
    128 KiB an environment variable may hold, a config 100 levels deep (as ``run`` takes);
    a Parameter named like the dest of ``run``'s own option works; the automatic event
    mapping takes payload fields by the lowercased name, as Metaflow's."""
    deep = "{'a': " * 99 + "{}" + "}" * 99  # 100 levels: the most a config may nest
    path = prod.workdir / "values_flow.py"
    path.write_text(_VALUES_FLOW.replace("DEEP", deep))
    prod(str(path), "run")
    prod(str(path), "production", "create")
    seen = lambda run_id: run_of("ValuesFlow", run_id).data.seen  # noqa: E731
    assert seen(prod.trigger(str(path), "--js", '"[1]"'))["js"] == "[1]"
    assert seen(prod.trigger(str(path), "--js", '"hello"'))["js"] == "hello"
    assert seen(prod.trigger(str(path), "--Alpha", "\udcff"))["Alpha"] == "\udcff"
    big = "x" * 70_000  # (one argument may hold 128 KiB: two of them in one event)
    _, run_id = prod.send(str(path), "go", "alpha=low", f"big={big}", f"big2={big}")
    run = run_of("ValuesFlow", run_id)
    assert run.data.seen == {"js": {}, "Alpha": "low", "with_decos": "w"}
    assert run.trigger.event.name == "go"
    ((payload,),) = prod.sql("SELECT payload FROM trigger_events")
    assert json.loads(payload)["big2"] == big
    cp = prod(
        str(path), "production", "trigger", "--event", "go", "--payload", "a=\udcff", check=False
    )
    assert cp.returncode == 1 and "Traceback" not in cp.stdout + cp.stderr
    assert "is not valid text (UTF-8)" in cp.stdout + cp.stderr


def test_create_refuses_an_event_name_metaflow_refuses(prod):
    """Metaflow's create allows letters, digits, ``_``, ``-`` and ``.`` in an event name."""
    path = _write_flow(prod, "@trigger(event='data ready')")
    cp = prod(str(path), "production", "create", check=False)
    out = cp.stdout + cp.stderr
    assert cp.returncode == 1 and "Traceback" not in out
    assert "Invalid event name data ready in @trigger decorator." in out


def test_a_parameter_named_like_a_trigger_option(prod):
    """A Parameter named ``event`` (no reserved word in Metaflow) is not an option of
    ``production trigger``, whose own ``--event`` it would shadow: it takes its default,
    or an event's payload field."""
    path = prod.workdir / "ev.py"
    path.write_text(
        _VALUES_FLOW.replace("ValuesFlow", "EvFlow")
        .replace(
            'Alpha = Parameter("Alpha", default="a")', 'event = Parameter("event", default="e")'
        )
        .replace('"Alpha": self.Alpha', '"event": self.event')
        .replace("DEEP", "{}")
    )
    prod(str(path), "production", "create")
    cp, run_id = prod.send(str(path), "go", "event=sent")
    assert "is used more than once" not in cp.stdout + cp.stderr
    assert run_of("EvFlow", run_id).data.seen["event"] == "sent"
    assert run_of("EvFlow", prod.trigger(str(path))).data.seen["event"] == "e"
    # named so that click would pass its value under trigger's own keyword: shadowed too
    path.write_text(path.read_text().replace('Parameter("event"', 'Parameter("Payload"'))
    prod(str(path), "production", "create")
    cp, run_id = prod.send(str(path), "go", "payload=sent")
    assert "Traceback" not in cp.stdout + cp.stderr
    assert run_of("EvFlow", run_id).data.seen["event"] == "sent"
    assert run_of("EvFlow", prod.trigger(str(path))).data.seen["event"] == "e"


def test_a_trigger_value_beats_the_environment_and_leaves_it_to_followers(prod):
    """``production trigger --fail no`` wins over ``METAFLOW_RUN_FAIL`` (as a command-line
    value would), and the variable stays for the runs this one triggers: a follower with a
    Parameter of that name takes it from the environment, as its own ``run`` would."""
    prod("up_flow.py", "production", "create")
    follower = prod.workdir / "follow_flow.py"
    follower.write_text(
        "from mfstore import FlowSpec, Parameter, step, trigger_on_finish\n\n\n"
        "@trigger_on_finish(flow='UpFlow')\nclass FollowFlow(FlowSpec):\n"
        "    fail = Parameter('fail', default='default')\n\n"
        "    @step\n    def start(self):\n        self.seen = self.fail\n"
        "        self.next(self.end)\n\n"
        "    @step\n    def end(self):\n        pass\n\n\n"
        "if __name__ == '__main__':\n    FollowFlow()\n"
    )
    prod(str(follower), "production", "create")
    up_id = prod.trigger("up_flow.py", "--fail", "no", METAFLOW_RUN_FAIL="yes")
    assert run_of("UpFlow", up_id).successful
    ((follow_id,),) = prod.sql("SELECT run_number FROM runs WHERE flow_id = 'FollowFlow'")
    assert run_of("FollowFlow", follow_id).data.seen == "yes"


def test_a_flow_file_not_named_py_deploys_and_triggers(prod):
    """A flow file is any file Python runs: one without ``.py`` deploys and its
    deployment triggers, from its code package."""
    src = prod.copy("up_flow.py")
    script = prod.workdir / "upflow"
    script.write_text(src.read_text())
    prod(str(script), "production", "create")
    script.unlink()
    run_id = prod.trigger(str(src))
    assert run_of("UpFlow", run_id).code.script_name == "upflow"

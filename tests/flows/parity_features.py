import os

from metaflow import (
    Config,
    FlowSpec,
    IncludeFile,
    Parameter,
    card,
    catch,
    current,
    environment,
    parallel,
    project,
    secrets,
    step,
    timeout,
)
from metaflow.cards import Markdown

with open("included.txt", "w") as fh:
    fh.write("included text")


@project(name="parity")
class ParityFlow(FlowSpec):
    """Metaflow features beyond the seeds' flows."""

    alpha = Parameter("alpha", default=1, help="An integer")
    label = Parameter("label", required=True, help="A required string")
    RATE = 0.5
    inc = IncludeFile("inc", default="included.txt")
    cfg = Config("cfg", default_value={"a": {"b": 2}})

    @card(type="blank")
    @environment(vars={"FOO": "bar"})
    @secrets(sources=[{"type": "inline", "options": {"env_vars": {"SECRET_1": "s1"}}}])
    @step
    def start(self):
        assert os.environ["FOO"] == "bar" and os.environ["SECRET_1"] == "s1"
        self.project = (current.project_name, current.branch_name, current.project_flow_name)
        self.inc_value = self.inc
        self.cfg_b = self.cfg.a.b
        for name in ("alpha", "RATE"):
            try:
                setattr(self, name, 3)
                self.readonly_broken = name
            except AttributeError:
                pass
        current.card.append(Markdown("# Parity <card>"))
        self.next(self.split)

    @step
    def split(self):
        self.next(self.inner, num_parallel=3)

    @parallel
    @step
    def inner(self):
        self.node = (current.parallel.node_index, current.parallel.num_nodes, self.input)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.nodes = sorted(i.node for i in inputs)
        self.next(self.slow)

    @catch(var="ex", print_exception=False)
    @timeout(seconds=1)
    @step
    def slow(self):
        import time

        time.sleep(10)
        self.next(self.end)

    @step
    def end(self):
        self.steps = [s.name for s in self]


if __name__ == "__main__":
    ParityFlow()

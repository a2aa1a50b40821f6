"""Deploy-time values: Metaflow's ``<scheduler> create`` evaluates Parameter default
functions once and resolves the configs, and its deployed runs use those values; a
default function reading the environment shows which evaluation a run saw."""

import os

from metaflow import Config, FlowSpec, Parameter, step, trigger


def stamp(ctx):
    return os.environ.get("STAMP", "unset")


@trigger(event="go")
class DeployedValuesFlow(FlowSpec):
    stamp = Parameter("stamp", default=stamp)
    cfg = Config("cfg", default_value={"lr": 0.1})
    opts = Config("opts", default_value="a = 1", parser="tomllib.loads")

    @step
    def start(self):
        self.seen = {"stamp": self.stamp, "lr": self.cfg.lr, "a": self.opts.a}
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DeployedValuesFlow()

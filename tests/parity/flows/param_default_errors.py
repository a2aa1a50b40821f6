"""A Parameter whose default function fails, or returns the wrong type (``PROBLEM``)."""

import os

from metaflow import FlowSpec, JSONType, Parameter, step

PROBLEM = os.environ.get("PROBLEM", "")


def number(ctx):
    if PROBLEM == "raises":
        raise RuntimeError("no number today")
    return "five" if PROBLEM == "int" else 5


def settings(ctx):
    return {"k": 1} if PROBLEM == "json" else '{"k": 1}'


class ParamDefaultFlow(FlowSpec):
    n = Parameter("n", type=int, default=number)
    cfg = Parameter("cfg", type=JSONType, default=settings)

    @step
    def start(self):
        print("n", self.n, "cfg", self.cfg)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ParamDefaultFlow()

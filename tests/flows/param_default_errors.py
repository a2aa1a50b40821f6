"""Parameters whose default function fails, or returns the wrong type (``PROBLEM``), or
takes Metaflow's ``deploy_time`` argument, or returns bytes."""

import os

from metaflow import FlowSpec, JSONType, Parameter, step

PROBLEM = os.environ.get("PROBLEM", "")


def number(ctx):
    if PROBLEM == "raises":
        raise RuntimeError("no number today")
    return "five" if PROBLEM == "int" else 5


def settings(ctx):
    return {"k": 1} if PROBLEM == "json" else '{"k": 1}'


def label(ctx, deploy_time):  # called with deploy_time when it takes it
    return b"bytes-label" if PROBLEM == "bytes" else f"label-{deploy_time}"


def unshown(ctx):
    if PROBLEM == "unshown":
        raise RuntimeError("computed although not shown")
    return 1


class ParamDefaultFlow(FlowSpec):
    n = Parameter("n", type=int, default=number)
    cfg = Parameter("cfg", type=JSONType, default=settings)
    tag_label = Parameter("tag_label", default=label)
    hidden = Parameter("hidden", type=int, default=unshown, show_default=False, help="Hidden.")

    @step
    def start(self):
        print("VALUES", repr(self.n), repr(self.cfg), repr(self.tag_label))
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ParamDefaultFlow()

"""An IncludeFile whose default is a function (of the environment, here), an event mapping
written with another case than the parameter's name: what ``production create`` fixes and
what an event sets."""

import os

from metaflow import FlowSpec, IncludeFile, Parameter, step, trigger


def notes_path(ctx):
    print("notes_path called")
    return os.environ["NOTES"]


@trigger(event={"name": "go", "parameters": {"Label": "l"}})
class IncludeDefaultFnFlow(FlowSpec):
    notes = IncludeFile("notes", default=notes_path)
    label = Parameter("label", default="none")

    @step
    def start(self):
        self.seen = {"notes": self.notes, "label": self.label}
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    IncludeDefaultFnFlow()

"""A branch whose step b raises ValueError unless RESUME_OK is set, with a parameter and
`current.origin_run_id` recorded: the run to resume (resume tests). A plain failing run is
failing_flow.py."""

import os

from metaflow import FlowSpec, Parameter, current, step


class ResumeFailingFlow(FlowSpec):
    p = Parameter("p", default=7)

    @step
    def start(self):
        self.before = "ok"
        print("start ran", current.origin_run_id)
        self.next(self.a, self.b)

    @step
    def a(self):
        self.va = 1
        self.next(self.join)

    @step
    def b(self):
        print("about to fail")
        if not os.environ.get("RESUME_OK"):
            raise ValueError("deliberate failure 17")
        self.vb = 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = inputs.a.va + inputs.b.vb + self.p
        self.origin = current.origin_run_id
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ResumeFailingFlow()

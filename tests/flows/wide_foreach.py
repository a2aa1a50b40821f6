"""A foreach with N tasks (N from the WIDTH env var, default 100); each task prints its item."""

import os

from metaflow import FlowSpec, step


class WideForeachFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range(int(os.environ.get("WIDTH", "100"))))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        print("work", self.input)
        self.sq = self.input * self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.sq for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("total", self.total)


if __name__ == "__main__":
    WideForeachFlow()

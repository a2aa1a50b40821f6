"""Only the foreach step carries @dask: start and end run locally, `work` on a LocalCluster."""

import os

from mfstore import FlowSpec, dask, step


class Cell:
    def __init__(self, value):
        self.value = value


class MixedFlow(FlowSpec):
    @step
    def start(self):
        self.items = [1, 2, 3]
        self.local_parent = os.getppid()
        self.next(self.work, foreach="items")

    @dask(workers=2)
    @step
    def work(self):
        self.cell = Cell(self.input * 10)
        self.parent = os.getppid()
        print("work on", self.input)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.cells = [i.cell for i in inputs]
        self.parents = sorted({i.parent for i in inputs})
        self.local_parent = inputs[0].local_parent
        self.next(self.end)

    @step
    def end(self):
        self.end_parent = os.getppid()


if __name__ == "__main__":
    MixedFlow()

"""Foreach over a list (uses self.index) and join."""

from metaflow import FlowSpec, step


class ForeachFlow(FlowSpec):
    @step
    def start(self):
        self.items = ["a", "b", "c", "d"]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.item = self.input
        self.idx = self.index
        self.sq = self.index * self.index
        print("work", self.index, self.input)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.results = sorted((inp.idx, inp.item, inp.sq) for inp in inputs)
        self.next(self.end)

    @step
    def end(self):
        self.n = len(self.results)


if __name__ == "__main__":
    ForeachFlow()

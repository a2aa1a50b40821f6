"""Static branch + join using `inputs` and `merge_artifacts`."""

from metaflow import FlowSpec, step


class BranchJoinFlow(FlowSpec):
    @step
    def start(self):
        self.common = "shared"
        self.counter = 1
        self.next(self.a, self.b)

    @step
    def a(self):
        self.counter = 10
        self.only_a = "A"
        self.next(self.join)

    @step
    def b(self):
        self.counter = 20
        self.only_b = "B"
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(inp.counter for inp in inputs)
        self.from_a = inputs.a.only_a
        self.merge_artifacts(inputs, exclude=["counter"])
        print("total", self.total, "common", self.common)
        self.next(self.end)

    @step
    def end(self):
        self.summary = [self.total, self.common, self.only_a, self.only_b]


if __name__ == "__main__":
    BranchJoinFlow()

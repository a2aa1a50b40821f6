"""Static branches joined with inputs.<step> and merge_artifacts."""

from metaflow import FlowSpec, step


class BranchJoinFlow(FlowSpec):
    @step
    def start(self):
        self.common = "same"
        self.next(self.a, self.b)

    @step
    def a(self):
        self.x = 1
        self.only_a = "A"
        self.next(self.join)

    @step
    def b(self):
        self.x = 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.xs = sorted(i.x for i in inputs)
        self.from_a = inputs.a.x
        self.merge_artifacts(inputs, exclude=["x"])
        self.next(self.end)

    @step
    def end(self):
        print("end", self.xs, self.common, self.only_a)


if __name__ == "__main__":
    BranchJoinFlow()

"""A foreach inside a foreach."""

from metaflow import FlowSpec, step


class NestedForeachFlow(FlowSpec):
    @step
    def start(self):
        self.outer = [1, 2]
        self.next(self.mid, foreach="outer")

    @step
    def mid(self):
        self.o = self.input
        self.inner = ["x", "y", "z"]
        self.next(self.leaf, foreach="inner")

    @step
    def leaf(self):
        self.pair = (self.o, self.input)
        self.stack = self.foreach_stack()
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.pairs = [i.pair for i in inputs]
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.all_pairs = sorted(p for i in inputs for p in i.pairs)
        self.next(self.end)

    @step
    def end(self):
        print(len(self.all_pairs))


if __name__ == "__main__":
    NestedForeachFlow()

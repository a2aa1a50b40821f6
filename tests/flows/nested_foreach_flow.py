"""Nested foreach: outer over numbers, inner over letters; each inner task records
its ``foreach_stack()``."""

from metaflow import FlowSpec, step


class NestedForeachFlow(FlowSpec):
    @step
    def start(self):
        self.outer_items = [1, 2]
        self.next(self.outer, foreach="outer_items")

    @step
    def outer(self):
        self.o = self.input
        self.inner_items = ["x", "y", "z"]
        self.next(self.inner, foreach="inner_items")

    @step
    def inner(self):
        self.pair = f"{self.o}{self.input}"
        self.stack = self.foreach_stack()
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.pairs = sorted(inp.pair for inp in inputs)
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.all_pairs = sorted(p for inp in inputs for p in inp.pairs)
        self.next(self.end)

    @step
    def end(self):
        print("pairs", self.all_pairs)


if __name__ == "__main__":
    NestedForeachFlow()

from metaflow import FlowSpec, Parameter, current, step


class CustomEndsFlow(FlowSpec):
    """Start and end steps named by ``@step(start=True)`` / ``@step(end=True)``."""

    scale = Parameter("scale", default=2)

    @step(start=True)
    def begin(self):
        self.items = [1, 2, 3]
        self.seen = current.step_name
        self.next(self.middle, foreach="items")

    @step
    def middle(self):
        self.value = self.input * int(self.scale)
        print("middle", self.value)
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.total = sum(i.value for i in inputs)
        self.next(self.finish)

    @step(end=True)
    def finish(self):
        print("total", self.total)


if __name__ == "__main__":
    CustomEndsFlow()

"""A flow for the UI tests: a static split, a foreach with a retried task, logs with
markup and control characters, and an optional failure."""

from metaflow import FlowSpec, Parameter, current, retry, step


class UiFlow(FlowSpec):
    alpha = Parameter("alpha", default=0.5)
    label = Parameter("label", default="base")
    fail = Parameter("fail", default=False)

    @step
    def start(self):
        print("starting <b>bold</b> \x1b[31mred\x1b[0m")
        for i in range(4):
            print("progress", i)
        self.items = ["x", "y", "z"]
        self.html = "<script>alert(1)</script>"
        self.next(self.a, self.b)

    @step
    def a(self):
        self.part = "A"
        self.next(self.join)

    @step
    def b(self):
        self.part = "B"
        self.next(self.join)

    @step
    def join(self, inputs):
        self.parts = sorted(i.part for i in inputs)
        self.items = inputs.a.items
        self.next(self.fan)

    @step
    def fan(self):
        self.next(self.work, foreach="items")

    @retry(times=1)
    @step
    def work(self):
        if self.input == "y" and current.retry_count == 0:
            raise RuntimeError("first try of y fails")
        print("working on", self.input)
        self.result = self.input * 2
        self.next(self.collect)

    @step
    def collect(self, inputs):
        self.results = sorted(i.result for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        if self.fail:
            raise ValueError("asked to fail <i>now</i>")
        self.accuracy = 0.8 + self.alpha / 10
        self.score = len(self.label)
        print("done", self.accuracy)


if __name__ == "__main__":
    UiFlow()

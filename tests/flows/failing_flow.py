"""A step raises ValueError: the run fails."""

from metaflow import FlowSpec, step


class FailingFlow(FlowSpec):
    @step
    def start(self):
        self.before = "ok"
        self.next(self.explode)

    @step
    def explode(self):
        self.partial = 42
        print("about to fail")
        raise ValueError("deliberate failure 17")
        self.next(self.end)  # never reached; keeps the graph linear

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FailingFlow()

"""@catch(var='err') on a step that raises."""

from metaflow import FlowSpec, catch, step


class CatchFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.boom)

    @catch(var="err")
    @step
    def boom(self):
        self.before = 1
        raise KeyError("caught-key")
        self.next(self.end)  # never reached; keeps the graph linear

    @step
    def end(self):
        self.had_error = self.err is not None
        print("caught", type(self.err).__name__)


if __name__ == "__main__":
    CatchFlow()

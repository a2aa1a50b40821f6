import os

from metaflow import FlowSpec, step


class ResumeFlow(FlowSpec):
    @step
    def start(self):
        self.x = 1
        self.next(self.middle)

    @step
    def middle(self):
        if os.environ.get("RESUME_FLOW_FAIL"):
            raise ValueError("planned failure")
        self.y = self.x + 1
        self.next(self.end)

    @step
    def end(self):
        print("y is", self.y)


if __name__ == "__main__":
    ResumeFlow()

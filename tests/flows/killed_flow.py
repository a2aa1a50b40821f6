import os
import time

from metaflow import FlowSpec, step


class KilledFlow(FlowSpec):
    """Killed mid-flight: the start step says it runs (a marker file), then waits."""

    @step
    def start(self):
        self.before = 1
        marker = os.environ.get("KILLED_FLOW_MARKER")
        if marker:
            with open(marker, "w") as fh:
                fh.write("running")
            time.sleep(600)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    KilledFlow()

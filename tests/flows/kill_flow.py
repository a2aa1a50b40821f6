"""A flow whose middle step sleeps: the test kills its runtime with SIGKILL there."""

import os
import time

from metaflow import FlowSpec, step


class KillFlow(FlowSpec):
    @step
    def start(self):
        self.x = 1
        self.next(self.sleepy)

    @step
    def sleepy(self):
        print("sleeping now")
        marker = os.environ.get("KILL_FLOW_MARKER")
        if marker:
            open(marker, "w").close()
        time.sleep(120)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    KillFlow()

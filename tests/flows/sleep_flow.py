"""A long step, to interrupt the runtime."""

import time

from metaflow import FlowSpec, step


class SleepFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.nap)

    @step
    def nap(self):
        print("napping", flush=True)
        time.sleep(60)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SleepFlow()

"""start -> foreach work (3 tasks) -> join -> end, for the reliability tests: sleeps, a
self-kill and a big artifact on request (REL_SLEEP, REL_SELF_KILL=<step>, REL_BIG=<bytes>),
so that crash tests can hit a task, an artifact write or a commit."""

import os
import time

from metaflow import FlowSpec, step


def _pause(step_name):
    delay = float(os.environ.get("REL_SLEEP", "0") or 0)
    if delay:
        time.sleep(delay)
    if os.environ.get("REL_SELF_KILL") == step_name:
        os.kill(os.getpid(), 9)


class SmallFlow(FlowSpec):
    @step
    def start(self):
        _pause("start")
        self.items = [1, 2, 3]
        self.next(self.work, foreach="items")

    @step
    def work(self):
        _pause("work")
        self.sq = self.input * self.input
        big = int(os.environ.get("REL_BIG", "0") or 0)
        if big:
            self.blob = os.urandom(big)
        self.next(self.join)

    @step
    def join(self, inputs):
        _pause("join")
        self.total = sum(i.sq for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        _pause("end")
        self.done = True


if __name__ == "__main__":
    SmallFlow()

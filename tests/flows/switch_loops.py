"""Metaflow's switch steps: a switch at the start, a foreach inside one of its branches,
and a recursive switch (a loop) inside the foreach. Written for Metaflow; the parity test
runs it unchanged on Metaflow and with the import rewritten on mfstore."""

import os
import time

from metaflow import FlowSpec, Parameter, step


class SwitchLoopFlow(FlowSpec):
    """Switches and loops."""

    mode = Parameter("mode", default="process")

    @step
    def start(self):
        """Pick a branch by the mode parameter."""
        self.items = [{"id": "A", "n": 2}, {"id": "B", "n": 3}]
        self.route = self.mode
        self.next({"process": self.fan, "skip": self.skip}, condition="route")

    @step
    def fan(self):
        self.next(self.item, foreach="items")

    @step
    def item(self):
        self.item_id = self.input["id"]
        self.max_loops = self.input["n"]
        self.count = 0
        self.next(self.loop_body)

    @step
    def loop_body(self):
        """Runs once per iteration until count reaches max_loops."""
        self.count += 1
        if os.environ.get("SWITCH_FAIL") == self.item_id and self.count == 2:
            # fail only once the other item is done, so what a resume clones is the same
            # on every run (SWITCH_SYNC: a directory where exit_item leaves a marker)
            sync = os.environ.get("SWITCH_SYNC")
            deadline = time.time() + 120
            while sync and not os.listdir(sync) and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(1 if sync else 0)  # and, most often, has ended
            raise RuntimeError("failing on purpose")
        self.again = str(self.count < self.max_loops)
        self.next({"True": self.loop_body, "False": self.exit_item}, condition="again")

    @step
    def exit_item(self):
        self.result = f"{self.item_id}:{self.count}"
        if os.environ.get("SWITCH_SYNC"):
            open(os.path.join(os.environ["SWITCH_SYNC"], self.item_id), "w").close()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.results = sorted(i.result for i in inputs)
        self.next(self.end)

    @step
    def skip(self):
        self.results = []
        self.next(self.end)

    @step
    def end(self):
        print("results", self.results)


if __name__ == "__main__":
    SwitchLoopFlow()

"""A 20-task foreach, a branch, a @retry step and a @catch step (run locally or on Dask)."""

import os
import time

from metaflow import FlowSpec, Parameter, catch, current, retry, step


class Point:
    """A type defined in the flow file: its instances must load wherever the run is read."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


class DaskFlow(FlowSpec):
    n = Parameter("n", default=20, help="Foreach width")
    sleep = Parameter("sleep", default=0.0, help="Seconds each foreach task sleeps (not on resume)")

    @step
    def start(self):
        self.items = list(range(self.n))
        self.payload = {"blob": "x" * 5000, "nested": [1, 2, 3]}
        self.origin = Point(1, 2)
        self.next(self.left, self.right)

    @step
    def left(self):
        self.side = "left"
        self.next(self.join_sides)

    @step
    def right(self):
        self.side = "right"
        print("right sees", len(self.payload["blob"]))
        self.next(self.join_sides)

    @step
    def join_sides(self, inputs):
        self.sides = sorted(i.side for i in inputs)
        self.merge_artifacts(inputs, exclude=["side"])
        self.next(self.split)

    @step
    def split(self):
        self.next(self.fan, foreach="items")

    @retry(times=2)
    @step
    def fan(self):
        print("fan", self.input, "starting")
        if current.origin_run_id is None:  # a resumed run does not wait
            time.sleep(float(self.sleep))
        self.square = self.input * self.input
        self.point = Point(self.input, self.square)
        self.runner = os.getppid()  # the process that started this task
        print("fan", self.input, "done")
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.total = sum(i.square for i in inputs)
        self.points = [i.point for i in inputs]
        self.runners = sorted({i.runner for i in inputs})
        self.next(self.flaky)

    @retry(times=2)
    @step
    def flaky(self):
        print("flaky attempt", current.retry_count)
        if current.retry_count < 1:
            raise RuntimeError("flaky fails its first attempt")
        self.ok_at = current.retry_count
        self.next(self.risky)

    @catch(var="failure")
    @step
    def risky(self):
        self.before = "set before the failure"
        raise ValueError("risky always fails")
        self.next(self.end)

    @step
    def end(self):
        self.failure_type = type(self.failure.exception).__name__ if self.failure else None
        print("end: total", self.total, "failure", self.failure_type)


if __name__ == "__main__":
    DaskFlow()

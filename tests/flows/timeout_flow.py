import time

from metaflow import FlowSpec, Parameter, catch, step, timeout


class TimeoutFlow(FlowSpec):
    """@timeout firing: caught by @catch (the run goes on), and uncaught (the run fails)."""

    fail_hard = Parameter("fail_hard", default=0)

    @step
    def start(self):
        self.next(self.slow)

    @catch(var="timed_out")
    @timeout(seconds=2)
    @step
    def slow(self):
        print("slow starts")
        time.sleep(60)
        self.never = True
        self.next(self.hard)

    @timeout(seconds=2)
    @step
    def hard(self):
        print("hard starts")
        if int(self.fail_hard):
            time.sleep(60)
        self.next(self.end)

    @step
    def end(self):
        print("caught", type(self.timed_out).__name__)


if __name__ == "__main__":
    TimeoutFlow()

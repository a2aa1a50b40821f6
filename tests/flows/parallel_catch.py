import os
import signal

from metaflow import FlowSpec, catch, current, parallel, retry, step


class ParallelCatchFlow(FlowSpec):
    """Every task of a @parallel step dies; @catch's fallback attempt goes to the control task."""

    @step
    def start(self):
        self.next(self.work, num_parallel=3)

    @catch(var="ex", print_exception=False)
    @retry(times=1, minutes_between_retries=0)
    @parallel
    @step
    def work(self):
        self.node = current.parallel.node_index
        os.kill(os.getpid(), signal.SIGKILL)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.inputs = len(list(inputs))
        self.caught = [type(i.ex).__name__ for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ParallelCatchFlow()

"""@retry(times=2): the step fails on its first attempt, succeeds on the second."""

from metaflow import FlowSpec, current, retry, step


class RetryFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.flaky)

    @retry(times=2)
    @step
    def flaky(self):
        print("attempt", current.retry_count)
        self.attempt_seen = current.retry_count
        if current.retry_count == 0:
            raise RuntimeError("first attempt fails")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RetryFlow()

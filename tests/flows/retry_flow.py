"""@retry(times=2): the step fails on its first RETRY_FAILURES attempts (env var, default 1:
it succeeds on its first retry; 2: on its last allowed attempt)."""

import os

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
        if current.retry_count < int(os.environ.get("RETRY_FAILURES", "1")):
            raise RuntimeError("first attempt fails" if current.retry_count == 0 else "fails again")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RetryFlow()

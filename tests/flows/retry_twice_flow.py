"""@retry: fails on the first two attempts."""

from metaflow import FlowSpec, current, retry, step


class RetryFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.flaky)

    @retry(times=2)
    @step
    def flaky(self):
        print("attempt", current.retry_count)
        if current.retry_count < 2:
            raise RuntimeError(f"flaky {current.retry_count}")
        self.ok_at = current.retry_count
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RetryFlow()

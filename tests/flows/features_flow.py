import os
import time

from metaflow import FlowSpec, Parameter, card, current, project, retry, step, timeout


@project(name="mfext_demo")
class FeaturesFlow(FlowSpec):
    sleep = Parameter("sleep", default=0)

    @card
    @step
    def start(self):
        self.project = current.project_name
        self.branch = current.branch_name
        self.pathspec_seen = current.pathspec
        self.namespace_seen = current.namespace
        if self.sleep:
            time.sleep(int(self.sleep))
        self.next(self.flaky)

    @retry(times=1)
    @timeout(seconds=60)
    @step
    def flaky(self):
        self.attempt_seen = current.retry_count
        print("attempt", current.retry_count)
        if current.retry_count == 0:
            raise RuntimeError("first attempt fails")
        self.next(self.end)

    @step
    def end(self):
        self.token = os.environ.get("METAFLOW_PRODUCTION_TOKEN")


if __name__ == "__main__":
    FeaturesFlow()

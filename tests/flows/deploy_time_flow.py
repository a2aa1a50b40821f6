"""Parameter default functions of a deployed flow: Metaflow evaluates them when it deploys
(``deploy_time`` True, a value JSON-encoded); a plain ``run`` wants text."""

import os

from metaflow import FlowSpec, JSONType, Parameter, step


def settings(ctx, deploy_time):
    if deploy_time and os.environ.get("BREAK_DEPLOY"):
        raise RuntimeError("no settings to deploy")
    return {"k": 1, "deploy_time": deploy_time}


class DeployTimeFlow(FlowSpec):
    settings = Parameter("settings", type=JSONType, default=settings)

    @step
    def start(self):
        self.seen = self.settings
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DeployTimeFlow()

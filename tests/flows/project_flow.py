import os

from metaflow import FlowSpec, current, project, step


@project(name="mfext_diff")
class ProjectFlow(FlowSpec):
    """@project, run by a user and with METAFLOW_PRODUCTION_TOKEN."""

    @step
    def start(self):
        self.project = current.project_name
        self.branch = current.branch_name
        self.flow_ns = current.namespace
        self.token = os.environ.get("METAFLOW_PRODUCTION_TOKEN")
        self.next(self.end)

    @step
    def end(self):
        print("branch", self.branch)


if __name__ == "__main__":
    ProjectFlow()

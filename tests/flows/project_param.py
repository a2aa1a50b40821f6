"""A Parameter's default function reads ``current.project_name`` (Metaflow sets the
project before it parses the run's parameters)."""

from metaflow import FlowSpec, Parameter, current, project, step


def from_project(ctx):
    return f"{current.project_name}/{current.branch_name}"


@project(name="param_project")
class ProjectParamFlow(FlowSpec):
    where = Parameter("where", default=from_project)

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ProjectParamFlow()

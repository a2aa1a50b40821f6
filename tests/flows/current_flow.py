"""The seeds' CurrentFlow: prints every `current` field the seeds list."""

from metaflow import FlowSpec, current, step


class CurrentFlow(FlowSpec):
    @step
    def start(self):
        print(f"flow name: {current.flow_name}")
        print(f"run id: {current.run_id}")
        print(f"origin run id: {current.origin_run_id}")
        print(f"step name: {current.step_name}")
        print(f"task id: {current.task_id}")
        print(f"pathspec: {current.pathspec}")
        print(f"namespace: {current.namespace}")
        print(f"username: {current.username}")
        print(f"flow parameters: {current.parameter_names!s}")
        self.next(self.end)

    @step
    def end(self):
        print(f"end has a different step name: {current.step_name}")
        print(f"end has a different task id: {current.task_id}")
        print(f"end has a different pathspec: {current.pathspec}")
        print(f"origin run id: {current.origin_run_id}")


if __name__ == "__main__":
    CurrentFlow()

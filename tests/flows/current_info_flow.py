"""The seed's CurrentFlow."""

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
        self.info = {
            "flow_name": current.flow_name,
            "run_id": current.run_id,
            "step_name": current.step_name,
            "task_id": current.task_id,
            "pathspec": current.pathspec,
            "namespace": current.namespace,
            "username": current.username,
            "retry_count": current.retry_count,
            "tags": sorted(current.tags),
            "is_running_flow": current.is_running_flow,
            "origin_run_id": current.origin_run_id,
            "is_production": current.is_production,
        }
        from metaflow import get_namespace

        self.client_ns = get_namespace()
        self.next(self.end)

    @step
    def end(self):
        print(f"end has a different step name: {current.step_name}")
        print(f"end has a different task id: {current.task_id}")
        print(f"end has a different pathspec: {current.pathspec}")


if __name__ == "__main__":
    CurrentFlow()

"""The seed's CurrentFlow."""
from mfstore import FlowSpec, current, step


class CurrentFlow(FlowSpec):
    @step
    def start(self):
        print("flow name: %s" % current.flow_name)
        print("run id: %s" % current.run_id)
        print("origin run id: %s" % current.origin_run_id)
        print("step name: %s" % current.step_name)
        print("task id: %s" % current.task_id)
        print("pathspec: %s" % current.pathspec)
        print("namespace: %s" % current.namespace)
        print("username: %s" % current.username)
        print("flow parameters: %s" % str(current.parameter_names))
        self.info = {
            "flow_name": current.flow_name, "run_id": current.run_id, "step_name": current.step_name,
            "task_id": current.task_id, "pathspec": current.pathspec, "namespace": current.namespace,
            "username": current.username, "retry_count": current.retry_count, "tags": sorted(current.tags),
            "is_running_flow": current.is_running_flow, "origin_run_id": current.origin_run_id,
            "is_production": current.is_production,
        }
        from mfstore import get_namespace

        self.client_ns = get_namespace()
        self.next(self.end)

    @step
    def end(self):
        print("end has a different step name: %s" % current.step_name)
        print("end has a different task id: %s" % current.task_id)
        print("end has a different pathspec: %s" % current.pathspec)


if __name__ == "__main__":
    CurrentFlow()

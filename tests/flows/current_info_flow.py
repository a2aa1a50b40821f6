"""Records ``current``'s fields in the start step as an artifact (``info``), and the Client's
namespace inside the task (``client_ns``: what ``--namespace`` set). The console output of
``current`` is current_flow.py's (the flow the differential harnesses compare); this one is
mfstore's alone: its artifacts hold the run id, which differs between the two systems."""

from metaflow import FlowSpec, current, get_namespace, step


class CurrentInfoFlow(FlowSpec):
    @step
    def start(self):
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
        self.client_ns = get_namespace()
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CurrentInfoFlow()

"""The seed's AccessOtherNamespace flow: reads another flow's result inside a step."""

from metaflow import Flow, FlowSpec, Parameter, default_namespace, namespace, step


def get_flow_data(flow, new_ns, original_ns=None):
    original_ns = default_namespace() if original_ns is None else original_ns
    namespace(new_ns)
    run = Flow(flow).latest_successful_run
    namespace(original_ns)
    return run


class AccessOtherNamespace(FlowSpec):
    other_flow_name = Parameter("other-flow-name", default="TeamCollabFlow")
    other_namespace = Parameter("other-namespace", default="user:bob")
    msg = "{} has value {}."

    @step
    def start(self):
        run = get_flow_data(flow=self.other_flow_name, new_ns=self.other_namespace)
        if run is None:
            print(f"Flow {self.other_flow_name} not found in {self.other_namespace} namespace.")
        else:
            self.other_choice = run.data.choice
            print(self.msg.format(run.pathspec, run.data.choice))
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    AccessOtherNamespace()

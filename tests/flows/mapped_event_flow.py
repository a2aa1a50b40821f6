from metaflow import FlowSpec, Parameter, step, trigger


@trigger(events=[{"name": "data_ready", "parameters": {"which": "table"}}, "nightly"])
class MappedEventFlow(FlowSpec):
    which = Parameter("which", default="none")

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MappedEventFlow()

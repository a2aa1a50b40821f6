from metaflow import FlowSpec, kubernetes, step


class RemoteFlow(FlowSpec):
    @kubernetes(cpu=2)
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RemoteFlow()

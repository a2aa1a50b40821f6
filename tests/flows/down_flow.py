from metaflow import FlowSpec, current, step, trigger_on_finish


@trigger_on_finish(flow="UpFlow")
class DownFlow(FlowSpec):
    @step
    def start(self):
        trig = current.trigger
        self.upstream = trig.run.pathspec if trig else None
        self.model = trig.run.data.model if trig else None
        self.ns = current.namespace
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    DownFlow()

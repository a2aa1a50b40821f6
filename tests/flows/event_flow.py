from metaflow import FlowSpec, Parameter, current, step, trigger


@trigger(event="data_ready")
class EventFlow(FlowSpec):
    table = Parameter("table", default="none")

    @step
    def start(self):
        event = current.trigger.event if current.trigger else None
        self.event_name = event.name if event else None
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    EventFlow()

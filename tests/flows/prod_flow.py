from metaflow import FlowSpec, Parameter, current, step

VERSION = "v1"


class ProdFlow(FlowSpec):
    alpha = Parameter("alpha", default="1")

    @step
    def start(self):
        self.version = VERSION
        self.ns = current.namespace
        self.is_prod = current.is_production
        self.has_trigger = current.trigger is not None
        self.next(self.end)

    @step
    def end(self):
        print("alpha", self.alpha, self.version, self.ns)


if __name__ == "__main__":
    ProdFlow()

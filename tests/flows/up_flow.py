from metaflow import FlowSpec, Parameter, step


class UpFlow(FlowSpec):
    fail = Parameter("fail", default="no")

    @step
    def start(self):
        if self.fail == "yes":
            raise ValueError("upstream failed on purpose")
        self.model = "m1"
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    UpFlow()

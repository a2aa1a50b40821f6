from mfstore import FlowSpec, step


class UpFlow(FlowSpec):
    @step
    def start(self):
        self.model = "m1"
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    UpFlow()

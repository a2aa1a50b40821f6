from metaflow import FlowSpec, current, step


class FlakyFlow(FlowSpec):
    @step
    def start(self):
        if current.retry_count == 0:
            raise ValueError("first attempt fails")
        print("second attempt")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FlakyFlow()

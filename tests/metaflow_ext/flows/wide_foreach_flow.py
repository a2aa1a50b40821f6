from metaflow import FlowSpec, step


class WideForeachFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range(50))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        self.sq = self.input * self.input
        print("work", self.input)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.sq for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("total", self.total)


if __name__ == "__main__":
    WideForeachFlow()

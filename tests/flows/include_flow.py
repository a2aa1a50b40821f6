from metaflow import FlowSpec, IncludeFile, step


class IncludeFlow(FlowSpec):
    text = IncludeFile("text", default="data.txt")
    blob = IncludeFile("blob", is_text=False, default="data.bin")

    @step
    def start(self):
        self.n = len(self.blob)
        self.next(self.end)

    @step
    def end(self):
        print(self.text.strip(), self.n)


if __name__ == "__main__":
    IncludeFlow()

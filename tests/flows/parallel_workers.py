from metaflow import FlowSpec, current, parallel, step


class ParallelWorkersFlow(FlowSpec):
    """@parallel workers that return without self.next(): only the control task's counts."""

    @step
    def start(self):
        self.next(self.work, num_parallel=3)

    @parallel
    @step
    def work(self):
        self.node = current.parallel.node_index
        self.nodes = current.parallel.num_nodes
        if self.node != 0:
            return
        self.next(self.join)

    @step
    def join(self, inputs):
        self.seen = sorted(i.node for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ParallelWorkersFlow()

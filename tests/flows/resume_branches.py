"""Two branches of different lengths (``a``; ``b`` then ``b2``): ``resume a`` clones
start, b and b2 and runs a, join and end again (the resume step-order test)."""

from metaflow import FlowSpec, current, step


class ResumeBranchesFlow(FlowSpec):
    @step
    def start(self):
        self.trail = [current.step_name]
        self.next(self.a, self.b)

    @step
    def a(self):
        self.trail += [current.step_name, current.origin_run_id]
        self.next(self.join)

    @step
    def b(self):
        self.trail.append(current.step_name)
        self.next(self.b2)

    @step
    def b2(self):
        self.trail = [*self.trail, current.step_name]
        self.next(self.join)

    @step
    def join(self, inputs):
        self.trails = sorted(tuple(i.trail) for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        assert len(self.trails) == 2, self.trails


if __name__ == "__main__":
    ResumeBranchesFlow()

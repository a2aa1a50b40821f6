"""A step that dies of SIGSEGV (Metaflow's DetectSegFaultTest): Metaflow says so."""

from metaflow import FlowSpec, step


class SegFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        import ctypes

        print("Crash and burn!")
        ctypes.string_at(0)


if __name__ == "__main__":
    SegFlow()

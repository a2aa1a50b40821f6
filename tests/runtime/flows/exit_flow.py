"""A task calls os._exit: only that task fails."""
import os
import sys

from mfstore import FlowSpec, step


class ExitFlow(FlowSpec):
    @step
    def start(self):
        print("going down")
        sys.stdout.flush()
        os._exit(3)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ExitFlow()

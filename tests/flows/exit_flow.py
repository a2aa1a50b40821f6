"""A task calls os._exit (or is killed, EXIT_MODE=kill): only that task fails."""

import os
import signal
import sys

from metaflow import FlowSpec, step


class ExitFlow(FlowSpec):
    @step
    def start(self):
        print("going down")
        sys.stdout.flush()
        if os.environ.get("EXIT_MODE") == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(3)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ExitFlow()

"""@catch on a step whose process dies: the fallback attempt hands the failure to @catch."""

import os

from metaflow import FlowSpec, catch, step


class CatchCrashFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.crash)

    @catch(var="err")
    @step
    def crash(self):
        os._exit(1)
        self.next(self.end)

    @step
    def end(self):
        print("err type", self.err.type)


if __name__ == "__main__":
    CatchCrashFlow()

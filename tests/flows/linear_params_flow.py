"""Linear flow with Parameters of several types (one required with a default); prints to
stdout and stderr: the parameters scenario of the differential harnesses (several users
and tags). The command line's parsing of every Parameter kind is parameter_kinds_flow.py."""

import sys

from metaflow import FlowSpec, Parameter, step


class LinearParamsFlow(FlowSpec):
    alpha = Parameter("alpha", help="an int", default=3)
    name_ = Parameter("label", help="a str", default="hello")
    ratio = Parameter("ratio", help="a float", default=0.5)
    needed = Parameter("needed", help="required but defaulted", required=True, default="dflt")

    @step
    def start(self):
        print(
            f"alpha={self.alpha!r} label={self.name_!r} ratio={self.ratio!r} needed={self.needed!r}"
        )
        print("to stderr", file=sys.stderr)
        self.x = self.alpha * 2
        self.next(self.middle)

    @step
    def middle(self):
        print("line one")
        print("line two")
        self.y = self.x + 1
        self.next(self.end)

    @step
    def end(self):
        self.result = f"{self.name_}:{self.y}:{self.ratio}"
        print("result", self.result)


if __name__ == "__main__":
    LinearParamsFlow()

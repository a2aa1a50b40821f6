"""The kinds of Parameter the flow command line parses: a float and an int default, a
required one without default, JSONType, a dashed name (``--other-name``), and a class
attribute that is not a Parameter; ``current.parameter_names``; an artifact carried across
steps. (``linear_params_flow.py`` is the flow the differential harnesses run.)"""

from metaflow import FlowSpec, JSONType, Parameter, current, step


class ParameterKindsFlow(FlowSpec):
    alpha = Parameter("alpha", help="Learning rate", default=0.5)
    count = Parameter("count", default=3)
    label = Parameter("label", required=True)
    config = Parameter("config", type=JSONType, default='{"k": 1}')
    other_name = Parameter("other-name", default="x")
    greeting = "hello"

    @step
    def start(self):
        self.seen = [self.alpha, self.count, self.label, self.config, self.other_name]
        print("params", current.parameter_names)
        self.next(self.middle)

    @step
    def middle(self):
        self.doubled = self.count * 2
        print("carried", self.seen)
        self.next(self.end)

    @step
    def end(self):
        self.total = self.doubled + len(self.seen)
        print("greeting", self.greeting)


if __name__ == "__main__":
    ParameterKindsFlow()

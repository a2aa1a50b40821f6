"""Config parsers and plain configs: a parser named by a string (a module's function, or
one of Metaflow's own with a leading "."), applied to every text of a config (a file, a
given value, a default value; a dict default reaches it as JSON); ``plain=True`` gives
the parser's value as is, or the text itself without a parser; default functions (of a
value, of a file) are called with a ParameterContext."""

from metaflow import Config, FlowSpec, step

NAMES = ("toml", "reqs", "up", "items", "raw", "made", "made_file")


def upper_parser(text):
    return {"up": text.strip().upper()}


def csv_parser(text):
    return text.strip().split(",")


def seen(flow):
    return {n: [type(getattr(flow, n)).__name__, getattr(flow, n)] for n in NAMES}


class ConfigParserFlow(FlowSpec):
    toml = Config("toml", default_value='a = 1\n[b]\nc = "x"\n', parser="tomllib.loads")
    reqs = Config(
        "reqs", default="reqs.txt", parser=".plugins.pypi.parsers.requirements_txt_parser"
    )
    up = Config("up", default_value={"k": 1}, parser=upper_parser)
    items = Config("items", default_value="x,y", parser=csv_parser, plain=True)
    raw = Config("raw", default_value={"r": 2}, plain=True)
    made = Config(
        "made",
        default_value=lambda ctx: {
            "flow": ctx.flow_name,
            "param": ctx.parameter_name,
            "user": ctx.user_name,
            "configs": ctx.configs,
        },
    )
    made_file = Config("made_file", default=lambda ctx: "given.toml", parser="tomllib.loads")

    @step
    def start(self):
        self.in_start = seen(self)
        self.next(self.end)

    @step
    def end(self):
        self.in_end = seen(self)


if __name__ == "__main__":
    ConfigParserFlow()

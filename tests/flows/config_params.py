"""Parameters whose defaults are Config values: typed as the value, a dict as a plain
(mutable) dict, split by ``separator``, missing when required and the value is None."""

from metaflow import Config, FlowSpec, Parameter, step


class ConfigParamsFlow(FlowSpec):
    cfg = Config("cfg", default_value={"s": "a,b", "d": {"x": 1}, "i": 4, "z": None})

    words = Parameter("words", default=cfg.s, separator=",")
    table = Parameter("table", default=cfg.d)
    count = Parameter("count", default=cfg.i)
    needed = Parameter("needed", default=cfg.z, required=True)

    @step
    def start(self):
        table = self.table
        table["y"] = 2  # a plain dict, as Metaflow gives
        self.values = [self.words, table, self.count, self.needed]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ConfigParamsFlow()

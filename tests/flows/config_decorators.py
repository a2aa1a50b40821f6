"""Configs used where the flow class is defined: in flow and step decorator arguments
(``cfg.key``, ``config_expr(...)``, ``**cfg``), in Parameter defaults and as switch keys.
Written for Metaflow; the parity test runs it unchanged on Metaflow and with the import
rewritten on mfstore."""

import os

from metaflow import (
    Config,
    FlowSpec,
    Parameter,
    config_expr,
    current,
    environment,
    project,
    retry,
    step,
)


def from_context(ctx):
    return ctx.configs.cfg.value + 1


def shout(text):
    return text.upper()


@project(name=config_expr("cfg").project)
class ConfigDecoFlow(FlowSpec):
    """Decorators configured by Configs."""

    cfg = Config(
        "cfg",
        default_value={
            "project": "cfg_proj",
            "value": 42,
            "word": "hello",
            "route": "b",
            "text": "7",
        },
    )
    # "note" is no attribute of @environment: **extra passes it on as it is
    extra = Config(
        "extra",
        default_value={"vars": {"EXTRA": "default"}, "note": "kept"},
        help="More environment variables for b.",
    )

    from_cfg = Parameter("from_cfg", default=config_expr("cfg").value, type=int)
    from_func = Parameter("from_func", default=from_context, type=int)
    inferred = Parameter("inferred", default=config_expr("cfg").value)  # its type: int
    from_text = Parameter("from_text", default=config_expr("cfg").text, type=int)

    @environment(vars={"NORMAL": cfg.word, "EXPR": config_expr("shout(cfg.word)")})
    @step
    def start(self):
        self.normal = os.environ.get("NORMAL")
        self.expr = os.environ.get("EXPR")
        self.project = current.project_name
        self.params = [self.from_cfg, self.from_func, self.inferred, self.from_text]
        self.pick = self.cfg.route
        self.next({"a": self.a, self.cfg.route: self.b}, condition="pick")

    @step
    def a(self):
        self.path = "a"
        self.next(self.end)

    @environment(**extra)
    @retry(times=config_expr("cfg.value // 21"))
    @step
    def b(self):
        self.path = "b"
        self.extra_env = os.environ.get("EXTRA")
        self.next(self.end)

    @step
    def end(self):
        self.values = [self.cfg.value, self.extra.to_dict()]


if __name__ == "__main__":
    ConfigDecoFlow()

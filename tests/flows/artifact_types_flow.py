"""A 5 MiB deterministic artifact stored twice (dedup) and artifacts of many types."""

from metaflow import FlowSpec, step


class Point:
    def __init__(self, x, y):
        self.x = x
        self.y = y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


def big_blob():
    chunk = bytes(range(256))
    return chunk * (5 * 1024 * 1024 // 256)


class ArtifactTypesFlow(FlowSpec):
    @step
    def start(self):
        self.big1 = big_blob()
        self.big2 = big_blob()
        self.v_none = None
        self.v_bool = True
        self.v_int = 42
        self.v_float = 3.25
        self.v_str = "héllo"
        self.v_list = [1, "two", 3.0]
        self.v_dict = {"k": [1, 2], "z": None}
        self.v_tuple = (1, "a")
        self.v_set = {3, 1, 2}
        self.v_point = Point(1, 2)
        self.next(self.end)

    @step
    def end(self):
        self.same_big = self.big1 == self.big2
        self.big_len = len(self.big1)


if __name__ == "__main__":
    ArtifactTypesFlow()

"""The seeds' TeamCollabFlow, with a deterministic random choice."""

from metaflow import FlowSpec, current, step


class TeamCollabFlow(FlowSpec):
    @step
    def start(self):
        print(f"current.username: {current.username}")
        print(f"current.namespace: {current.namespace}")
        self.next(self.end)

    @step
    def end(self):
        import random

        random.seed(0)
        self.choice = random.choice([1, 2, 3, 4, 5])
        print(f"Random choice was {self.choice}")


if __name__ == "__main__":
    TeamCollabFlow()

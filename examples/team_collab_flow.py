"""The seeds' TeamCollabFlow: only the import line differs from Metaflow.

The tests run this very file (under real Metaflow too: tests/flowfiles.py rewrites the import)."""

from mfstore import FlowSpec, current, step


class TeamCollabFlow(FlowSpec):
    @step
    def start(self):
        print(f"current.username: {current.username}")
        print(f"current.namespace: {current.namespace}")
        self.next(self.end)

    @step
    def end(self):
        import random

        self.choice = random.choice([1, 2, 3, 4, 5])
        print(f"Random choice was {self.choice}")


if __name__ == "__main__":
    TeamCollabFlow()

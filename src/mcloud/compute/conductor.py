"""Stand-in (CONDUCTOR replaces it): the durable tasks that build servers and run their actions."""

from __future__ import annotations

from typing import Any


class Conductor:
    def __init__(self, compute: Any):
        self.compute = compute

    def register(self, tasks: Any) -> None:
        pass

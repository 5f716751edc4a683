"""Stand-in: the durable tasks that drive the backends (BACKENDS replaces this module)."""

from __future__ import annotations

from typing import Any


class Manager:
    def __init__(self, volume: Any):
        self.volume = volume

    def register(self, tasks: Any) -> None:
        pass

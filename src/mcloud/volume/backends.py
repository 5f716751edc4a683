"""Stand-in: the backends, capacity accounting and the scheduler (BACKENDS replaces this module)."""

from __future__ import annotations

from typing import Any


class Backends:
    def __init__(self, volume: Any):
        self.volume = volume

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

"""Stand-in (AGENT replaces it): the compute hosts' registry and the local host's agent."""

from __future__ import annotations

from typing import Any


class Hosts:
    def __init__(self, compute: Any):
        self.compute = compute

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

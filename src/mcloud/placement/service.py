"""The placement service's logic: resource providers, inventories, allocations, candidates."""

from __future__ import annotations

from mcloud.core.db import Database
from mcloud.placement.config import PlacementConfig


class PlacementService:
    def __init__(self, db: Database, config: PlacementConfig):
        self.db = db
        self.config = config

    async def close(self) -> None:
        pass

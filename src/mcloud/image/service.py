"""The image service's logic: images, their data, sharing, import, and the stores."""

from __future__ import annotations

from pathlib import Path

from mcloud.core.db import Database
from mcloud.identity.service import IdentityService
from mcloud.image.config import ImageConfig


class ImageService:
    def __init__(self, db: Database, config: ImageConfig, data_dir: Path, identity: IdentityService):
        self.db = db
        self.config = config
        self.data_dir = data_dir
        self.identity = identity

    async def close(self) -> None:
        pass

"""The network service's logic: the Neutron resources, IPAM, and the data-plane driver."""

from __future__ import annotations

from pathlib import Path

from mcloud.core.db import Database
from mcloud.identity.service import IdentityService
from mcloud.network.config import NetworkConfig


class NetworkService:
    def __init__(self, db: Database, config: NetworkConfig, data_dir: Path, identity: IdentityService):
        self.db = db
        self.config = config
        self.data_dir = data_dir
        self.identity = identity

    async def close(self) -> None:
        pass

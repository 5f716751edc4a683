"""The compute service: the internal API the routes (and other services) call, and the composition
of its parts: resources (flavors, keypairs, groups, aggregates, quotas), hosts (the registry and the
local host's agent), the scheduler and the conductor (the durable tasks that drive hosts)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcloud.compute.config import ComputeConfig
from mcloud.core.db import Database
from mcloud.core.tasks import TaskQueue


class ComputeService:
    def __init__(self, db: Database, config: ComputeConfig, data_dir: Path, identity: Any, image: Any,
                 placement: Any, network: Any):
        from mcloud.compute.conductor import Conductor
        from mcloud.compute.hosts import Hosts
        from mcloud.compute.scheduler import Scheduler
        from mcloud.compute.service_resources import ResourcesService

        self.db = db
        self.config = config
        self.data_dir = data_dir
        self.identity = identity
        self.image = image
        self.placement = placement
        self.network = network
        self.tasks = TaskQueue(db)
        self.resources = ResourcesService(self)
        self.hosts = Hosts(self)
        self.scheduler = Scheduler(self)
        self.conductor = Conductor(self)
        self._started = False

    async def start(self) -> None:
        """Start the task worker and the local host (once per process, with the first request)."""
        if self._started:
            return
        self._started = True
        self.conductor.register(self.tasks)
        self.tasks.start()
        await self.hosts.start()

    async def close(self) -> None:
        await self.hosts.close()
        await self.tasks.stop()

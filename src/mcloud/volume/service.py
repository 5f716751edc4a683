"""The volume service: the internal API the routes (and compute) call, and the composition of its
parts: volumes, snapshots and attachments; types, QoS, quotas and messages; the backends with
their scheduler and the manager (the durable tasks that drive them); backups and transfers.

Also what every part shares: :class:`Caller` (who asks, from a token or for internal work).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from mcloud.core import caller as core_caller
from mcloud.core.db import Database
from mcloud.core.microversions import Version
from mcloud.core.tasks import TaskQueue
from mcloud.volume.config import VolumeConfig

MIN_VERSION = Version(3, 0)


@dataclasses.dataclass(frozen=True)
class Caller(core_caller.Caller):
    """Who asks the volume service: from a token (``api.caller_of``) or internal work
    (``Caller.internal()``: admin, no policy; compute uses it for its own calls). The API builds it
    with ``mcloud.core.caller.caller_from_context(Caller, ...)``."""

    version: Version = MIN_VERSION


class VolumeService:
    def __init__(self, db: Database, config: VolumeConfig, data_dir: Path, identity: Any, image: Any,
                 placement: Any):
        from mcloud.volume.backends import Backends
        from mcloud.volume.manager import Manager
        from mcloud.volume.service_attachments import Attachments
        from mcloud.volume.service_backups import Backups
        from mcloud.volume.service_groups import Groups
        from mcloud.volume.service_messages import Messages
        from mcloud.volume.service_quotas import Quotas
        from mcloud.volume.service_snapshots import Snapshots
        from mcloud.volume.service_transfers import Transfers
        from mcloud.volume.service_types import Types
        from mcloud.volume.service_volumes import Volumes

        self.db = db
        self.config = config
        self.data_dir = data_dir
        self.identity = identity
        self.image = image
        self.placement = placement
        self.tasks = TaskQueue(db)
        self.backends = Backends(self)
        self.manager = Manager(self)
        self.volumes = Volumes(self)
        self.snapshots = Snapshots(self)
        self.attachments = Attachments(self)
        self.types = Types(self)
        self.quotas = Quotas(self)
        self.messages = Messages(self)
        self.backups = Backups(self)
        self.transfers = Transfers(self)
        self.groups = Groups(self)
        self._started = False

    async def start(self) -> None:
        """Start the backends and the task worker (once per process, with the first request)."""
        if self._started:
            return
        self._started = True
        await self.backends.start()
        self.manager.register(self.tasks)
        self.backups.register(self.tasks)
        self.groups.register(self.tasks)
        self.tasks.start()

    async def close(self) -> None:
        await self.tasks.stop()
        await self.backups.close()
        await self.backends.close()

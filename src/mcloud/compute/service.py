"""The compute service: the internal API the routes (and other services) call, and the composition
of its parts: resources (flavors, keypairs, groups, aggregates, quotas), hosts (the registry and the
local host's agent), the scheduler and the conductor (the durable tasks that drive hosts).

Also what every part shares: :class:`Caller` (who asks, from a token or for internal work),
:meth:`ComputeService.record_fault` (the fault a server in ERROR shows) and
:meth:`ComputeService.action_event` (the events of os-instance-actions).
"""

from __future__ import annotations

import dataclasses
import traceback as tb
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.compute import models as m
from mcloud.compute.config import ComputeConfig
from mcloud.core import caller as core_caller
from mcloud.core.db import Database
from mcloud.core.errors import Forbidden
from mcloud.core.microversions import Version
from mcloud.core.policy import Enforcer, flatten
from mcloud.core.tasks import TaskQueue

MIN_VERSION = Version(2, 1)


@dataclasses.dataclass(frozen=True)
class Caller(core_caller.Caller):
    """Who asks the compute service: from a token (``api.caller_of``) or internal work
    (``Caller.internal()``: admin, no policy). Every part of compute takes one.

    ``version`` is the request's negotiated microversion (2.1 for internal calls); ``policy`` the
    compute namespace of the enforcer (None: internal, everything allowed).
    """

    version: Version = MIN_VERSION

    def network_caller(self) -> Any:
        """This caller as the network service sees it (its policy namespace, its project)."""
        from mcloud.network.service import Caller as NetworkCaller  # noqa: PLC0415

        if self.policy is None or self.root_policy is None:
            return NetworkCaller(self.project_id, True, None)
        policy = self.root_policy.scoped("network")
        creds = dict(self.creds)

        def check(rule: str, target: dict[str, Any]) -> bool:
            if policy.rule(rule) is None:
                return policy.check("network_admin_or_owner", creds, flatten(target))
            try:
                policy.authorize(rule, creds, target)
            except Forbidden:
                return False
            return True

        return NetworkCaller(self.project_id, policy.check("context_is_admin", creds, {}), check)

    def image_caller(self) -> Any:
        from mcloud.image.service import Caller as ImageCaller  # noqa: PLC0415

        return ImageCaller(self.project_id, self.is_admin)


def caller_from_context(ctx: Any, policy: Enforcer, root_policy: Enforcer, version: Version,
                        request_id: str) -> Caller:
    """A :class:`Caller` from core's ``AuthContext`` (the token's user, scope and roles)."""
    return core_caller.caller_from_context(Caller, ctx, policy, root_policy, version, request_id)


class ComputeService:
    def __init__(self, db: Database, config: ComputeConfig, data_dir: Path, identity: Any, image: Any,
                 placement: Any, network: Any, volume: Any = None):
        from mcloud.compute.conductor import Conductor
        from mcloud.compute.hosts import Hosts
        from mcloud.compute.scheduler import Scheduler
        from mcloud.compute.service_resources import ResourcesService
        from mcloud.compute.service_servers import Servers

        self.db = db
        self.config = config
        self.data_dir = data_dir
        self.identity = identity
        self.image = image
        self.placement = placement
        self.network = network
        self.volume = volume  # mcloud.volume.service.VolumeService (None: no block storage)
        self.tasks = TaskQueue(db)
        self.resources = ResourcesService(self)
        self.hosts = Hosts(self)
        self.scheduler = Scheduler(self)
        self.conductor = Conductor(self)
        self.servers = Servers(self)
        self._started = False

    async def start(self) -> None:
        """Start the task worker and the local host (once per process, with the first request)."""
        if self._started:
            return
        self._started = True
        if self.volume is not None:  # the conductor's volume work calls its backends in-process
            await self.volume.start()
        self.conductor.register(self.tasks)
        self.tasks.start()
        await self.hosts.start()

    async def close(self) -> None:
        await self.hosts.close()
        await self.tasks.stop()

    # ------------------------------------------------------------------ shared with every part

    async def record_fault(self, session: AsyncSession, instance: m.Instance | str, exc_or_message: Any,
                           code: int = 500, host: str | None = None) -> m.InstanceFault:
        """Record the fault a server in ERROR shows (``fault``: code, message, details, created).

        An exception gives its message (its class name when it has none) and its traceback as
        the details, as Nova's ``add_instance_fault_from_exc`` does; a string is the message."""
        uuid = instance if isinstance(instance, str) else instance.uuid
        if isinstance(exc_or_message, BaseException):
            message = str(getattr(exc_or_message, "message", "") or exc_or_message) or type(exc_or_message).__name__
            code = int(getattr(exc_or_message, "status", code) or code)
            details = "".join(tb.format_exception(exc_or_message)) if exc_or_message.__traceback__ else ""
        else:
            message, details = str(exc_or_message), ""
        fault = m.InstanceFault(instance_uuid=uuid, code=code, message=message[:255], details=details, host=host)
        session.add(fault)
        await session.flush()
        return fault

    async def action_event(self, session: AsyncSession, instance_uuid: str, request_id: str, event: str,
                           result: str | None = None, host: str | None = None,
                           traceback: str | None = None) -> m.InstanceActionEvent | None:
        """Start (``result`` None) or finish (``result`` "Success"/"Error") event ``event`` of the
        action that request ``request_id`` made on the instance. A failed event marks its action's
        message "Error", as Nova does. None when no such action exists."""
        action = (await session.execute(
            sa.select(m.InstanceAction).where(m.InstanceAction.instance_uuid == instance_uuid,
                                              m.InstanceAction.request_id == request_id)
            .order_by(m.InstanceAction.id.desc()).limit(1))).scalar()
        if action is None:
            return None
        now = m.now()
        row = None
        if result is not None:
            row = (await session.execute(
                sa.select(m.InstanceActionEvent).where(m.InstanceActionEvent.action_id == action.id,
                                                       m.InstanceActionEvent.event == event,
                                                       m.InstanceActionEvent.finish_time.is_(None))
                .order_by(m.InstanceActionEvent.id.desc()).limit(1))).scalar()
        if row is None:
            row = m.InstanceActionEvent(action_id=action.id, event=event, host=host, start_time=now)
            session.add(row)
        if result is not None:
            row.result = result
            row.finish_time = now
            if traceback:
                row.traceback = traceback
            if host:
                row.host = host
            if result.lower() == "error":
                action.message = "Error"
        action.updated_at = now
        await session.flush()
        return row


def utc(dt: datetime | None) -> str | None:
    """Nova's timestamps: ``2012-08-20T21:11:09Z``."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None

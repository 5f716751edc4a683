"""The compute hosts: their registry (os-services, os-hypervisors, Placement providers,
heartbeats), the operations the controller sends them, and this process's own hosts.

**Registry.** A host registers with what its hypervisor driver offers (:class:`HostInfo`): a
``nova-compute`` service row, a hypervisor node row, and a Placement resource provider (uuid =
the node's, name = the hypervisor hostname) with inventory (VCPU, MEMORY_MB, DISK_GB with the
configured allocation ratios and reserved amounts) and traits (the driver's, ``COMPUTE_NODE``).
A host is up while its last heartbeat is younger than ``service_down_time`` and it is not forced
down (Nova's database servicegroup driver). The controller's own ``nova-scheduler`` and
``nova-conductor`` services are rows too, as ``openstack compute service list`` shows them.

**Host operations** (seam 4 of the compute contract): :meth:`Hosts.send` writes a row in
``compute_host_op`` inside the caller's write transaction and wakes the host when that
transaction commits; the host's agent (``agent.py``) pulls its rows, runs them through its driver
and reports the result (:meth:`Hosts.complete`); :meth:`Hosts.wait` returns the result or raises
:class:`HostOpFailed` / :class:`HostTimeout`. A waiter in the process that records the result
is woken at once; one in another process sees the row within ``_POLL`` seconds.

**This process's hosts**: with ``[compute] local_host`` (``mcloud up``), :meth:`Hosts.start` runs
the local host's agent in-process (``LocalTransport``: no HTTP, woken at once), or N simulated
hosts with the fake driver's ``hosts = N``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import socket
import uuid as uuidlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.compute import configdrive
from mcloud.compute.drivers.base import HostInfo, boot_image_ids
from mcloud.compute.models_hosts import ComputeNode, ComputeServiceRow, HostOp, now
from mcloud.core.errors import BadRequest, Conflict, NotFound

log = logging.getLogger("mcloud.compute.hosts")

COMPUTE = "nova-compute"
CONTROLLER_BINARIES = ("nova-scheduler", "nova-conductor")
#: how often a waiter in another process than the host's reporter looks at the op's row
_POLL = 0.5
#: ops kept after they finish (results are read by their waiters, then only for debugging)
_KEEP = timedelta(hours=1)

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"


class HostOpFailed(RuntimeError):
    """The host ran the operation and its driver failed; the message is the driver's."""


class BootImageNotFound(LookupError):
    """A kernel or ramdisk image an image boots with is not in the image service."""


def missing_boot_images(image: dict[str, Any] | None) -> None:
    """Raise :class:`BootImageNotFound` (Nova's ImageNotFound text) when the kernel or ramdisk of
    an image payload (``HostRegistry.image_payload``) is missing: a build cannot boot without."""
    for part in ("kernel", "ramdisk"):
        boot_file = (image or {}).get(part)
        if boot_file and boot_file.get("missing"):
            raise BootImageNotFound(f"Image {boot_file['id']} could not be found.")


class HostTimeout(TimeoutError):
    """The host did not answer in time (it may be down, or the operation is still running)."""


@dataclasses.dataclass(frozen=True)
class HostState:
    """What the scheduler's ComputeFilter needs to know about one compute host."""

    host: str
    up: bool
    enabled: bool
    forced_down: bool
    az: str
    provider_uuid: str
    node: str  # the hypervisor hostname
    disabled_reason: str | None = None


def default_host_name(configured: str) -> str:
    return configured or socket.gethostname()


def image_ceph_conf(image_config: Any) -> str | None:
    """The Ceph configuration file of the image service's RBD store (``[image.rbd] conf``, or an
    ``[image.backends.NAME]`` table with ``driver = "rbd"``; the store's default when unset), or
    None when no RBD store is enabled: the local host's driver opens images' clones with it."""
    if image_config is None:
        return None
    for name in image_config.stores:
        table = image_config.rbd if name == "rbd" else image_config.backends.get(name) or {}
        if str(table.get("driver", name)) == "rbd":
            return str(table.get("conf", "/etc/ceph/ceph.conf"))
    return None


class Hosts:
    def __init__(self, compute: Any):
        self.compute = compute
        self.config = compute.config
        self.db = compute.db
        #: host -> event set when an op for it is committed (its agent or long-poll waits on it)
        self._wakers: dict[str, asyncio.Event] = {}
        #: op id -> futures of waiters in this process
        self._waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self.agents: dict[str, Any] = {}  # this process's hosts: name -> agent.Agent
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.controller_host = default_host_name(self.config.host)
        #: the URL clients reach the controller at (console URLs): the runtime's public URL,
        #: set when the API is built (``api_agent.add_routes``)
        self.public_url = ""
        self._console_auth: Any = None

    # ------------------------------------------------------------------ liveness

    def is_up(self, svc: ComputeServiceRow, at: datetime | None = None) -> bool:
        """Nova's rule: not forced down, and a heartbeat younger than service_down_time."""
        if svc.forced_down or svc.last_seen_up is None:
            return False
        age = ((at or datetime.utcnow()) - svc.last_seen_up).total_seconds()
        return age <= self.config.service_down_time

    # ------------------------------------------------------------------ registry

    async def register(self, host: str, info: HostInfo, *, transport: str = "local",
                       host_ip: str | None = None) -> ComputeNode:
        """Register (or refresh) a compute host: its service, node and Placement provider.
        Returns the node row (its ``uuid`` is the resource provider's)."""
        async with self.db.read() as session:
            node = (await session.execute(sa.select(ComputeNode).where(
                ComputeNode.hypervisor_hostname == info.hypervisor_hostname))).scalar()
            node_uuid = node.uuid if node is not None else None
            previous_traits = set(node.traits or []) if node is not None else set()
        node_uuid = await self._ensure_provider(info, node_uuid, previous_traits)
        t = now()
        async with self.db.write() as session:
            svc = (await session.execute(sa.select(ComputeServiceRow).where(
                ComputeServiceRow.host == host, ComputeServiceRow.binary == COMPUTE))).scalar()
            if svc is None:
                svc = ComputeServiceRow(uuid=str(uuidlib.uuid4()), host=host, binary=COMPUTE, topic="compute",
                                        disabled=False, forced_down=False, report_count=0, created_at=t)
                session.add(svc)
            svc.transport = transport
            svc.started_at = t
            svc.last_seen_up = t
            svc.updated_at = t
            svc.report_count = (svc.report_count or 0) + 1
            await session.flush()
            node = (await session.execute(sa.select(ComputeNode).where(ComputeNode.uuid == node_uuid))).scalar()
            if node is None:
                node = ComputeNode(uuid=node_uuid, created_at=t)
                session.add(node)
            node.service_id = svc.id
            node.host = host
            node.hypervisor_hostname = info.hypervisor_hostname
            node.hypervisor_type = info.hypervisor_type
            node.hypervisor_version = info.hypervisor_version
            node.host_ip = host_ip or "127.0.0.1"
            node.vcpus, node.memory_mb, node.local_gb = info.vcpus, info.memory_mb, info.disk_gb
            node.cpu_info = dict(info.cpu_info)
            node.traits = sorted(self._traits(info))
            node.updated_at = t
            # an op the host was running when it went away is run again (driver calls are idempotent)
            await session.execute(sa.update(HostOp).where(HostOp.host == host, HostOp.status == RUNNING)
                                  .values(status=PENDING, updated_at=t))
            await session.flush()
            session.expunge(node)
        return node

    def _traits(self, info: HostInfo) -> set[str]:
        import os_traits

        traits = set(info.traits) | {os_traits.COMPUTE_NODE}
        owner = getattr(os_traits, "OWNER_NOVA", None)
        if owner:
            traits.add(owner)
        return traits

    def inventory(self, info: HostInfo) -> dict[str, Any]:
        """The host's Placement inventory, as Nova's resource tracker reports it."""
        from mcloud.placement.service import Inventory

        c = self.config
        reserved_ram = min(c.reserved_host_memory_mb, max(info.memory_mb - 1, 0))
        reserved_disk = min(math.ceil(c.reserved_host_disk_mb / 1024), max(info.disk_gb - 1, 0))
        inv = {
            "VCPU": Inventory(total=info.vcpus, reserved=0, min_unit=1, max_unit=info.vcpus, step_size=1,
                              allocation_ratio=c.cpu_allocation_ratio),
            "MEMORY_MB": Inventory(total=info.memory_mb, reserved=reserved_ram, min_unit=1,
                                   max_unit=info.memory_mb, step_size=1, allocation_ratio=c.ram_allocation_ratio),
        }
        if info.disk_gb > 0:
            inv["DISK_GB"] = Inventory(total=info.disk_gb, reserved=reserved_disk, min_unit=1,
                                       max_unit=info.disk_gb, step_size=1,
                                       allocation_ratio=c.disk_allocation_ratio)
        return inv

    async def _ensure_provider(self, info: HostInfo, node_uuid: str | None, previous_traits: set[str]) -> str:
        placement = self.compute.placement
        await placement.ensure_standards()
        provider = None
        if node_uuid is not None:
            with contextlib.suppress(NotFound):
                provider = await placement.get_provider(node_uuid)
        if provider is None:
            by_name = await placement.list_providers(name=info.hypervisor_hostname)
            if by_name:
                provider = by_name[0]
            else:
                provider = await placement.create_provider(info.hypervisor_hostname, node_uuid)
        if provider.name != info.hypervisor_hostname:
            provider = await placement.update_provider(provider.uuid, {"name": info.hypervisor_hostname}, False)
        wanted = self.inventory(info)
        for _ in range(5):
            try:
                rp = await placement.get_provider(provider.uuid)
                _, current = await placement.get_inventories(provider.uuid)
                if current != wanted:
                    await placement.set_inventories(provider.uuid, rp.generation, wanted, False)
                break
            except Conflict as exc:  # a concurrent write moved the generation, or inventory in use
                if "in use" in str(exc):
                    log.warning("host %s: inventory not updated: %s", info.hypervisor_hostname, exc)
                    break
        ours = self._traits(info)
        for trait in sorted(t for t in ours if t.startswith("CUSTOM_")):
            await placement.put_trait(trait)
        _, current_traits = await placement.get_provider_traits(provider.uuid)
        # traits the operator set (not ones this host reported before) stay
        keep = set(current_traits) - previous_traits
        if set(current_traits) != keep | ours:
            await placement.set_provider_traits(provider.uuid, sorted(keep | ours), None)
        return provider.uuid

    async def register_controller(self) -> None:
        """The controller's own services (nova-scheduler, nova-conductor), heartbeated by it."""
        t = now()
        async with self.db.write() as session:
            have = set((await session.execute(sa.select(ComputeServiceRow.binary).where(
                ComputeServiceRow.host == self.controller_host,
                ComputeServiceRow.binary.in_(CONTROLLER_BINARIES)))).scalars())
            for binary in CONTROLLER_BINARIES:
                if binary not in have:
                    session.add(ComputeServiceRow(
                        uuid=str(uuidlib.uuid4()), host=self.controller_host, binary=binary,
                        topic=binary.split("-", 1)[1], disabled=False, forced_down=False, report_count=0,
                        created_at=t, transport="local"))
            await session.execute(sa.update(ComputeServiceRow).where(
                ComputeServiceRow.host == self.controller_host, ComputeServiceRow.binary.in_(CONTROLLER_BINARIES))
                .values(last_seen_up=t, updated_at=t, started_at=t))

    async def heartbeat(self, hosts: list[str], binaries: tuple[str, ...] = (COMPUTE,)) -> int:
        """Record a heartbeat of ``hosts`` (one statement for all). Returns the rows touched:
        0 means the host was deleted and must register again."""
        t = now()
        async with self.db.write() as session:
            done = await session.execute(sa.update(ComputeServiceRow).where(
                ComputeServiceRow.host.in_(hosts), ComputeServiceRow.binary.in_(binaries))
                .values(last_seen_up=t, updated_at=t, report_count=ComputeServiceRow.report_count + 1))
            return int(done.rowcount or 0)  # type: ignore[attr-defined]

    async def report_power_states(self, host: str, power_states: dict[str, int]) -> None:
        """A host's driver says what its instances' power states are; instances of this host
        whose recorded power state differs are handed to the conductor (Nova's power-state sync),
        unless a task is under way on them."""
        if not power_states:
            return
        from mcloud.compute.models import Instance

        await self.destroy_leftovers(host, list(power_states))
        async with self.db.read() as session:
            rows = (await session.execute(sa.select(Instance.uuid, Instance.power_state, Instance.task_state).where(
                Instance.uuid.in_(list(power_states)), Instance.host == host,
                Instance.deleted.is_(False)))).all()
        changed = [(r.uuid, power_states[r.uuid]) for r in rows
                   if r.task_state is None and r.power_state != power_states[r.uuid]]
        if not changed:
            return
        hook = getattr(self.compute.conductor, "power_state_changed", None)
        async with self.db.write() as session:
            for instance_uuid, power_state in changed:
                if hook is not None:
                    await hook(session, instance_uuid, power_state)
                else:
                    await session.execute(sa.update(Instance).where(Instance.uuid == instance_uuid)
                                          .values(power_state=power_state))

    async def destroy_leftovers(self, host: str, uuids: list[str]) -> list[str]:
        """Of the guests ``host``'s driver has (``uuids``), destroy those that are no longer the
        host's: servers evacuated from it while it was down (an "evacuation" migration from this
        host, done, the server now elsewhere: Nova's ``_destroy_evacuated_instances``, the
        migration then "completed") and servers deleted meanwhile (Nova's
        ``_cleanup_running_deleted_instances`` with its default action, reap). A "destroy" op
        is queued for each (one per guest and reason, however often the host reports it); the
        uuids it was sent for are returned."""
        from mcloud.compute.models import Instance, Migration

        if not uuids:
            return []
        sent: list[str] = []
        async with self.db.write() as session:
            deleted = (await session.execute(sa.select(Instance.uuid).where(
                Instance.uuid.in_(uuids), Instance.deleted.is_(True)))).scalars().all()
            evacuated = (await session.execute(sa.select(Migration).join(
                Instance, Instance.uuid == Migration.instance_uuid).where(
                Migration.instance_uuid.in_(uuids), Migration.migration_type == "evacuation",
                Migration.source_compute == host, Migration.status == "done", Instance.deleted.is_(False),
                sa.or_(Instance.host.is_(None), Instance.host != host)))).scalars().all()
            for uuid in deleted:
                await self.send(session, host, "destroy", uuid, {}, op_id=f"reap:{host}:{uuid}")
                sent.append(uuid)
            for mig in evacuated:
                if mig.instance_uuid not in sent:
                    await self.send(session, host, "destroy", mig.instance_uuid, {},
                                    op_id=f"evacuated:{host}:{mig.instance_uuid}:{mig.id}")
                    sent.append(mig.instance_uuid)
                mig.status = "completed"
                mig.updated_at = now()
        for uuid in sent:
            log.info("host %s still had instance %s (deleted or evacuated while the host was down): destroying it",
                     host, uuid)
        return sent

    # ------------------------------------------------------------------ reading the registry

    async def services(self, session: AsyncSession, *, host: str | None = None,
                       binary: str | None = None) -> list[ComputeServiceRow]:
        q = sa.select(ComputeServiceRow).order_by(ComputeServiceRow.id)
        if host is not None:
            q = q.where(ComputeServiceRow.host == host)
        if binary is not None:
            q = q.where(ComputeServiceRow.binary == binary)
        return list((await session.execute(q)).scalars())

    async def nodes(self, session: AsyncSession) -> list[ComputeNode]:
        return list((await session.execute(sa.select(ComputeNode).order_by(ComputeNode.id))).scalars())

    async def zones(self, session: AsyncSession) -> dict[str, str]:
        """host -> availability zone (an aggregate's, else default_availability_zone)."""
        resources = self.compute.resources
        aggregates = getattr(resources, "host_aggregates", None)
        found: dict[str, str] = {}
        if aggregates is not None:
            for host, aggs in (await aggregates(session)).items():
                for agg in aggs:
                    if getattr(agg, "availability_zone", None):
                        found[host] = agg.availability_zone
                        break
        return found

    def zone_of(self, zones: dict[str, str], svc: ComputeServiceRow) -> str:
        if svc.binary != COMPUTE:
            return "internal"
        return zones.get(svc.host, self.config.default_availability_zone)

    async def candidates_state(self, session: AsyncSession) -> dict[str, HostState]:
        """Every compute host with a node: up, enabled, forced down, zone, provider, node."""
        rows = (await session.execute(
            sa.select(ComputeServiceRow, ComputeNode).join(ComputeNode, ComputeNode.service_id == ComputeServiceRow.id)
            .where(ComputeServiceRow.binary == COMPUTE))).all()
        zones = await self.zones(session)
        at = datetime.utcnow()
        return {svc.host: HostState(host=svc.host, up=self.is_up(svc, at), enabled=not svc.disabled,
                                    forced_down=svc.forced_down, az=self.zone_of(zones, svc),
                                    provider_uuid=node.uuid, node=node.hypervisor_hostname,
                                    disabled_reason=svc.disabled_reason)
                for svc, node in rows}

    async def provider_of(self, session: AsyncSession, host: str) -> str | None:
        """The resource provider uuid of ``host``'s node (None: no such host)."""
        return (await session.execute(sa.select(ComputeNode.uuid).where(ComputeNode.host == host)
                                      .order_by(ComputeNode.id).limit(1))).scalar()

    async def check_target(self, session: AsyncSession, host: str) -> None:
        """A destination an admin names for a move (live or cold migration) must be a compute
        host that is up: Nova's 400s ComputeHostNotFound "Compute host X could not be found." and
        ComputeServiceUnavailable "Compute service of X is unavailable at this time.", raised
        before anything is written. A disabled host is not refused here (the scheduler's
        ComputeFilter decides, as in Nova)."""
        row = (await session.execute(
            sa.select(ComputeServiceRow).join(ComputeNode, ComputeNode.service_id == ComputeServiceRow.id)
            .where(ComputeServiceRow.host == host, ComputeServiceRow.binary == "nova-compute").limit(1))).scalar()
        if row is None:
            raise BadRequest(f"Compute host {host} could not be found.")
        if not self.is_up(row):
            raise BadRequest(f"Compute service of {host} is unavailable at this time.")

    async def node_of(self, session: AsyncSession, host: str) -> ComputeNode | None:
        return (await session.execute(sa.select(ComputeNode).where(ComputeNode.host == host)
                                      .order_by(ComputeNode.id).limit(1))).scalar()

    # ------------------------------------------------------------------ changing services

    async def update_service(self, session: AsyncSession, svc: ComputeServiceRow, *,
                             disabled: bool | None = None, disabled_reason: Any = ...,
                             forced_down: bool | None = None) -> ComputeServiceRow:
        if disabled is not None:
            svc.disabled = disabled
            if not disabled:
                svc.disabled_reason = None
        if disabled_reason is not ...:
            svc.disabled_reason = disabled_reason
        if forced_down is not None:
            svc.forced_down = forced_down
        svc.updated_at = now()
        await self._sync_disabled_trait(session, svc)
        return svc

    async def _sync_disabled_trait(self, session: AsyncSession, svc: ComputeServiceRow) -> None:
        """Nova marks a disabled compute's provider with COMPUTE_STATUS_DISABLED (after commit:
        Placement writes in its own transactions)."""
        if svc.binary != COMPUTE:
            return
        provider = await self.provider_of(session, svc.host)
        if provider is None:
            return
        disabled = svc.disabled
        placement = self.compute.placement

        async def apply() -> None:
            with contextlib.suppress(NotFound):
                _, traits = await placement.get_provider_traits(provider)
                wanted = set(traits) | {"COMPUTE_STATUS_DISABLED"} if disabled else \
                    set(traits) - {"COMPUTE_STATUS_DISABLED"}
                if wanted != set(traits):
                    await placement.set_provider_traits(provider, sorted(wanted), None)

        self._after_commit(session, apply)

    async def delete_service(self, session: AsyncSession, svc: ComputeServiceRow) -> None:
        """Delete a service; a compute's node goes with it, and its resource provider (Placement
        refuses while instances hold allocations there: then 409, as Nova)."""
        if svc.binary == COMPUTE:
            from mcloud.compute.models import Instance

            hosting = (await session.execute(sa.select(sa.func.count()).select_from(Instance).where(
                Instance.host == svc.host, Instance.deleted.is_(False)))).scalar_one()
            if hosting:
                raise Conflict(f"Unable to delete compute service that is hosting instances. Migrate or "
                               f"delete the instances first.")
            nodes = list((await session.execute(sa.select(ComputeNode.uuid).where(
                ComputeNode.service_id == svc.id))).scalars())
            await session.execute(sa.delete(ComputeNode).where(ComputeNode.service_id == svc.id))
            await session.execute(sa.delete(HostOp).where(HostOp.host == svc.host, HostOp.status == PENDING))
            placement = self.compute.placement

            async def drop() -> None:
                for rp in nodes:
                    try:
                        await placement.delete_provider(rp)
                    except (NotFound, Conflict) as exc:
                        log.warning("service %s deleted; its resource provider %s stays: %s", svc.host, rp, exc)

            self._after_commit(session, drop)
        await session.delete(svc)

    def _after_commit(self, session: AsyncSession, call: Any) -> None:
        def fire(_session: Any) -> None:
            task = asyncio.get_event_loop().create_task(call())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

        event.listen(session.sync_session, "after_commit", fire, once=True)

    # ------------------------------------------------------------------ host operations

    def _waker(self, host: str) -> asyncio.Event:
        waker = self._wakers.get(host)
        if waker is None:
            waker = self._wakers[host] = asyncio.Event()
        return waker

    def wake(self, host: str) -> None:
        self._waker(host).set()

    async def send(self, session: AsyncSession, host: str, op: str, instance_uuid: str | None,
                   payload: dict[str, Any], op_id: str | None = None) -> str:
        """Queue ``op`` for ``host`` inside the caller's write transaction; the host is woken when
        it commits. With ``op_id`` (deterministic per task step), an op already sent is found and
        not sent twice. Returns the op id."""
        if op_id is not None:
            found = (await session.execute(sa.select(HostOp.id).where(HostOp.id == op_id))).scalar()
            if found is not None:
                return op_id
        op_id = op_id or str(uuidlib.uuid4())
        t = now()
        session.add(HostOp(id=op_id, host=host, op=op, instance_uuid=instance_uuid, payload=payload,
                           status=PENDING, created_at=t, updated_at=t))
        await session.flush()
        event.listen(session.sync_session, "after_commit", lambda _s: self.wake(host), once=True)
        return op_id

    async def op_state(self, op_id: str) -> HostOp | None:
        async with self.db.read() as session:
            row = (await session.execute(sa.select(HostOp).where(HostOp.id == op_id))).scalar()
            if row is not None:
                session.expunge(row)
            return row

    @staticmethod
    def _outcome(row: HostOp) -> dict[str, Any]:
        if row.status == DONE:
            return dict(row.result or {})
        raise HostOpFailed(row.error or f"Host operation {row.op} failed")

    async def wait(self, op_id: str, timeout: float) -> dict[str, Any]:
        """The op's result once its host reports it; raises HostOpFailed (the driver's error)
        or HostTimeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._waiters.setdefault(op_id, []).append(future)
        try:
            while True:
                row = await self.op_state(op_id)
                if row is None:
                    raise HostOpFailed(f"Host operation {op_id} does not exist")
                if row.status in (DONE, FAILED):
                    return self._outcome(row)
                left = deadline - loop.time()
                if left <= 0:
                    raise HostTimeout(f"Host {row.host} did not finish {row.op} within {timeout:g} seconds")
                with contextlib.suppress(asyncio.TimeoutError):
                    return await asyncio.wait_for(asyncio.shield(future), min(left, _POLL))
        finally:
            waiters = self._waiters.get(op_id, [])
            if future in waiters:
                waiters.remove(future)
            if not waiters:
                self._waiters.pop(op_id, None)

    async def call(self, host: str, op: str, instance_uuid: str | None, payload: dict[str, Any],
                   timeout: float = 60) -> dict[str, Any]:
        """Send and wait: a synchronous host call (console output, console)."""
        async with self.db.write() as session:
            op_id = await self.send(session, host, op, instance_uuid, payload)
        result = await self.wait(op_id, timeout)
        if op == "console" and instance_uuid and result.get("port"):
            result = {**result, "url": self.console_url(host, instance_uuid, result)}
        return result

    @property
    def console_auth(self) -> Any:
        """The console tokens' issuer and checker (``consoleproxy.ConsoleAuth``)."""
        if self._console_auth is None:
            from mcloud.compute.consoleproxy import ConsoleAuth

            self._console_auth = ConsoleAuth(self.compute.data_dir, self.config.console_token_ttl)
        return self._console_auth

    def console_url(self, host: str, instance_uuid: str, console: dict[str, Any]) -> str:
        """The remote console URL of ``instance_uuid`` on ``host``, whose driver said where its
        VNC server is (``console``: the console op's result)."""
        from mcloud.compute.consoleproxy import ConsoleTarget, console_url

        token = self.console_auth.issue(ConsoleTarget(
            instance_uuid=instance_uuid, host=host, address=str(console.get("host") or "127.0.0.1"),
            port=int(console["port"]), protocol=str(console.get("protocol") or "vnc")))
        return console_url(self.public_url or "http://127.0.0.1:8080", token)

    async def pull(self, host: str, limit: int = 100) -> list[dict[str, Any]]:
        """Claim ``host``'s pending ops (oldest first): they become running."""
        async with self.db.read() as session:
            if (await session.execute(sa.select(HostOp.seq).where(HostOp.host == host, HostOp.status == PENDING)
                                      .limit(1))).first() is None:
                return []
        async with self.db.write() as session:
            q = (sa.select(HostOp).where(HostOp.host == host, HostOp.status == PENDING)
                 .order_by(HostOp.seq).limit(limit))
            if not self.db.is_sqlite:
                q = q.with_for_update(skip_locked=True)
            rows = list((await session.execute(q)).scalars())
            t = now()
            for row in rows:
                row.status = RUNNING
                row.updated_at = t
            return [{"id": r.id, "op": r.op, "instance_uuid": r.instance_uuid, "payload": r.payload or {}}
                    for r in rows]

    async def pull_wait(self, host: str, wait: float, limit: int = 100,
                        gone: asyncio.Event | None = None) -> list[dict[str, Any]]:
        """:meth:`pull`, waiting up to ``wait`` seconds for an op (the long poll); it ends within
        a second of ``gone`` being set (the agent hung up: nobody would take the ops)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        waker = self._waker(host)
        while True:
            if gone is not None and gone.is_set():
                return []
            waker.clear()
            ops = await self.pull(host, limit)
            left = deadline - loop.time()
            if ops or left <= 0:
                return ops
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(waker.wait(), min(left, 1.0))

    async def complete(self, op_id: str, result: dict[str, Any] | None = None, error: str | None = None,
                       host: str | None = None) -> None:
        """A host reports an op's end: ``result`` (done) or ``error`` (failed)."""
        async with self.db.write() as session:
            row = (await session.execute(sa.select(HostOp).where(HostOp.id == op_id))).scalar()
            if row is None or (host is not None and row.host != host):
                raise NotFound(f"Host operation {op_id} could not be found.")
            row.status = FAILED if error is not None else DONE
            row.result = result or {}
            row.error = error
            row.updated_at = now()
            await session.flush()
            outcome_row = row
            session.expunge(row)
        for future in self._waiters.get(op_id, []):
            if not future.done():
                try:
                    future.set_result(self._outcome(outcome_row))
                except HostOpFailed as exc:
                    future.set_exception(exc)
        for future in self._waiters.get(op_id, []):
            if future.done() and not future.cancelled():
                future.exception()  # seen: no "never retrieved" warning when nobody awaits it

    async def prune(self) -> None:
        """Forget finished ops older than an hour."""
        async with self.db.write() as session:
            await session.execute(sa.delete(HostOp).where(HostOp.status.in_((DONE, FAILED)),
                                                          HostOp.updated_at < now() - _KEEP))

    # ------------------------------------------------------------------ the controller's side of payloads

    async def instance_payload(self, instance: Any, *, image_id: str | None = None,
                               flavor: dict[str, Any] | None = None, meta: dict[str, str] | None = None,
                               port_ids: list[str] | None = None) -> dict[str, Any]:
        """The instance as a host needs it: the payload of spawn and of every op that takes an
        instance (see ``agent.py``). ``instance`` is a ``compute_instance`` row; ``image_id``
        (default its image_ref) and ``flavor`` (default its flavor) override for rebuild and
        resize; ``meta`` is its metadata; ``port_ids`` its ports (default: the ports whose
        device_id is the instance). Reads the image and the ports through their services."""
        image_ref = image_id if image_id is not None else instance.image_ref
        image = await self.image_payload(image_ref) if image_ref else None
        ports, subnets, networks = await self._ports_of(instance.uuid, port_ids)
        flavor = dict(flavor or instance.flavor or {})
        key_type = (instance.system_metadata or {}).get("key_type") if instance.system_metadata else None
        return {
            "uuid": instance.uuid, "name": instance.instance_name, "hostname": instance.hostname or "",
            "display_name": instance.name,
            "flavor": {k: flavor.get(k) for k in ("vcpus", "memory_mb", "root_gb", "ephemeral_gb", "swap",
                                                  "extra_specs")},
            "image": image,
            "vifs": [{"port_id": p["id"], "mac": p["mac_address"], "network_id": p["network_id"],
                      "mtu": (networks.get(p["network_id"]) or {}).get("mtu")} for p in ports],
            "metadata": {"uuid": instance.uuid, "name": instance.name, "hostname": instance.hostname or "",
                         "launch_index": instance.launch_index or 0,
                         "availability_zone": instance.availability_zone, "project_id": instance.project_id,
                         "meta": dict(meta or {}), "key_name": instance.key_name, "key_data": instance.key_data,
                         "key_type": key_type or "ssh"},
            "user_data": instance.user_data,
            "network_data": configdrive.network_data(ports, subnets, networks),
        }

    async def image_payload(self, image_id: str) -> dict[str, Any]:
        """An image as a host's image cache takes it (see ``imagecache.ImageCache.fetch``), with
        its kernel and ramdisk images (properties ``kernel_id``/``ramdisk_id``, Nova's direct
        kernel boot): ``{"id", "missing": true}`` for one the image service no longer has (a
        build then fails, see :func:`missing_boot_images`; an instance made before boots on with
        its own copy)."""
        payload = await self._image_payload(image_id)
        kernel_id, ramdisk_id = boot_image_ids(payload["properties"])
        for part, boot_id in (("kernel", kernel_id), ("ramdisk", ramdisk_id)):
            if boot_id is not None:
                try:
                    payload[part] = await self._image_payload(boot_id)
                except NotFound:
                    payload[part] = {"id": boot_id, "missing": True}
        return payload

    async def _image_payload(self, image_id: str) -> dict[str, Any]:
        from mcloud.image.service import Caller as ImageCaller

        image_service = self.compute.image
        async with image_service.db.read() as session:
            image = await image_service.get_image(session, ImageCaller(None, is_admin=True), image_id)
            view = await image_service.view(session, image)
            location = await image_service.data_location(session, image)
        rbd = None
        if location is not None and location.url.startswith("rbd://"):
            parts = location.url[len("rbd://"):].split("/")
            if len(parts) == 4:
                rbd = f"{parts[1]}/{parts[2]}@{parts[3]}"
        return {"id": image.id, "disk_format": image.disk_format, "properties": dict(view.properties),
                "min_disk": image.min_disk or 0, "size": image.size or 0, "checksum": image.checksum,
                "os_hash_algo": image.os_hash_algo, "os_hash_value": image.os_hash_value, "rbd": rbd}

    async def _ports_of(self, instance_uuid: str, port_ids: list[str] | None
                        ) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
        from mcloud.network.service import Caller as NetworkCaller

        network = self.compute.network
        caller = NetworkCaller.internal()
        params = {"id": list(port_ids)} if port_ids is not None else {"device_id": [instance_uuid]}
        if port_ids is not None and not port_ids:
            return [], {}, {}
        ports = (await network.list_ports(caller, params)).items
        if port_ids is not None:  # in the order given (the order of the server's NICs)
            order = {p: i for i, p in enumerate(port_ids)}
            ports.sort(key=lambda p: order.get(p["id"], len(order)))
        subnet_ids = sorted({ip["subnet_id"] for p in ports for ip in p.get("fixed_ips") or []})
        network_ids = sorted({p["network_id"] for p in ports})
        subnets = ({s["id"]: s for s in (await network.list_subnets(caller, {"id": subnet_ids})).items}
                   if subnet_ids else {})
        networks = ({n["id"]: n for n in (await network.list_networks(caller, {"id": network_ids})).items}
                    if network_ids else {})
        return ports, subnets, networks

    # ------------------------------------------------------------------ this process's hosts

    def local_host_names(self) -> list[str]:
        base = default_host_name(self.config.host)
        count = int(self.config.fake.get("hosts", 1) or 1) if self.config.driver == "fake" else 1
        return [base] if count <= 1 else [f"{base}-{i}" for i in range(1, count + 1)]

    def local_network_host(self) -> Any:
        """The in-process host's ``mcloud.network.host.Host`` (plugging NICs into ``mcloud up``'s
        OVN data plane), or None with the network service's fake driver."""
        network = self.compute.network
        cfg = getattr(network, "config", None)
        if cfg is None or getattr(cfg, "driver", None) != "ovn":
            return None
        from mcloud.network.dataplane import DataPlane, OvnOptions
        from mcloud.network.host import Host

        return Host.of(DataPlane(OvnOptions.parse(cfg.ovn, network.data_dir)))

    async def start(self) -> None:
        """Register the controller's services; start the local host(s) when configured."""
        await self.register_controller()
        if self.config.local_host:
            from mcloud.compute import agent as agent_mod
            from mcloud.compute.drivers import settle
            from mcloud.compute.imagecache import ImageCache

            settle(self.config)
            instances = Path(self.config.instances_path or self.compute.data_dir / "instances")
            transport = agent_mod.LocalTransport(self)
            images = ImageCache(self.compute.data_dir / "image-cache", transport.image_chunks,
                                ceph_conf=image_ceph_conf(getattr(self.compute.image, "config", None)))
            network_host = self.local_network_host() if self.config.driver != "fake" else None
            for name in self.local_host_names():
                driver = agent_mod.host_driver(self.config, instances / name if self.config.driver == "fake"
                                               else instances, network_host, name)
                agent = agent_mod.Agent(name, driver, transport, self.config, images=images, heartbeat=False)
                await agent.start()
                self.agents[name] = agent
        self._heartbeat_task = asyncio.get_running_loop().create_task(self._heartbeats(), name="compute-heartbeat")

    async def _heartbeats(self) -> None:
        """One heartbeat for the controller's services and every local host per report_interval."""
        ticks = 0
        while True:
            await asyncio.sleep(self.config.report_interval)
            ticks += 1
            try:
                await self.heartbeat([self.controller_host], CONTROLLER_BINARIES)
                if self.agents:
                    await self.heartbeat(list(self.agents))
                    for agent in self.agents.values():
                        await agent.sync_power_states()
                if ticks % 60 == 0:
                    await self.prune()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the database may be briefly unreachable
                log.warning("compute heartbeat failed", exc_info=True)

    async def close(self) -> None:
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
            self._heartbeat_task = None
        for agent in list(self.agents.values()):
            await agent.close()
        self.agents.clear()

    def agent(self, host: str) -> Any:
        """This process's agent of ``host`` (tests reach its driver through it)."""
        return self.agents[host]


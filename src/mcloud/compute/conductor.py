"""The conductor: the durable tasks that build servers, delete them and run every action to its
end state, as Nova's conductor and compute manager do (nova/conductor/manager.py,
nova/compute/manager.py).

SERVERS commits the change a user asked for (the instance in BUILD, or its ``task_state`` set, and
the InstanceAction row) and, in the same transaction, :meth:`Conductor.submit_build` or
:meth:`Conductor.submit_action` adds a task (``compute.build`` per instance, ``compute.action``).
The task worker runs it here: events on the action (Nova's names: ``conductor_schedule_and_build_
instances``, ``compute__do_build_and_run_instance``, ``compute_stop_instance`` ...), host
operations sent to the instance's host (seam 4: ``hosts.send`` inside a write transaction with an
op id made of the task id and the step, so a resumed task finds its op instead of sending it
twice, then ``hosts.wait``), and the end state written in one transaction.

**Build**: schedule (:mod:`scheduler`: Placement candidates, filters, weighers, a claim), the
server group's late check (Nova's ``_validate_instance_group_policy``, made safe under concurrency
by locking the members' rows), host/node/zone written, ports made through the network service
(``device_id`` = the instance, ``device_owner`` ``compute:<zone>``, ``binding:host_id`` = the
host) or the given ports bound, ``spawn`` on the host, then ACTIVE with ``launched_at``. A spawn
that fails is cleaned up on its host, its ports and allocation released, and the build is
rescheduled to another host up to ``scheduler_max_attempts``; then ERROR with Nova's fault. A
failure anywhere leaves ERROR with a fault and nothing claimed.

**Delete** waits for a build under way to see the ``deleting`` task state and stop, destroys the
instance on its host (when the host is up: a down host's instance is deleted locally, as Nova's
API does), deletes the ports it made and unbinds the ones it was given, drops its allocations
(also those its migrations hold) and its group memberships, and marks it deleted.

The moves (resize, cold and live migration, evacuation), rebuild, snapshots and shelving live
in ``conductor_moves.py``; the action handlers here dispatch to them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import traceback as tb
import uuid as uuidlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.compute import states as st
from mcloud.compute.models import Instance, Migration, now
from mcloud.compute.scheduler import NoValidHost, RequestSpec
from mcloud.core.tasks import PENDING, RUNNING, SUCCEEDED, Task, TaskContext, TaskRetry

log = logging.getLogger("mcloud.compute.conductor")

BUILD, ACTION, CLEANUP = "compute.build", "compute.action", "compute.cleanup"
#: how long a host may take for an operation before the conductor gives up on it
SPAWN_TIMEOUT = 600.0
OP_TIMEOUT = 300.0
#: Nova's shutdown_timeout: the guest's time for a clean shutdown on stop
SHUTDOWN_TIMEOUT = 60


class Reschedule(Exception):  # noqa: N818 (Nova's RescheduledException)
    """The build failed on this host in a way another host may not."""


class ActionFailed(Exception):  # noqa: N818
    """An action failed: the instance's fault says why (the message is the user's)."""


@dataclasses.dataclass
class BuildRequest:
    """What SERVERS hands the conductor for a build (the same for every instance of a request).

    ``image``: {"id", "name", "properties", "min_disk", "min_ram", "disk_format", "container_format",
    "size"} ({} for a server booted from a volume). ``networks``: resolved and validated by SERVERS,
    [{"network_id", "port_id", "fixed_ip", "tag"}] (a port given: ``port_id`` set, the network
    its own; empty list: no network)."""

    flavor: dict[str, Any]
    image: dict[str, Any]
    networks: list[dict[str, Any]]
    security_groups: list[str]
    project_id: str
    user_id: str
    availability_zone: str | None = None
    force_host: str | None = None
    force_node: str | None = None
    requested_host: str | None = None
    requested_node: str | None = None
    group_id: str | None = None
    hints: dict[str, Any] = dataclasses.field(default_factory=dict)
    request_id: str = ""
    num_instances: int = 1

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> BuildRequest:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _after_commit(session: AsyncSession, fn: Any) -> None:
    sa_event.listen(session.sync_session, "after_commit", lambda _s: fn(), once=True)


async def detached(session: AsyncSession, row: Any, values: dict[str, Any]) -> Any:
    """Set ``values`` (and updated_at) on ``row``, flush, and hand the row out of the session."""
    for k, v in values.items():
        setattr(row, k, v)
    row.updated_at = now()
    await session.flush()
    session.expunge(row)
    return row


def _message(exc: BaseException) -> str:
    return str(getattr(exc, "message", "") or exc) or type(exc).__name__


class Conductor:
    def __init__(self, compute: Any):
        self.compute = compute
        self.config = compute.config

    # ---------------------------------------------------------------- seam 2: what SERVERS calls

    def register(self, tasks: Any) -> None:
        tasks.register(BUILD, self._run_build, on_failure=self._task_given_up)
        tasks.register(ACTION, self._run_action, on_failure=self._task_given_up)
        tasks.register(CLEANUP, self._run_cleanup)

    async def submit_build(self, session: AsyncSession, instances: list[Instance], request: BuildRequest) -> None:
        """One ``compute.build`` task per instance, in SERVERS' write transaction."""
        data = dataclasses.asdict(request)
        for inst in instances:
            await self.compute.tasks.submit(session, BUILD, {"instance_uuid": inst.uuid, "request": data},
                                            resource_id=inst.uuid, owner_project=inst.project_id)
        _after_commit(session, self.compute.tasks.wake)

    async def submit_action(self, session: AsyncSession, instance: Instance, action: str, params: dict[str, Any],
                            request_id: str, caller: Any = None) -> Task:
        """A ``compute.action`` task: SERVERS has set the task state and made the action row."""
        who = {"user_id": getattr(caller, "user_id", None), "project_id": getattr(caller, "project_id", None),
               "is_admin": bool(getattr(caller, "is_admin", False))}
        task = await self.compute.tasks.submit(session, ACTION, {"instance_uuid": instance.uuid, "action": action,
                                                          "params": params or {}, "request_id": request_id,
                                                          "caller": who},
                                        resource_id=instance.uuid, owner_project=instance.project_id)
        _after_commit(session, self.compute.tasks.wake)
        return task

    async def call_host(self, instance: Instance, op: str, payload: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        """A synchronous host call the API waits on (console output, console URL)."""
        if not instance.host:
            raise ActionFailed(f"Instance {instance.uuid} is not on a host.")
        return await self.compute.hosts.call(instance.host, op, instance.uuid, payload, timeout)

    # ---------------------------------------------------------------- small helpers

    async def load(self, uuid: str) -> Instance | None:
        async with self.compute.db.read() as session:
            inst = (await session.execute(sa.select(Instance).where(Instance.uuid == uuid))).scalar()
            if inst is not None:
                session.expunge(inst)
            return inst

    async def _row(self, session: AsyncSession, uuid: str, lock: bool = False) -> Instance | None:
        q = sa.select(Instance).where(Instance.uuid == uuid)
        if lock and not self.compute.db.is_sqlite:
            q = q.with_for_update()
        return (await session.execute(q)).scalar()

    async def update(self, uuid: str, **values: Any) -> Instance | None:
        """Set columns of the instance in a write transaction of its own; returns it (detached)."""
        async with self.compute.db.write() as session:
            inst = await self._row(session, uuid, lock=True)
            if inst is None:
                return None
            return await detached(session, inst, values)

    async def event(self, uuid: str, request_id: str, name: str, result: str | None = None,
                    host: str | None = None, exc: BaseException | None = None) -> None:
        if not request_id:
            return
        async with self.compute.db.write() as session:
            await self.compute.action_event(session, uuid, request_id, name, result, host,
                                            "".join(tb.format_exception(exc)) if exc is not None else None)

    async def host_op(self, task_id: str, step: str, host: str, op: str, uuid: str, payload: dict[str, Any],
                      timeout: float = OP_TIMEOUT) -> dict[str, Any]:
        """Send ``op`` to ``host`` (once per task step, even across a resumed task) and wait."""
        async with self.compute.db.write() as session:
            op_id = await self.compute.hosts.send(session, host, op, uuid, payload, op_id=f"{task_id}:{step}")
        return await self.compute.hosts.wait(op_id, timeout)

    async def instance_payload(self, inst: Instance, **kw: Any) -> dict[str, Any]:
        """The instance as its host needs it (AGENT's ``hosts.instance_payload``), its NICs in the
        order the build made them and its metadata; op keys are merged into it."""
        from mcloud.compute import models as cm

        ports = [r["port_id"] for r in (inst.system_metadata or {}).get("ports") or []]
        kw.setdefault("port_ids", ports or None)
        meta_model = getattr(cm, "InstanceMetadata", None)
        if meta_model is not None and "meta" not in kw:
            async with self.compute.db.read() as session:
                rows = await session.execute(sa.select(meta_model.key, meta_model.value).where(
                    meta_model.instance_uuid == inst.uuid))
                kw["meta"] = {k: v for k, v in rows}
        payload = await self.compute.hosts.instance_payload(inst, **kw)
        from mcloud.compute.conductor_volumes import volume_payloads  # noqa: PLC0415

        payload["volumes"] = await volume_payloads(self, inst.uuid)
        return payload

    async def host_is_up(self, host: str | None) -> bool:
        if not host:
            return False
        async with self.compute.db.read() as session:
            states = await self.compute.hosts.candidates_state(session)
        state = states.get(host)
        return state is not None and bool(state.up)

    # ---------------------------------------------------------------- tasks

    async def _task_given_up(self, session: AsyncSession, task: Task, message: str) -> None:
        """The worker gave the task up (its process died too often): ERROR with the reason. A build
        given up also lets go of what it held (a cleanup task, submitted in this transaction: the
        hook may not open another)."""
        uuid = (task.payload or {}).get("instance_uuid")
        inst = await self._row(session, uuid) if uuid else None
        if inst is None or inst.deleted:
            return
        inst.vm_state = st.ERROR
        inst.task_state = None
        inst.updated_at = now()
        await self.compute.record_fault(session, inst, message, 500, inst.host)
        if task.kind == BUILD:
            await self.compute.tasks.submit(session, CLEANUP, {"instance_uuid": inst.uuid},
                                            resource_id=inst.uuid, owner_project=inst.project_id)
            _after_commit(session, self.compute.tasks.wake)

    async def _run_cleanup(self, ctx: TaskContext) -> dict[str, Any]:
        """A build that will not finish: its host's copy destroyed, its ports and allocations
        released, no host."""
        from mcloud.compute.hosts import HostOpFailed, HostTimeout

        inst = await self.load(ctx.payload["instance_uuid"])
        if inst is None or inst.deleted or inst.vm_state != st.ERROR:
            return {"skipped": "nothing to clean"}
        if inst.host and await self.host_is_up(inst.host):
            try:
                await self.host_op(ctx.id, "destroy", inst.host, "destroy", inst.uuid, {}, 60)
            except (HostOpFailed, HostTimeout) as exc:
                log.warning("cleanup of %s on %s failed: %s", inst.uuid, inst.host, exc)
        await self.release_all(inst)
        await self.update(inst.uuid, host=None, node=None, power_state=st.NOSTATE)
        return {"cleaned": inst.uuid}

    async def _run_build(self, ctx: TaskContext) -> dict[str, Any]:
        from mcloud.compute.conductor_build import Build

        return await Build(self, ctx).run()

    async def _run_action(self, ctx: TaskContext) -> dict[str, Any]:
        from mcloud.compute.conductor_actions import run_action

        return await run_action(self, ctx)

    # ---------------------------------------------------------------- ports

    async def security_group_ids(self, project_id: str, names: list[str]) -> list[str] | None:
        """Names (or ids) of the project's security groups -> ids; None: the port's default (also
        for just ``default``, which is what a port made without groups gets)."""
        if not names or list(names) == ["default"]:
            return None
        from mcloud.network.service import Caller as NetCaller

        caller = NetCaller(project_id, False, None)
        ids: list[str] = []
        for name in names:
            page = await self.compute.network.l3.list_security_groups(caller, {"name": [name]})
            found = [g["id"] for g in page.items if g.get("project_id") in (project_id, None)]
            if not found:
                page = await self.compute.network.l3.list_security_groups(caller, {"id": [name]})
                found = [g["id"] for g in page.items]
            if not found:
                raise ActionFailed(f"Security group {name} not found for project {project_id}.")
            ids.append(found[0])
        return sorted(set(ids))

    async def allocate_ports(self, inst: Instance, networks: list[dict[str, Any]], security_groups: list[str],
                             host: str) -> list[dict[str, Any]]:
        """Ports for the requested networks (made, or given ones bound), recorded on the instance
        in the same transaction (``system_metadata["ports"]``: port_id, network_id, made, tag), so a
        resumed build does not make them twice. Returns the records."""
        from mcloud.network.service import Caller as NetCaller

        known = list((inst.system_metadata or {}).get("ports") or [])
        if len(known) >= len(networks):
            await self.bind_ports(inst, known, host)
            return known
        sg_ids = await self.security_group_ids(inst.project_id, security_groups)
        owner = f"compute:{inst.availability_zone or self.config.default_availability_zone}"
        records = list(known)
        for req in networks[len(known):]:
            if req.get("port_id"):
                port = await self.compute.network.update_port(NetCaller.internal(), req["port_id"], {
                    "device_id": inst.uuid, "device_owner": owner, "binding:host_id": host})
                records.append({"port_id": port["id"], "network_id": port["network_id"], "made": False,
                                "tag": req.get("tag")})
                async with self.compute.db.write() as session:
                    await self._record_ports(session, inst, records)
                continue
            body: dict[str, Any] = {"binding:host_id": host}
            if sg_ids is not None:
                body["security_groups"] = sg_ids
            fixed = [{"ip_address": req["fixed_ip"]}] if req.get("fixed_ip") else None
            async with self.compute.network.write() as session:
                made = await self.compute.network.create_port_internal(
                    session, project_id=inst.project_id, network_id=req["network_id"], fixed_ips=fixed,
                    device_owner=owner, device_id=inst.uuid, body=body)
                records.append({"port_id": made.id, "network_id": made.network_id, "made": True,
                                "tag": req.get("tag")})
                await self._record_ports(session, inst, records)
        return records

    async def _record_ports(self, session: AsyncSession, inst: Instance, records: list[dict[str, Any]]) -> None:
        row = await self._row(session, inst.uuid)
        if row is not None:
            row.system_metadata = {**(row.system_metadata or {}), "ports": list(records)}
        inst.system_metadata = {**(inst.system_metadata or {}), "ports": list(records)}

    async def bind_ports(self, inst: Instance, records: list[dict[str, Any]], host: str | None) -> None:
        """Bind every port of the instance to ``host`` (a move), or unbind them (``host`` None)."""
        from mcloud.network.service import Caller as NetCaller

        for rec in records:
            try:
                await self.compute.network.update_port(NetCaller.internal(), rec["port_id"],
                                                       {"binding:host_id": host or ""})
            except Exception as exc:  # noqa: BLE001 (a port deleted by its owner meanwhile)
                log.info("could not bind port %s of %s: %s", rec["port_id"], inst.uuid, exc)

    async def set_port_profiles(self, inst: Instance, profile: dict[str, Any]) -> None:
        """``binding:profile`` of every port of the instance (a live migration's ``migrating_to``:
        the port is wanted on both chassis until the guest runs on the destination)."""
        from mcloud.network.service import Caller as NetCaller

        for rec in (inst.system_metadata or {}).get("ports") or []:
            try:
                await self.compute.network.update_port(NetCaller.internal(), rec["port_id"],
                                                       {"binding:profile": dict(profile)})
            except Exception as exc:  # noqa: BLE001 (a port deleted by its owner meanwhile)
                log.info("could not set the profile of port %s of %s: %s", rec["port_id"], inst.uuid, exc)

    async def release_ports(self, inst: Instance) -> None:
        """Delete the ports the instance made; unbind (and free) the ones it was given."""
        from mcloud.network.service import Caller as NetCaller

        records = list((inst.system_metadata or {}).get("ports") or [])
        made = [r["port_id"] for r in records if r.get("made")]
        given = [r["port_id"] for r in records if not r.get("made")]
        if made:  # deleted, and forgotten by the instance, in one transaction
            async with self.compute.network.write() as session:
                for port_id in made:
                    await self.compute.network.delete_port_internal(session, port_id)
                if not given:
                    await self._forget_ports(session, inst)
                    return
        for port_id in given:
            try:
                await self.compute.network.update_port(NetCaller.internal(), port_id, {
                    "binding:host_id": "", "device_id": "", "device_owner": ""})
            except Exception as exc:  # noqa: BLE001 (deleted meanwhile: nothing to unbind)
                log.info("could not unbind port %s of %s: %s", port_id, inst.uuid, exc)
        async with self.compute.db.write() as session:
            await self._forget_ports(session, inst)

    async def _forget_ports(self, session: AsyncSession, inst: Instance) -> None:
        row = await self._row(session, inst.uuid)
        if row is not None:
            row.system_metadata = {k: v for k, v in (row.system_metadata or {}).items() if k != "ports"}
        inst.system_metadata = {k: v for k, v in (inst.system_metadata or {}).items() if k != "ports"}

    # ---------------------------------------------------------------- releasing everything

    async def release_all(self, inst: Instance) -> None:
        """Allocations (the instance's and its migrations'), ports."""
        await self.compute.scheduler.release(inst.uuid)
        async with self.compute.db.read() as session:
            migrations = list((await session.execute(sa.select(Migration.uuid).where(
                Migration.instance_uuid == inst.uuid))).scalars())
        for m_uuid in migrations:
            await self.compute.scheduler.release(m_uuid)
        await self.release_ports(inst)

    async def wait_for_build(self, uuid: str, timeout: float = 60.0, own_task: str | None = None) -> None:
        """Before a delete: the instance's other tasks (its build, an action) not yet started are
        cancelled; one under way is waited for (a build sees the ``deleting`` task state at its
        next step and stops; an action finishes its host operation)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            async with self.compute.db.write() as session:
                tasks = list((await session.execute(sa.select(Task).where(
                    Task.resource_id == uuid, Task.kind.in_((BUILD, ACTION)), Task.id != (own_task or ""),
                    Task.status.in_((PENDING, RUNNING))))).scalars())
                running = False
                for task in tasks:
                    if task.status == PENDING:
                        task.status = SUCCEEDED
                        task.result = {"cancelled": "the server was deleted"}
                        task.updated_at = now()
                    else:
                        running = True
            if not running:
                return
            if loop.time() > deadline:
                raise TaskRetry("waiting for the server's other task to stop")
            await asyncio.sleep(0.1)

    # ---------------------------------------------------------------- power-state sync (seam 4)

    async def power_state_changed(self, session: AsyncSession, instance_uuid: str, power_state: int) -> None:
        """The host says the instance's power state changed while no task was under way: Nova's
        ``_sync_instance_power_state``. The power state is recorded; then, as Nova does, a server
        that should run but whose guest is off, crashed or suspended is stopped through the stop
        action (SHUTOFF, with its action and events), and a stopped server whose guest runs, or a
        paused one whose guest is off, is stopped again on its host. Other mismatches (an active
        server whose guest is paused or gone) are only recorded."""
        inst = await self._row(session, instance_uuid, lock=True)
        if inst is None or inst.deleted or inst.task_state is not None:
            return
        inst.power_state = power_state
        inst.updated_at = now()
        vm, off = inst.vm_state, (st.SHUTDOWN, st.CRASHED)
        stop = ((vm == st.ACTIVE and power_state in (*off, st.POWER_SUSPENDED))
                or (vm == st.STOPPED and power_state not in (st.NOSTATE, *off))
                or (vm == st.PAUSED and power_state in off))
        if not stop:
            return
        from mcloud.compute.models import InstanceAction

        request_id = f"req-{uuidlib.uuid4()}"
        session.add(InstanceAction(instance_uuid=inst.uuid, action="stop", request_id=request_id,
                                   project_id=inst.project_id, user_id=None, start_time=now(), updated_at=now()))
        inst.task_state = st.POWERING_OFF
        await session.flush()
        await self.submit_action(session, inst, "stop", {"timeout": 0}, request_id, None)


def request_spec(inst: Instance, flavor: dict[str, Any] | None = None, image: dict[str, Any] | None = None,
                 **kw: Any) -> RequestSpec:
    """The RequestSpec of an existing instance (moves, unshelve, reschedules)."""
    sysmeta = inst.system_metadata or {}
    return RequestSpec(instance_uuid=inst.uuid, project_id=inst.project_id, user_id=inst.user_id,
                       flavor=flavor or inst.flavor, image=image or {"id": inst.image_ref,
                                                                     "properties": sysmeta.get("image_properties")
                                                                     or {}},
                       availability_zone=kw.pop("availability_zone", inst.requested_availability_zone),
                       hints=dict(inst.scheduler_hints or {}), **kw)


__all__ = ["BuildRequest", "Conductor", "NoValidHost", "Reschedule", "ActionFailed", "request_spec"]

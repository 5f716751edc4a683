"""The build task (``compute.build``): schedule, claim, ports, spawn, ACTIVE, or reschedule and
at last ERROR with Nova's fault; see conductor.py for the whole story."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from mcloud.compute import states as st
from mcloud.compute.conductor import (SPAWN_TIMEOUT, ActionFailed, BuildRequest, Conductor, Reschedule,
                                      _message)
from mcloud.compute.models import Instance, now
from mcloud.compute.scheduler import NoValidHost, RequestSpec, Scheduler, Selection
from mcloud.core.tasks import TaskContext

log = logging.getLogger("mcloud.compute.conductor")

CONDUCTOR_EVENT = "conductor_schedule_and_build_instances"
COMPUTE_EVENT = "compute__do_build_and_run_instance"


class Stop(Exception):  # noqa: N818
    """The instance went away (deleted) while building: nothing more to do here."""


def max_retries_message(uuid: str) -> str:
    return (f"Exceeded maximum number of retries. Exhausted all hosts available for retrying build "
            f"failures for instance {uuid}.")


class Build:
    def __init__(self, conductor: Conductor, ctx: TaskContext):
        self.c = conductor
        self.compute = conductor.compute
        self.ctx = ctx
        self.uuid: str = ctx.payload["instance_uuid"]
        self.req = BuildRequest.from_payload(ctx.payload.get("request") or {})
        self.rid = self.req.request_id
        self.open_event: str | None = None
        self.group_view: Any = None  # the server group as this attempt's scheduling read it

    # ---------------------------------------------------------------- the whole build

    async def run(self) -> dict[str, Any]:
        inst = await self.c.load(self.uuid)
        if inst is None or inst.deleted or inst.task_state == st.DELETING or inst.vm_state != st.BUILDING:
            return {"skipped": "the server is not building"}
        if self.ctx.resumed:  # a former attempt started its event: finish that one, not a second
            self.open_event = COMPUTE_EVENT if inst.host else CONDUCTOR_EVENT
        else:
            await self._start_event(CONDUCTOR_EVENT, None)
        failed: list[str] = list((inst.system_metadata or {}).get("failed_hosts") or [])
        try:
            while True:
                try:
                    sel = await self.place(inst, failed)
                except NoValidHost as exc:
                    return await self.fail(inst, max_retries_message(self.uuid) if failed else _message(exc),
                                           details=str(exc))
                if self.open_event == CONDUCTOR_EVENT:
                    await self._finish_event("Success")
                if self.open_event != COMPUTE_EVENT:
                    await self._start_event(COMPUTE_EVENT, sel.host)
                try:
                    inst = await self.claim_host(inst, sel)
                    inst = await self.networking(inst)
                    result = await self.spawn(inst, len(failed))
                except Reschedule as exc:
                    failed.append(sel.host)
                    inst = await self.unwind(inst, sel.host, failed, exc)
                    if len(failed) >= self.compute.config.scheduler_max_attempts:
                        return await self.fail(inst, max_retries_message(self.uuid), details=_message(exc))
                    await self._start_event(CONDUCTOR_EVENT, None)
                    continue
                return await self.finish(inst, result)
        except Stop:
            if self.open_event:
                await self._finish_event("Error")
            return {"stopped": "the server was deleted while building"}
        except Exception as exc:  # noqa: BLE001 (any failure: ERROR with a fault, everything released)
            log.exception("build of %s failed", self.uuid)
            current = await self.c.load(self.uuid) or inst
            return await self.fail(current, exc if isinstance(exc, ActionFailed) else
                                   f"Build of instance {self.uuid} aborted: {_message(exc)}", exc=exc)

    # ---------------------------------------------------------------- events

    async def _start_event(self, name: str, host: str | None) -> None:
        await self.c.event(self.uuid, self.rid, name, None, host)
        self.open_event = name

    async def _finish_event(self, result: str, exc: BaseException | None = None) -> None:
        if self.open_event:
            await self.c.event(self.uuid, self.rid, self.open_event, result, None, exc)
            self.open_event = None

    # ---------------------------------------------------------------- steps

    async def place(self, inst: Instance, failed: list[str]) -> Selection:
        """The host: the one a former attempt of this task claimed (resumed), or a new claim."""
        if inst.host and inst.host not in failed:
            async with self.compute.db.read() as session:
                rp = await self.compute.hosts.provider_of(session, inst.host)
            allocs = await self.compute.scheduler.allocations_of(self.uuid)
            if rp and rp in allocs:
                return Selection(inst.host, inst.node, rp, allocs)
        group = self.group_view = await self.group()
        spec = RequestSpec(instance_uuid=self.uuid, project_id=inst.project_id, user_id=inst.user_id,
                           flavor=self.req.flavor or inst.flavor, image=self.req.image or {},
                           availability_zone=self.req.availability_zone, group=group, hints=self.req.hints or {},
                           force_host=self.req.force_host, force_node=self.req.force_node,
                           requested_host=self.req.requested_host, requested_node=self.req.requested_node,
                           ignore_hosts=set(failed))
        if self.req.force_host and failed:
            raise NoValidHost()  # a forced host that failed: there is no other
        return await self.compute.scheduler.schedule(spec)

    async def group(self) -> Any:
        if not self.req.group_id:
            return None
        from mcloud.compute.service import Caller

        caller = Caller.internal(self.req.project_id, self.req.user_id)
        async with self.compute.db.read() as session:
            return await self.compute.resources.group_for_boot(session, caller, self.req.group_id)

    async def claim_host(self, inst: Instance, sel: Selection) -> Instance:
        """Write host, node and zone, after the server group's late check (Nova's
        ``_validate_instance_group_policy``): the members' rows are locked, so two members
        placed at once see each other."""
        group = self.group_view if self.group_view is not None else await self.group()
        members = sorted(set(getattr(group, "members", None) or []) | {self.uuid})
        zone = inst.availability_zone or sel.zone
        if not zone:
            async with self.compute.db.read() as session:
                states = await self.compute.hosts.candidates_state(session)
            zone = getattr(states.get(sel.host), "az", None) or self.compute.config.default_availability_zone
        async with self.compute.db.write() as session:
            q = sa.select(Instance).where(Instance.uuid.in_(members)).order_by(Instance.id)
            if not self.compute.db.is_sqlite:
                q = q.with_for_update()
            rows = {r.uuid: r for r in (await session.execute(q)).scalars()}
            row = rows.get(self.uuid)
            if row is None or row.deleted or row.task_state == st.DELETING:
                raise Stop()
            policy = Scheduler._group_policy(group)
            if policy in ("affinity", "anti-affinity"):
                counts: dict[str, int] = {}
                for u, r in rows.items():
                    if u != self.uuid and r.host and not r.deleted:
                        counts[r.host] = counts.get(r.host, 0) + 1
                if not Scheduler.group_allows(group, sel.host, counts):
                    what = "Anti-affinity" if policy == "anti-affinity" else "Affinity"
                    raise Reschedule(f"{what} instance group policy was violated.")
            row.host, row.node, row.launched_on = sel.host, sel.node, sel.host
            row.availability_zone = zone
            row.task_state = st.NETWORKING
            row.updated_at = now()
            await session.flush()
            session.expunge(row)
            return row

    async def networking(self, inst: Instance) -> Instance:
        networks = self.req.networks if isinstance(self.req.networks, list) else []
        await self.c.allocate_ports(inst, list(networks), list(self.req.security_groups or []), inst.host or "")
        row = await self.c.update(self.uuid, task_state=st.SPAWNING)
        if row is None or row.deleted or row.task_state == st.DELETING:
            raise Stop()
        return row

    async def spawn(self, inst: Instance, attempt: int) -> dict[str, Any]:
        from mcloud.compute.hosts import HostOpFailed, HostTimeout, missing_boot_images

        from mcloud.compute.conductor_volumes import prepare_volumes

        await prepare_volumes(self.c, inst)  # a volume that cannot be made aborts the build
        payload = await self.c.instance_payload(inst)
        missing_boot_images(payload.get("image"))  # no host can boot it: the build aborts
        try:
            return await self.c.host_op(self.ctx.id, f"spawn-{attempt}", inst.host or "", "spawn", self.uuid,
                                        payload, SPAWN_TIMEOUT)
        except (HostOpFailed, HostTimeout) as exc:
            raise Reschedule(_message(exc)) from exc

    async def unwind(self, inst: Instance, host: str, failed: list[str], exc: Reschedule) -> Instance:
        """A failed attempt: its host cleans up, its ports and allocation go, the fault is kept,
        and the instance is scheduling again."""
        from mcloud.compute.hosts import HostOpFailed, HostTimeout

        await self._finish_event("Error", exc)
        current = await self.c.load(self.uuid) or inst
        if current.host:
            try:
                await self.c.host_op(self.ctx.id, f"cleanup-{len(failed)}", host, "destroy", self.uuid, {}, 60)
            except (HostOpFailed, HostTimeout) as err:
                log.warning("cleanup of %s on %s failed: %s", self.uuid, host, err)
        await self.c.release_ports(current)
        await self.compute.scheduler.release(self.uuid)
        async with self.compute.db.write() as session:
            row = await self.c._row(session, self.uuid, lock=True)
            if row is None or row.deleted or row.task_state == st.DELETING:
                raise Stop()
            await self.compute.record_fault(session, row, _message(exc), 500, host)
            row.host = row.node = None
            row.availability_zone = self.req.availability_zone
            row.task_state = st.SCHEDULING
            row.system_metadata = {**(row.system_metadata or {}), "failed_hosts": list(failed)}
            row.updated_at = now()
            await session.flush()
            session.expunge(row)
            return row

    async def finish(self, inst: Instance, result: dict[str, Any]) -> dict[str, Any]:
        async with self.compute.db.write() as session:
            row = await self.c._row(session, self.uuid, lock=True)
            if row is None or row.deleted or row.task_state == st.DELETING:
                raise Stop()
            row.vm_state = st.ACTIVE
            row.task_state = None
            row.power_state = int(result.get("power_state", st.RUNNING))
            row.launched_at = now()
            row.updated_at = now()
            await self.compute.action_event(session, self.uuid, self.rid, COMPUTE_EVENT, "Success", row.host)
            self.open_event = None
        return {"host": inst.host}

    async def fail(self, inst: Instance, reason: Any, details: str = "", exc: BaseException | None = None) -> dict[str, Any]:
        """ERROR with a fault; the host's copy, the ports and the allocation released."""
        from mcloud.compute.hosts import HostOpFailed, HostTimeout

        await self._finish_event("Error", exc)
        current = await self.c.load(self.uuid) or inst
        if current.host and await self.c.host_is_up(current.host):
            try:
                await self.c.host_op(self.ctx.id, "fail-cleanup", current.host, "destroy", self.uuid, {}, 60)
            except (HostOpFailed, HostTimeout) as err:
                log.warning("cleanup of %s on %s failed: %s", self.uuid, current.host, err)
        try:
            await self.c.release_all(current)
        except Exception:  # noqa: BLE001 (the ERROR state must be written even so)
            log.exception("releasing what %s held failed", self.uuid)
        async with self.compute.db.write() as session:
            row = await self.c._row(session, self.uuid, lock=True)
            if row is None or row.deleted or row.task_state == st.DELETING:
                return {"stopped": "deleted"}
            row.vm_state = st.ERROR
            row.task_state = None
            row.power_state = st.NOSTATE
            row.host = row.node = None
            row.updated_at = now()
            fault = await self.compute.record_fault(session, row, reason if not isinstance(reason, str) else reason,
                                                    500, current.host)
            if details and not fault.details:
                fault.details = details
        return {"error": _message(reason) if isinstance(reason, BaseException) else str(reason)}

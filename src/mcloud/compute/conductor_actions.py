"""The action task (``compute.action``): delete, and the actions that are one host operation
(power, pause, suspend, reboot, rescue), each to Nova's end state; the other actions are in
conductor_moves.py.

A failed one-operation action does what Nova's ``reverts_task_state`` and ``wrap_instance_fault``
do: the task state goes back to None, the vm_state stays, a fault is recorded and the action's
event (and so the action) is marked "Error"."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from mcloud.compute import states as st
from mcloud.compute.conductor import OP_TIMEOUT, SHUTDOWN_TIMEOUT, ActionFailed, Conductor, _message
from mcloud.compute.models import Instance, Migration, now
from mcloud.core.tasks import TaskContext

log = logging.getLogger("mcloud.compute.conductor")


@dataclasses.dataclass(frozen=True)
class OneOp:
    """An action made of one host operation."""

    event: str
    op: str
    vm_state: str
    power_state: int
    #: whether the op's payload is the instance payload (op keys merged into it)
    spec: bool = False
    payload: Callable[[dict[str, Any]], dict[str, Any]] | None = None


ONE_OP: dict[str, OneOp] = {
    "stop": OneOp("compute_stop_instance", "power_off", st.STOPPED, st.SHUTDOWN,
                  payload=lambda p: {"timeout": int(p.get("timeout", SHUTDOWN_TIMEOUT))}),
    "start": OneOp("compute_start_instance", "power_on", st.ACTIVE, st.RUNNING, spec=True),
    "reboot": OneOp("compute_reboot_instance", "reboot", st.ACTIVE, st.RUNNING,
                    payload=lambda p: {"hard": str(p.get("type", "SOFT")).upper() == "HARD"}),
    "pause": OneOp("compute_pause_instance", "pause", st.PAUSED, st.POWER_PAUSED),
    "unpause": OneOp("compute_unpause_instance", "unpause", st.ACTIVE, st.RUNNING),
    "suspend": OneOp("compute_suspend_instance", "suspend", st.SUSPENDED, st.SHUTDOWN),
    "resume": OneOp("compute_resume_instance", "resume", st.ACTIVE, st.RUNNING, spec=True),
    "rescue": OneOp("compute_rescue_instance", "rescue", st.RESCUED, st.RUNNING, spec=True),
    "unrescue": OneOp("compute_unrescue_instance", "unrescue", st.ACTIVE, st.RUNNING, spec=True),
}


async def run_action(c: Conductor, ctx: TaskContext) -> dict[str, Any]:
    p = ctx.payload
    uuid, action = p["instance_uuid"], p["action"]
    params, rid = dict(p.get("params") or {}), p.get("request_id") or ""
    inst = await c.load(uuid)
    if inst is None:
        return {"skipped": "no such server"}
    if action == "delete":
        return await delete(c, ctx, inst, rid)
    if inst.deleted:
        return {"skipped": "the server is deleted"}
    if action in ONE_OP:
        return await one_op(c, ctx, inst, action, params, rid)
    from mcloud.compute import conductor_volumes  # noqa: F401,PLC0415 (its handlers join MOVES)
    from mcloud.compute.conductor_moves import MOVES

    handler = MOVES.get(action)
    if handler is None:
        log.warning("action %s of %s is not known to the conductor", action, uuid)
        await c.update(uuid, task_state=None)
        return {"skipped": f"unknown action {action}"}
    return await handler(c, ctx, inst, params, rid)


async def one_op(c: Conductor, ctx: TaskContext, inst: Instance, action: str, params: dict[str, Any],
                 rid: str) -> dict[str, Any]:
    from mcloud.compute.hosts import HostOpFailed, HostTimeout

    spec = ONE_OP[action]
    await c.event(inst.uuid, rid, spec.event, None, inst.host)
    payload: dict[str, Any] = spec.payload(params) if spec.payload else {}
    try:
        if not inst.host:
            raise ActionFailed(f"Instance {inst.uuid} is not on a host.")
        if spec.spec:
            payload = {**await c.instance_payload(inst), **payload}
        rescue_image = params.get("rescue_image_ref") or params.get("rescue_image_id")
        if action == "rescue" and rescue_image:
            payload["rescue_image"] = await c.compute.hosts.image_payload(rescue_image)
        result = await c.host_op(ctx.id, action, inst.host, spec.op, inst.uuid, payload, OP_TIMEOUT)
    except (HostOpFailed, HostTimeout, ActionFailed) as exc:
        await action_failed(c, inst, rid, spec.event, exc)
        return {"error": _message(exc)}
    async with c.compute.db.write() as session:
        row = await c._row(session, inst.uuid, lock=True)
        if row is None or row.deleted:
            return {}
        if action == "rescue":
            row.old_vm_state = row.vm_state
        row.vm_state = spec.vm_state
        row.task_state = None
        row.power_state = int(result.get("power_state", spec.power_state))
        if action == "unrescue":
            row.old_vm_state = None
        row.updated_at = now()
        await c.compute.action_event(session, inst.uuid, rid, spec.event, "Success", inst.host)
    return {"vm_state": spec.vm_state}


async def action_failed(c: Conductor, inst: Instance, rid: str, event: str, exc: BaseException,
                        vm_state: str | None = None) -> None:
    """Nova's failure of an action: task state back to None (vm_state given: that one), a fault,
    the event (and action) in error."""
    import traceback as tb

    async with c.compute.db.write() as session:
        row = await c._row(session, inst.uuid, lock=True)
        if row is None or row.deleted:
            return
        row.task_state = None
        if vm_state is not None:
            row.vm_state = vm_state
        row.updated_at = now()
        await c.compute.record_fault(session, row, exc, 500, inst.host)
        await c.compute.action_event(session, inst.uuid, rid, event, "Error", inst.host,
                                     "".join(tb.format_exception(exc)))


# ---------------------------------------------------------------------- delete

TERMINATE = "compute_terminate_instance"


async def delete(c: Conductor, ctx: TaskContext, inst: Instance, rid: str) -> dict[str, Any]:
    """Nova's terminate_instance (or the API's local delete when the host is down or there is none)."""
    from mcloud.compute.hosts import HostOpFailed, HostTimeout

    if inst.deleted:
        return {"skipped": "already deleted"}
    await c.event(inst.uuid, rid, TERMINATE, None, inst.host)
    await c.wait_for_build(inst.uuid, own_task=ctx.id)
    inst = await c.load(inst.uuid) or inst
    hosts = [inst.host] if inst.host else []
    async with c.compute.db.read() as session:
        for mig in (await session.execute(sa.select(Migration).where(
                Migration.instance_uuid == inst.uuid,
                Migration.status.notin_(("confirmed", "reverted", "error", "failed", "completed", "done"))))).scalars():
            for h in (mig.source_compute, mig.dest_compute):
                if h and h not in hosts:
                    hosts.append(h)
    for i, host in enumerate(hosts):
        if not await c.host_is_up(host):
            log.info("host %s of %s is down: deleted locally", host, inst.uuid)
            continue
        try:
            await c.host_op(ctx.id, f"destroy-{i}", host, "destroy", inst.uuid, {}, OP_TIMEOUT)
        except HostTimeout as exc:
            log.warning("destroy of %s on %s timed out (%s): deleted locally", inst.uuid, host, exc)
        except HostOpFailed as exc:
            await action_failed(c, inst, rid, TERMINATE, exc, vm_state=st.ERROR)
            return {"error": _message(exc)}
    from mcloud.compute.conductor_volumes import release_volumes  # noqa: PLC0415

    await release_volumes(c, inst)
    await c.release_all(inst)
    async with c.compute.db.write() as session:
        row = await c._row(session, inst.uuid, lock=True)
        if row is None:
            return {}
        remove = getattr(c.compute.resources, "remove_instance_from_groups", None)
        if remove is not None:
            await remove(session, inst.uuid)
        t = now()
        row.vm_state = st.DELETED
        row.task_state = None
        row.power_state = st.NOSTATE
        row.deleted = True
        row.deleted_at = t
        row.terminated_at = t
        row.updated_at = t
        await c.compute.action_event(session, inst.uuid, rid, TERMINATE, "Success", inst.host)
    return {"deleted": inst.uuid}

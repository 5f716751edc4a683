"""Actions that remake or move an instance, each to Nova's end state (nova/compute/manager.py,
nova/conductor/manager.py): rebuild, createImage (snapshot to the image service), shelve,
shelveOffload, unshelve, resize / migrate with confirmResize / revertResize, live migration and
evacuate.

Moves claim the Nova way (:meth:`Scheduler.move_claim`): the instance's allocation moves to the
migration's uuid as consumer and the instance's uuid takes the destination's; confirming (or a
finished live migration or evacuation) drops the migration's, reverting swaps them back. A move
has a ``compute_migration`` row (its type, status and hosts; a live migration's progress).

On one host (a resize to the same host) the driver's ``resize`` / ``confirm_resize`` /
``revert_resize`` do the work. Between hosts the instance is moved with the live-migration ops
(``prepare_incoming`` on the destination, ``live_migrate`` on the source, ``finish_incoming``);
a cold move runs them on the stopped instance with ``"cold": true``.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa

from mcloud.compute import states as st
from mcloud.compute.conductor import SHUTDOWN_TIMEOUT, SPAWN_TIMEOUT, ActionFailed, Conductor, _message, \
    detached, request_spec
from mcloud.compute.conductor_actions import action_failed
from mcloud.compute.models import Instance, Migration, now
from mcloud.compute.scheduler import NoValidHost, request_groups
from mcloud.core.tasks import TaskContext

log = logging.getLogger("mcloud.compute.conductor")

Handler = Callable[[Conductor, TaskContext, Instance, dict[str, Any], str], Awaitable[dict[str, Any]]]
MOVES: dict[str, Handler] = {}
#: the exceptions a host op raises (imported late: hosts.py is AGENT's)
_HOST_ERRORS: tuple[type[BaseException], ...] = ()


def handles(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for name in names:
            MOVES[name] = fn
        return fn
    return register


def host_errors() -> tuple[type[BaseException], ...]:
    global _HOST_ERRORS
    if not _HOST_ERRORS:
        from mcloud.compute.hosts import HostOpFailed, HostTimeout

        _HOST_ERRORS = (HostOpFailed, HostTimeout, ActionFailed, NoValidHost)
    return _HOST_ERRORS


async def finish(c: Conductor, inst: Instance, rid: str, event: str, event_host: str | None = None,
                 **values: Any) -> None:
    """The end state and the event's success, in one transaction."""
    async with c.compute.db.write() as session:
        row = await c._row(session, inst.uuid, lock=True)
        if row is None or row.deleted:
            return
        for k, v in values.items():
            setattr(row, k, v)
        row.task_state = values.get("task_state")
        row.updated_at = now()
        await c.compute.action_event(session, inst.uuid, rid, event, "Success", event_host or row.host)


async def power_state_of(result: dict[str, Any], default: int) -> int:
    return int(result.get("power_state", default))


# ---------------------------------------------------------------------- rebuild


@handles("rebuild")
async def rebuild(c: Conductor, ctx: TaskContext, inst: Instance, params: dict[str, Any], rid: str) -> dict[str, Any]:
    """Nova's rebuild_instance: a new root disk from the (new) image on the same host; a stopped
    server stays stopped. A failure leaves ERROR."""
    event = "compute_rebuild_instance"
    await c.event(inst.uuid, rid, event, None, inst.host)
    image = dict(params.get("image") or {})
    image_id = image.get("id") or inst.image_ref
    was_stopped = inst.vm_state == st.STOPPED
    try:
        if not inst.host:
            raise ActionFailed(f"Instance {inst.uuid} is not on a host.")
        inst = await c.update(inst.uuid, task_state=st.REBUILD_SPAWNING, image_ref=image_id) or inst
        payload = await c.instance_payload(inst, image_id=image_id)
        result = await c.host_op(ctx.id, "rebuild", inst.host, "rebuild", inst.uuid, payload, SPAWN_TIMEOUT)
        power = await power_state_of(result, st.RUNNING)
        if was_stopped:
            result = await c.host_op(ctx.id, "rebuild-stop", inst.host, "power_off", inst.uuid, {"timeout": 0})
            power = await power_state_of(result, st.SHUTDOWN)
    except host_errors() as exc:
        await action_failed(c, inst, rid, event, exc, vm_state=st.ERROR)
        return {"error": _message(exc)}
    await finish(c, inst, rid, event, vm_state=st.STOPPED if was_stopped else st.ACTIVE, power_state=power,
                 launched_at=now())
    return {"image": image_id}


# ---------------------------------------------------------------------- snapshots


async def _delete_image(c: Conductor, image_id: str) -> None:
    from mcloud.image.service import Caller as ImageCaller

    try:
        await c.compute.image.delete_image(ImageCaller(None, is_admin=True), image_id)
    except Exception as exc:  # noqa: BLE001 (gone already)
        log.info("could not delete image %s: %s", image_id, exc)


@handles("createImage", "createBackup")
async def create_image(c: Conductor, ctx: TaskContext, inst: Instance, params: dict[str, Any],
                       rid: str) -> dict[str, Any]:
    """Nova's snapshot_instance: image_pending_upload, image_uploading, the host streams the root
    disk into the queued image (which becomes saving, then active), task state None; on failure
    the image is deleted and the server keeps its state."""
    backup = params.get("backup_type") is not None
    event = "compute_backup_instance" if backup else "compute_snapshot_instance"
    image_id = params.get("image_id")
    await c.event(inst.uuid, rid, event, None, inst.host)
    try:
        if not image_id:
            raise ActionFailed("No image to upload the snapshot into.")
        if not inst.host:
            raise ActionFailed(f"Instance {inst.uuid} is not on a host.")
        await c.update(inst.uuid, task_state=st.IMAGE_PENDING_UPLOAD)
        await c.update(inst.uuid, task_state=st.IMAGE_UPLOADING)
        await c.host_op(ctx.id, "snapshot", inst.host, "snapshot", inst.uuid, {"image_id": image_id})
    except host_errors() as exc:
        if image_id:
            await _delete_image(c, image_id)
        await action_failed(c, inst, rid, event, exc)
        return {"error": _message(exc)}
    if params.get("backup_type") is not None and params.get("rotation") is not None:
        await rotate_backups(c, inst, str(params["backup_type"]), int(params["rotation"]))
    await finish(c, inst, rid, event)
    return {"image_id": image_id}


async def rotate_backups(c: Conductor, inst: Instance, backup_type: str, rotation: int) -> None:
    """Nova's _rotate_backups after a successful backup: SERVERS' rotate_backups (in
    service_servers_backup.py) deletes the oldest backups of the instance and type beyond
    ``rotation``."""
    try:
        from mcloud.compute.service_servers_backup import rotate_backups as rotate
    except ImportError:  # SERVERS' part not there: backups are kept
        log.info("no backup rotation: service_servers_backup is not built")
        return
    try:
        await rotate(c.compute, inst, backup_type, rotation)
    except Exception:  # noqa: BLE001 (a rotation that fails does not undo the backup)
        log.exception("rotating the backups of %s failed", inst.uuid)


# ---------------------------------------------------------------------- shelving


async def _shelve_image(c: Conductor, inst: Instance, image_id: str | None) -> str:
    """The image a shelve uploads into: the given one, or "<name>-shelved" made now (queued)."""
    if image_id:
        return image_id
    from mcloud.image.service import Caller as ImageCaller

    sysmeta = inst.system_metadata or {}
    props = {k: str(v) for k, v in (sysmeta.get("image_properties") or {}).items()}
    props.update({"instance_uuid": inst.uuid, "image_type": "snapshot", "user_id": inst.user_id,
                  "base_image_ref": inst.image_ref or ""})
    fields = {"name": f"{inst.name}-shelved", "disk_format": sysmeta.get("image_disk_format") or "qcow2",
              "container_format": "bare", "visibility": "private",
              "min_disk": int((inst.flavor or {}).get("root_gb") or 0)}
    async with c.compute.db.write() as session:
        image = await c.compute.image.create_image(session, ImageCaller(inst.project_id, False), fields, props, [])
        return str(image.id)


async def _offload(c: Conductor, ctx: TaskContext, inst: Instance, step: str) -> None:
    """Destroy on the host, free its allocation, unbind its ports: SHELVED_OFFLOADED."""
    if inst.host and await c.host_is_up(inst.host):
        await c.host_op(ctx.id, step, inst.host, "destroy", inst.uuid, {})
    await c.compute.scheduler.release(inst.uuid)
    await c.bind_ports(inst, list((inst.system_metadata or {}).get("ports") or []), None)


@handles("shelve")
async def shelve(c: Conductor, ctx: TaskContext, inst: Instance, params: dict[str, Any], rid: str) -> dict[str, Any]:
    """Nova's shelve_instance with shelved_offload_time 0: stop, snapshot, then offload at once."""
    event = "compute_shelve_instance"
    await c.event(inst.uuid, rid, event, None, inst.host)
    image_id = None
    try:
        if not inst.host:
            raise ActionFailed(f"Instance {inst.uuid} is not on a host.")
        from mcloud.compute.volume_backed import root_bdm  # noqa: PLC0415

        async with c.compute.db.read() as session:
            volume_backed = await root_bdm(session, inst.uuid) is not None
        # a volume-backed server keeps its disk in its volume: no image (Nova's shelve_offload)
        image_id = None if volume_backed else await _shelve_image(c, inst, params.get("image_id"))
        await c.host_op(ctx.id, "shelve-stop", inst.host, "power_off", inst.uuid, {"timeout": SHUTDOWN_TIMEOUT})
        if image_id:
            await c.update(inst.uuid, task_state=st.SHELVING_IMAGE_UPLOADING)
            await c.host_op(ctx.id, "shelve-snapshot", inst.host, "snapshot", inst.uuid, {"image_id": image_id})
        sysmeta = {**(inst.system_metadata or {}), "shelved_host": inst.host, "shelved_at": now().isoformat()}
        if image_id:
            sysmeta["shelved_image_id"] = image_id
        inst = await c.update(inst.uuid, task_state=st.SHELVING_OFFLOADING, system_metadata=sysmeta) or inst
        await _offload(c, ctx, inst, "shelve-offload")
    except host_errors() as exc:
        if image_id and not params.get("image_id"):
            await _delete_image(c, image_id)
        await action_failed(c, inst, rid, event, exc)
        return {"error": _message(exc)}
    await finish(c, inst, rid, event, inst.host, vm_state=st.SHELVED_OFFLOADED, power_state=st.NOSTATE,
                 host=None, node=None)
    return {"image_id": image_id}


@handles("shelveOffload")
async def shelve_offload(c: Conductor, ctx: TaskContext, inst: Instance, params: dict[str, Any],
                         rid: str) -> dict[str, Any]:
    event = "compute_shelve_offload_instance"
    await c.event(inst.uuid, rid, event, None, inst.host)
    try:
        await _offload(c, ctx, inst, "offload")
    except host_errors() as exc:
        await action_failed(c, inst, rid, event, exc)
        return {"error": _message(exc)}
    await finish(c, inst, rid, event, inst.host, vm_state=st.SHELVED_OFFLOADED, power_state=st.NOSTATE,
                 host=None, node=None)
    return {}


@handles("unshelve")
async def unshelve(c: Conductor, ctx: TaskContext, inst: Instance, params: dict[str, Any], rid: str) -> dict[str, Any]:
    """Nova's unshelve: a shelved server on its host is powered on; an offloaded one is scheduled
    again (zone or host as asked), claimed, its ports bound there, spawned from the shelved image
    (which is deleted afterwards). A failure leaves it SHELVED_OFFLOADED with a fault."""
    sysmeta = dict(inst.system_metadata or {})
    image_id = sysmeta.get("shelved_image_id")
    if inst.vm_state == st.SHELVED and inst.host:
        event = "compute_unshelve_instance"
        await c.event(inst.uuid, rid, event, None, inst.host)
        try:
            result = await c.host_op(ctx.id, "unshelve-start", inst.host, "power_on", inst.uuid,
                                     await c.instance_payload(inst))
        except host_errors() as exc:
            await action_failed(c, inst, rid, event, exc)
            return {"error": _message(exc)}
        await finish(c, inst, rid, event, vm_state=st.ACTIVE, power_state=await power_state_of(result, st.RUNNING),
                     system_metadata=_unshelved(sysmeta))
        if image_id:
            await _delete_image(c, image_id)
        return {}
    await c.event(inst.uuid, rid, "conductor_unshelve_instance")
    host = None
    try:
        spec = request_spec(inst, availability_zone=params.get("availability_zone")
                            or inst.requested_availability_zone, requested_host=params.get("host"))
        sel = await c.compute.scheduler.schedule(spec)
        host = sel.host
        await c.event(inst.uuid, rid, "conductor_unshelve_instance", "Success")
        await c.event(inst.uuid, rid, "compute_unshelve_instance", None, host)
        inst = await c.update(inst.uuid, host=sel.host, node=sel.node, task_state=st.SPAWNING) or inst
        await c.bind_ports(inst, list(sysmeta.get("ports") or []), sel.host)
        from mcloud.compute.conductor_volumes import connect_offloaded  # noqa: PLC0415

        await connect_offloaded(c, inst)  # the volumes attached while it was offloaded
        payload = await c.instance_payload(inst, image_id=image_id or inst.image_ref)
        result = await c.host_op(ctx.id, "unshelve-spawn", sel.host, "spawn", inst.uuid, payload, SPAWN_TIMEOUT)
    except host_errors() as exc:
        await c.compute.scheduler.release(inst.uuid)
        await c.bind_ports(inst, list(sysmeta.get("ports") or []), None)
        await c.update(inst.uuid, host=None, node=None)
        await action_failed(c, inst, rid, "compute_unshelve_instance" if host else "conductor_unshelve_instance",
                            exc, vm_state=st.SHELVED_OFFLOADED)
        return {"error": _message(exc)}
    await finish(c, inst, rid, "compute_unshelve_instance", vm_state=st.ACTIVE,
                 power_state=await power_state_of(result, st.RUNNING), launched_at=now(),
                 system_metadata=_unshelved(sysmeta))
    if image_id:
        await _delete_image(c, image_id)
    return {"host": host}


def _unshelved(sysmeta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in sysmeta.items() if k not in ("shelved_image_id", "shelved_host", "shelved_at")}


# ---------------------------------------------------------------------- migrations (rows)


async def migration_for(c: Conductor, inst: Instance, kind: str, **values: Any) -> Migration:
    """The instance's migration row of this move: one SERVERS made (status accepted/queued/
    pre-migrating, not yet hosted), or a new one."""
    async with c.compute.db.write() as session:
        row = (await session.execute(sa.select(Migration).where(
            Migration.instance_uuid == inst.uuid, Migration.migration_type == kind,
            Migration.status.in_(("accepted", "queued", "pre-migrating", "preparing")))
            .order_by(Migration.id.desc()).limit(1))).scalar()
        if row is None:
            row = Migration(uuid=str(uuidlib.uuid4()), instance_uuid=inst.uuid, project_id=inst.project_id,
                            user_id=inst.user_id, migration_type=kind, status="pre-migrating",
                            source_compute=inst.host, source_node=inst.node, created_at=now())
            session.add(row)
        return await detached(session, row, values)


async def set_migration(c: Conductor, migration_uuid: str, **values: Any) -> None:
    async with c.compute.db.write() as session:
        row = (await session.execute(sa.select(Migration).where(Migration.uuid == migration_uuid))).scalar()
        if row is not None:
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_at = now()


async def migration_status(c: Conductor, migration_uuid: str) -> str | None:
    async with c.compute.db.read() as session:
        return (await session.execute(sa.select(Migration.status).where(Migration.uuid == migration_uuid))).scalar()


async def current_migration(c: Conductor, inst: Instance, status: str = "finished") -> Migration | None:
    async with c.compute.db.read() as session:
        row = (await session.execute(sa.select(Migration).where(
            Migration.instance_uuid == inst.uuid, Migration.status == status,
            Migration.migration_type.in_(("resize", "migration"))).order_by(Migration.id.desc()).limit(1))).scalar()
        if row is not None:
            session.expunge(row)
        return row


async def move_between(c: Conductor, ctx: TaskContext, inst: Instance, source: str, dest: str, payload: dict[str, Any],
                       migration_uuid: str, step: str, cold: bool) -> dict[str, Any]:
    """The instance from ``source`` to ``dest`` with the live-migration ops (``cold``: stopped)."""
    extra = {"migration_uuid": migration_uuid, **({"cold": True} if cold else {})}
    target = await c.host_op(ctx.id, f"{step}-prepare", dest, "prepare_incoming", inst.uuid,
                             {**payload, **extra, "source_host": source})
    if not cold and await migration_status(c, migration_uuid) == "cancelled":  # aborted while queued
        await c.host_op(ctx.id, f"{step}-abort", dest, "abort_incoming", inst.uuid, dict(extra))
        raise ActionFailed("The live migration was cancelled.")
    if not cold:  # the ports are wanted on both chassis until the guest runs on the destination
        await c.set_port_profiles(inst, {"migrating_to": dest})
    try:
        result = await c.host_op(ctx.id, f"{step}-migrate", source, "live_migrate", inst.uuid,
                                 {"target": target, **extra, "dest_host": dest}, SPAWN_TIMEOUT)
    except host_errors():
        if not cold:
            await c.set_port_profiles(inst, {})
        try:
            await c.host_op(ctx.id, f"{step}-abort", dest, "abort_incoming", inst.uuid, dict(extra))
        except host_errors() as err:
            log.warning("abort_incoming of %s on %s failed: %s", inst.uuid, dest, err)
        raise
    progress = {k: result[k] for k in ("memory_total", "memory_processed", "memory_remaining", "disk_total",
                                       "disk_processed", "disk_remaining") if k in result}
    if progress:
        await set_migration(c, migration_uuid, **progress)
    if not cold and "downtime_ms" in result:  # not a Nova column: the operator reads it here
        log.info("live migration %s of instance %s from %s to %s: downtime %s ms, total %s ms, memory %s bytes, "
                 "disk %s bytes", migration_uuid, inst.uuid, source, dest, result["downtime_ms"],
                 result.get("total_time_ms"), result.get("memory_processed"), result.get("disk_processed"))
    await c.bind_ports(inst, list((inst.system_metadata or {}).get("ports") or []), dest)
    if not cold:
        await c.set_port_profiles(inst, {})
    return await c.host_op(ctx.id, f"{step}-finish", dest, "finish_incoming", inst.uuid, dict(extra))


# ---------------------------------------------------------------------- resize and cold migration


@handles("resize", "migrate")
async def resize(c: Conductor, ctx: TaskContext, inst: Instance, params: dict[str, Any], rid: str) -> dict[str, Any]:
    """Nova's resize / cold migration: a move claim (new flavor, the source excluded unless a
    resize may stay), the instance stopped, moved or resized, started again if it ran: RESIZED
    (VERIFY_RESIZE) with the migration ``finished``. A failure: the claim reverted, ERROR."""
    conductor_event = "conductor_migrate_server"
    new_flavor = dict(params.get("flavor") or inst.flavor)
    kind = "resize" if params.get("flavor") else "migration"
    was_active = inst.vm_state == st.ACTIVE
    source = inst.host
    await c.event(inst.uuid, rid, conductor_event)
    mig = None
    event = conductor_event
    where, where_node = source, inst.node  # where the guest is
    try:
        if not source:
            raise ActionFailed(f"Instance {inst.uuid} is not on a host.")
        same_ok = kind == "resize" and c.config.allow_resize_to_same_host
        spec = request_spec(inst, flavor=new_flavor, moving=True, requested_host=params.get("host"),
                            ignore_hosts=set() if same_ok else {source})
        mig = await migration_for(c, inst, kind, old_flavor_id=str(inst.flavor.get("id")),
                                  new_flavor_id=str(new_flavor.get("id")))
        sel = await c.compute.scheduler.move_claim(spec, mig.uuid)
        await set_migration(c, mig.uuid, dest_compute=sel.host, dest_node=sel.node, dest_host=sel.host,
                            status="migrating")
        await c.event(inst.uuid, rid, conductor_event, "Success")
        event = "compute_resize_instance"
        await c.event(inst.uuid, rid, event, None, source)
        inst = await c.update(inst.uuid, task_state=st.RESIZE_MIGRATING, old_flavor=inst.flavor,
                              new_flavor=new_flavor, old_vm_state=inst.vm_state) or inst
        if was_active:
            await c.host_op(ctx.id, "stop", source, "power_off", inst.uuid, {"timeout": SHUTDOWN_TIMEOUT})
        payload = await c.instance_payload(inst, flavor=new_flavor)
        if sel.host == source:
            await c.host_op(ctx.id, "resize", source, "resize", inst.uuid, payload, SPAWN_TIMEOUT)
        else:
            await move_between(c, ctx, inst, source, sel.host, payload, mig.uuid, "move", cold=True)
            where, where_node = sel.host, sel.node
            if kind == "resize":
                await c.host_op(ctx.id, "resize", sel.host, "resize", inst.uuid, payload, SPAWN_TIMEOUT)
        await set_migration(c, mig.uuid, status="post-migrating")
        await c.event(inst.uuid, rid, event, "Success", source)
        event = "compute_finish_resize"
        await c.event(inst.uuid, rid, event, None, sel.host)
        inst = await c.update(inst.uuid, host=sel.host, node=sel.node, task_state=st.RESIZE_FINISH,
                              flavor=new_flavor) or inst
        power = st.SHUTDOWN
        if was_active:
            result = await c.host_op(ctx.id, "start", sel.host, "power_on", inst.uuid,
                                     await c.instance_payload(inst, flavor=new_flavor))
            power = await power_state_of(result, st.RUNNING)
    except host_errors() as exc:
        if mig is not None:
            if where == source:  # the claim goes back to the source
                await c.compute.scheduler.revert_move(inst.uuid, mig.uuid, inst.project_id, inst.user_id)
            else:  # the guest is on the destination already, with its old flavor: claimed there as such
                groups, _ = request_groups(inst.old_flavor or inst.flavor)
                await c.compute.scheduler.set_allocations(inst.uuid, {sel.provider_uuid: groups[""].resources},
                                                          inst.project_id, inst.user_id)
                await c.compute.scheduler.confirm_move(mig.uuid)
            await set_migration(c, mig.uuid, status="error")
        await c.update(inst.uuid, host=where, node=where_node, flavor=(inst.old_flavor or inst.flavor),
                       new_flavor=None)
        failed_state = st.ERROR if event != conductor_event else inst.vm_state
        await action_failed(c, inst, rid, event, exc, vm_state=failed_state)
        return {"error": _message(exc)}
    await set_migration(c, mig.uuid, status="finished")
    await finish(c, inst, rid, event, sel.host, vm_state=st.RESIZED, power_state=power)
    return {"host": sel.host, "migration": mig.uuid}


@handles("confirmResize")
async def confirm_resize(c: Conductor, ctx: TaskContext, inst: Instance, params: dict[str, Any],
                         rid: str) -> dict[str, Any]:
    """Nova's confirm_resize: the old disk goes, the source's allocation (the migration's) is
    dropped, back to the state before the resize (stopped or active)."""
    event = "compute_confirm_resize"
    await c.event(inst.uuid, rid, event, None, inst.host)
    mig = await current_migration(c, inst)
    try:
        if mig is not None:
            await set_migration(c, mig.uuid, status="confirming")
            if mig.migration_type == "resize" and inst.host:
                await c.host_op(ctx.id, "confirm", inst.host, "confirm_resize", inst.uuid, {})
            await c.compute.scheduler.confirm_move(mig.uuid)
            await set_migration(c, mig.uuid, status="confirmed")
    except host_errors() as exc:
        await action_failed(c, inst, rid, event, exc, vm_state=st.ERROR)
        return {"error": _message(exc)}
    back = st.STOPPED if inst.old_vm_state == st.STOPPED else st.ACTIVE
    await finish(c, inst, rid, event, vm_state=back, old_flavor=None, new_flavor=None, old_vm_state=None)
    return {}


@handles("revertResize")
async def revert_resize(c: Conductor, ctx: TaskContext, inst: Instance, params: dict[str, Any],
                        rid: str) -> dict[str, Any]:
    """Nova's revert_resize: back to the old flavor on the source host, the allocations swapped
    back, the state from before the resize."""
    event = "compute_revert_resize"
    await c.event(inst.uuid, rid, event, None, inst.host)
    mig = await current_migration(c, inst)
    old_flavor = inst.old_flavor or inst.flavor
    was_active = inst.old_vm_state != st.STOPPED
    source = mig.source_compute if mig is not None else inst.host
    dest = inst.host
    try:
        if mig is None or not source or not dest:
            raise ActionFailed(f"No resize of instance {inst.uuid} to revert.")
        await set_migration(c, mig.uuid, status="reverting")
        if inst.power_state == st.RUNNING:
            await c.host_op(ctx.id, "stop", dest, "power_off", inst.uuid, {"timeout": 0})
        payload = await c.instance_payload(inst, flavor=old_flavor)
        if source == dest:
            await c.host_op(ctx.id, "revert", dest, "revert_resize", inst.uuid, payload, SPAWN_TIMEOUT)
        else:
            if mig.migration_type == "resize":
                await c.host_op(ctx.id, "revert", dest, "revert_resize", inst.uuid, payload, SPAWN_TIMEOUT)
            await move_between(c, ctx, inst, dest, source, payload, mig.uuid, "back", cold=True)
        await c.compute.scheduler.revert_move(inst.uuid, mig.uuid, inst.project_id, inst.user_id)
        inst = await c.update(inst.uuid, host=source, node=mig.source_node or source, flavor=old_flavor) or inst
        power = st.SHUTDOWN
        if was_active:
            result = await c.host_op(ctx.id, "start", source, "power_on", inst.uuid,
                                     await c.instance_payload(inst, flavor=old_flavor))
            power = await power_state_of(result, st.RUNNING)
    except host_errors() as exc:
        await action_failed(c, inst, rid, event, exc, vm_state=st.ERROR)
        return {"error": _message(exc)}
    await set_migration(c, mig.uuid, status="reverted")
    await finish(c, inst, rid, event, source, vm_state=st.ACTIVE if was_active else st.STOPPED,
                 power_state=power, old_flavor=None, new_flavor=None, old_vm_state=None)
    return {}


# ---------------------------------------------------------------------- live migration


@handles("live-migration")
async def live_migration(c: Conductor, ctx: TaskContext, inst: Instance, params: dict[str, Any],
                         rid: str) -> dict[str, Any]:
    """Nova's live migration: a move claim on the destination (the requested host, or the
    scheduler's), prepare_incoming there, live_migrate on the source, ports bound to the
    destination, finish_incoming; the source's allocation is dropped and the migration
    ``completed``. A failure: the claim reverted, the migration ``error``, the server unchanged
    on its source."""
    await c.event(inst.uuid, rid, "conductor_live_migrate_instance")
    source = inst.host
    mig = None
    event = "conductor_live_migrate_instance"
    try:
        if not source:
            raise ActionFailed(f"Instance {inst.uuid} is not on a host.")
        host = params.get("host")
        forced = bool(params.get("force")) and host
        spec = request_spec(inst, moving=True, ignore_hosts={source},
                            **({"force_host": host} if forced else {"requested_host": host}))
        mig = await migration_for(c, inst, "live-migration", status="preparing",
                                  old_flavor_id=str(inst.flavor.get("id")), new_flavor_id=str(inst.flavor.get("id")))
        sel = await c.compute.scheduler.move_claim(spec, mig.uuid)
        if sel.host == source:
            raise NoValidHost("The destination is the instance's own host.")
        await set_migration(c, mig.uuid, dest_compute=sel.host, dest_node=sel.node, dest_host=sel.host)
        await c.event(inst.uuid, rid, event, "Success")
        event = "compute_live_migration"
        await c.event(inst.uuid, rid, event, None, source)
        await set_migration(c, mig.uuid, status="running")
        payload = await c.instance_payload(inst)
        await move_between(c, ctx, inst, source, sel.host, payload, mig.uuid, "live", cold=False)
        await c.compute.scheduler.confirm_move(mig.uuid)
    except host_errors() as exc:
        if mig is not None:
            await c.compute.scheduler.revert_move(inst.uuid, mig.uuid, inst.project_id, inst.user_id)
            cancelled = await migration_status(c, mig.uuid) == "cancelled"
            await set_migration(c, mig.uuid, status="cancelled" if cancelled else "error")
            await c.bind_ports(inst, list((inst.system_metadata or {}).get("ports") or []), source)
        await action_failed(c, inst, rid, event, exc)
        return {"error": _message(exc)}
    await set_migration(c, mig.uuid, status="completed")
    await finish(c, inst, rid, event, source, host=sel.host, node=sel.node)
    return {"host": sel.host}


@handles("live-migration-abort", "live_migration_cancel")
async def live_migration_abort(c: Conductor, ctx: TaskContext, inst: Instance, params: dict[str, Any],
                               rid: str) -> dict[str, Any]:
    """Nova's abort of a live migration (2.24, queued/preparing ones from 2.65): a migration that
    has not started streaming is cancelled (the live-migration task sees it before
    ``live_migrate`` and rolls back: aborted on the destination, the claim back on the source).
    One already streaming cannot be stopped by mCloud's drivers: the event says so; the
    server's task state is the live migration's and is left alone."""
    event = "compute_live_migration_abort"
    await c.event(inst.uuid, rid, event, None, inst.host)
    async with c.compute.db.write() as session:
        q = sa.select(Migration).where(Migration.instance_uuid == inst.uuid,
                                       Migration.migration_type == "live-migration")
        mid = params.get("migration_id")
        q = q.where(Migration.id == int(mid)) if str(mid or "").isdigit() else \
            q.where(Migration.uuid == str(mid)) if mid else q.order_by(Migration.id.desc()).limit(1)
        row = (await session.execute(q)).scalar()
        cancellable = row is not None and row.status in ("accepted", "queued", "preparing", "pre-migrating")
        if cancellable:
            row.status = "cancelled"
            row.updated_at = now()
    if not cancellable:
        exc = ActionFailed(f"Migration {mid} of instance {inst.uuid} can no longer be aborted.")
        await c.event(inst.uuid, rid, event, "Error", inst.host, exc)
        return {"error": str(exc)}
    await c.event(inst.uuid, rid, event, "Success", inst.host)
    return {"cancelled": row.uuid}


# ---------------------------------------------------------------------- evacuate


@handles("evacuate")
async def evacuate(c: Conductor, ctx: TaskContext, inst: Instance, params: dict[str, Any], rid: str) -> dict[str, Any]:
    """Nova's evacuate (rebuild elsewhere when the source is down): a move claim away from the
    source, the ports bound to the destination, a spawn there; ACTIVE (or STOPPED when asked:
    2.95's targetState), the migration ``done``, the source's allocation dropped (the source
    cleans up its copy when it comes back)."""
    await c.event(inst.uuid, rid, "rebuild_server")
    source = inst.host
    mig = None
    event = "rebuild_server"
    if source and await c.host_is_up(source):  # Nova's API refuses it; the server is left as it is
        await action_failed(c, inst, rid, event, ActionFailed(f"Compute service of {source} is still in use."))
        return {"error": "source up"}
    try:
        host = params.get("host")
        forced = bool(params.get("force")) and host
        spec = request_spec(inst, moving=True, ignore_hosts={source} if source else set(),
                            **({"force_host": host} if forced else {"requested_host": host}))
        mig = await migration_for(c, inst, "evacuation", status="pre-migrating")
        sel = await c.compute.scheduler.move_claim(spec, mig.uuid)
        await set_migration(c, mig.uuid, dest_compute=sel.host, dest_node=sel.node, dest_host=sel.host,
                            status="migrating")
        await c.event(inst.uuid, rid, event, "Success")
        event = "compute_rebuild_instance"
        await c.event(inst.uuid, rid, event, None, sel.host)
        inst = await c.update(inst.uuid, host=sel.host, node=sel.node, task_state=st.REBUILD_SPAWNING) or inst
        await c.bind_ports(inst, list((inst.system_metadata or {}).get("ports") or []), sel.host)
        result = await c.host_op(ctx.id, "evacuate-spawn", sel.host, "spawn", inst.uuid,
                                 await c.instance_payload(inst), SPAWN_TIMEOUT)
        power = await power_state_of(result, st.RUNNING)
        stopped = str(params.get("target_state") or "").lower() == "stopped" or inst.vm_state == st.STOPPED
        if stopped:
            result = await c.host_op(ctx.id, "evacuate-stop", sel.host, "power_off", inst.uuid, {"timeout": 0})
            power = await power_state_of(result, st.SHUTDOWN)
        await c.compute.scheduler.confirm_move(mig.uuid)
    except host_errors() as exc:
        if mig is not None:
            await c.compute.scheduler.revert_move(inst.uuid, mig.uuid, inst.project_id, inst.user_id)
            await set_migration(c, mig.uuid, status="error")
        await c.update(inst.uuid, host=source)
        await action_failed(c, inst, rid, event, exc, vm_state=st.ERROR)
        return {"error": _message(exc)}
    await set_migration(c, mig.uuid, status="done")
    await finish(c, inst, rid, event, sel.host, vm_state=st.STOPPED if stopped else st.ACTIVE, power_state=power,
                 launched_at=now())
    return {"host": sel.host}


# ---------------------------------------------------------------------- interfaces


@handles("attach_interface")
async def attach_interface(c: Conductor, ctx: TaskContext, inst: Instance, params: dict[str, Any],
                           rid: str) -> dict[str, Any]:
    """A port made on the network (or the one given) bound to the host and hot-plugged."""
    event = "compute_attach_interface"
    await c.event(inst.uuid, rid, event, None, inst.host)
    records = list((inst.system_metadata or {}).get("ports") or [])
    try:
        if not inst.host:
            raise ActionFailed(f"Instance {inst.uuid} is not on a host.")
        req = {"network_id": params.get("network_id"), "port_id": params.get("port_id"),
               "fixed_ip": params.get("fixed_ip"), "tag": params.get("tag")}
        records = await c.allocate_ports(inst, [*({} for _ in records), req], [], inst.host)
        payload = await c.instance_payload(inst, port_ids=[r["port_id"] for r in records])
        vif = next(v for v in payload.get("vifs", []) if v.get("port_id") == records[-1]["port_id"])
        await c.host_op(ctx.id, "attach", inst.host, "attach_interface", inst.uuid, {"vif": vif})
    except (*host_errors(), StopIteration) as exc:
        await action_failed(c, inst, rid, event, exc)
        return {"error": _message(exc)}
    await finish(c, inst, rid, event)
    return {"port_id": records[-1]["port_id"]}


@handles("detach_interface")
async def detach_interface(c: Conductor, ctx: TaskContext, inst: Instance, params: dict[str, Any],
                           rid: str) -> dict[str, Any]:
    """Unplugged on the host; a port the server made is deleted, a given one unbound."""
    from mcloud.network.service import Caller as NetCaller

    event = "compute_detach_interface"
    await c.event(inst.uuid, rid, event, None, inst.host)
    port_id = params.get("port_id")
    records = list((inst.system_metadata or {}).get("ports") or [])
    rec = next((r for r in records if r["port_id"] == port_id), {"port_id": port_id, "made": False})
    try:
        if inst.host:
            await c.host_op(ctx.id, "detach", inst.host, "detach_interface", inst.uuid, {"port_id": port_id})
    except host_errors() as exc:
        await action_failed(c, inst, rid, event, exc)
        return {"error": _message(exc)}
    if rec.get("made"):
        async with c.compute.network.write() as session:
            await c.compute.network.delete_port_internal(session, port_id)
    else:
        try:
            await c.compute.network.update_port(NetCaller.internal(), port_id, {
                "binding:host_id": "", "device_id": "", "device_owner": ""})
        except Exception as exc:  # noqa: BLE001 (deleted meanwhile)
            log.info("could not unbind port %s: %s", port_id, exc)
    kept = [r for r in records if r["port_id"] != port_id]
    await finish(c, inst, rid, event, system_metadata={**(inst.system_metadata or {}), "ports": kept})
    return {}

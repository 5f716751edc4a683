"""The conductor's volume work (Nova's compute manager attach/detach and the build's block device
step): the volume service's attachment gets the host's connector and answers the
connection_info, the host opens the volume (``attach_volume`` op), the attachment is completed
(volume ``in-use``); a detach goes the other way (``detach_volume`` op, attachment deleted,
volume ``available``). A build makes the volumes its BDMs ask for (from an image, a snapshot,
blank) before the spawn; a server's delete lets go of its volumes and deletes those marked
delete_on_termination.

Every step writes what it got to the BDM row at once (volume_id, attachment_id,
connection_info), so a task resumed after a crash picks up where it was."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import sqlalchemy as sa

from mcloud.compute.conductor import ActionFailed, Conductor, _message
from mcloud.compute.conductor_actions import action_failed
from mcloud.compute.conductor_moves import handles, host_errors
from mcloud.compute.models import Instance, now
from mcloud.compute.models_volumes import BlockDeviceMapping as BDM
from mcloud.compute.service_servers_volumes import volume_caller
from mcloud.core.errors import APIError
from mcloud.core.tasks import TaskContext

log = logging.getLogger("mcloud.compute.conductor")

#: how long a build waits for a volume it asked for to be made
VOLUME_CREATE_TIMEOUT = 600.0
#: how long an attach waits for the API of another process to reserve its volume (then it is
#: taken to have died and the conductor reserves the volume itself)
RESERVE_GRACE = 20.0


def connector(inst: Instance, bdm: BDM) -> dict[str, Any]:
    """Nova's connector of the instance's host (os-brick's get_connector_properties, made small)."""
    return {"host": inst.host, "mountpoint": bdm.device_name, "platform": "x86_64", "os_type": "linux",
            "multipath": False, "instance": inst.uuid, "initiator": f"iqn.mcloud:{inst.host}"}


async def _bdm(c: Conductor, bdm_uuid: str) -> BDM | None:
    async with c.compute.db.read() as session:
        bdm = (await session.execute(sa.select(BDM).where(BDM.uuid == bdm_uuid))).scalar()
        if bdm is not None:
            session.expunge(bdm)
        return bdm


async def _save(c: Conductor, bdm_uuid: str, **values: Any) -> None:
    async with c.compute.db.write() as session:
        await session.execute(sa.update(BDM).where(BDM.uuid == bdm_uuid).values(updated_at=now(), **values))


async def _forget(c: Conductor, bdm_uuid: str) -> None:
    async with c.compute.db.write() as session:
        await session.execute(sa.delete(BDM).where(BDM.uuid == bdm_uuid))


def volume_payload(bdm: BDM) -> dict[str, Any]:
    return {"volume_id": bdm.volume_id, "connection_info": dict(bdm.connection_info or {}),
            "boot_index": bdm.boot_index, "device_name": bdm.device_name}


async def volume_payloads(c: Conductor, uuid: str) -> list[dict[str, Any]]:
    """The volumes the host opens for the instance (those with a connection: attached or being
    attached by a build), the boot volume first."""
    from mcloud.compute.service_servers_volumes import bdms_of

    async with c.compute.db.read() as session:
        bdms = (await bdms_of(session, [uuid]))[uuid]
    return [volume_payload(b) for b in bdms if b.volume_id and b.connection_info and b.status != "error"]


async def _connect(c: Conductor, inst: Instance, bdm: BDM, vcaller: Any) -> dict[str, Any]:
    """The attachment updated with the host's connector: the connection_info, kept on the BDM."""
    att = await c.compute.volume.attachments.update(vcaller, bdm.attachment_id, connector(inst, bdm))
    info = dict(att.get("connection_info") or {})
    if not info:
        raise ActionFailed(f"The volume service gave no connection for volume {bdm.volume_id}")
    await _save(c, bdm.uuid, connection_info=info)
    return info


async def _begin(c: Conductor, ctx: TaskContext, inst: Instance, rid: str, event: str,
                 params: dict[str, Any]) -> BDM | None:
    """The action's BDM (None when it is gone: the action is done), its event started once."""
    bdm = await _bdm(c, params.get("bdm_uuid", ""))
    if bdm is not None and not ctx.resumed:
        await c.event(inst.uuid, rid, event, None, inst.host)
    return bdm


async def _done(c: Conductor, inst: Instance, rid: str, event: str) -> None:
    """The event's success (an attach or detach sets no task state of its own)."""
    if rid:
        async with c.compute.db.write() as session:
            await c.compute.action_event(session, inst.uuid, rid, event, "Success", inst.host)


async def _reserved(c: Conductor, inst: Instance, bdm: BDM, params: dict[str, Any], vcaller: Any) -> BDM | None:
    """The BDM once the API has reserved its volume. While the API is at it (the BDM is
    ``reserving``), wait; when the process that wrote the BDM is gone (killed between the BDM
    and the reservation: another worker, after a grace), finish its work: adopt the attachment it
    made for this server, else make one. None when the attach cannot be made (the BDM went)."""
    from mcloud.compute.service_servers_volumes import RESERVING

    ours = params.get("api_worker") == c.compute.tasks.worker_id
    grace = RESERVE_GRACE * (5 if ours else 1)
    while bdm.status == RESERVING and (now() - bdm.created_at).total_seconds() < grace:
        await asyncio.sleep(0.1)
        fresh = await _bdm(c, bdm.uuid)
        if fresh is None:
            return None
        bdm = fresh
    if bdm.status != RESERVING:
        return bdm
    attachments = c.compute.volume.attachments
    found = await attachments.list(vcaller, {"volume_id": [bdm.volume_id], "instance_id": [inst.uuid],
                                             "all_tenants": ["true"]}, detail=False)
    try:
        attachment_id = found[0]["id"] if found else (await attachments.create(vcaller, bdm.volume_id, inst.uuid))["id"]
    except APIError as exc:
        log.warning("volume %s of %s could not be reserved: %s", bdm.volume_id, inst.uuid, exc)
        async with c.compute.db.write() as session:
            await session.execute(sa.delete(BDM).where(BDM.uuid == bdm.uuid, BDM.status == RESERVING))
        return await _bdm(c, bdm.uuid)
    async with c.compute.db.write() as session:
        claimed = await session.execute(sa.update(BDM).where(BDM.uuid == bdm.uuid, BDM.status == RESERVING)
                                        .values(attachment_id=attachment_id, status="attaching", updated_at=now()))
    fresh = await _bdm(c, bdm.uuid)
    if not claimed.rowcount and (fresh is None or fresh.attachment_id != attachment_id) and not found:
        await attachments.delete(vcaller, attachment_id)  # the API got there after all
    return fresh


@handles("attach_volume")
async def attach_volume(c: Conductor, ctx: TaskContext, inst: Instance, params: dict[str, Any],
                        rid: str) -> dict[str, Any]:
    """Nova's attach: the attachment updated with the host's connector, the host opens the
    volume, the attachment completed. Resumed after a crash, it does the same again (each step
    is idempotent); a failure gives the volume back (attachment and BDM deleted)."""
    event = "compute_attach_volume"
    vcaller = volume_caller(None, inst.project_id, inst.user_id)
    bdm = await _bdm(c, params.get("bdm_uuid", ""))
    if bdm is not None:
        bdm = await _reserved(c, inst, bdm, params, vcaller)
    if bdm is None:
        return {"skipped": "the attachment is gone"}
    if not ctx.resumed:
        await c.event(inst.uuid, rid, event, None, inst.host)
    if bdm.status == "attached":
        await _done(c, inst, rid, event)
        return {"volume_id": bdm.volume_id}
    volumes = c.compute.volume
    try:
        if inst.host:
            info = await _connect(c, inst, bdm, vcaller)
            bdm.connection_info = info
            await c.host_op(ctx.id, "attach", inst.host, "attach_volume", inst.uuid, {"volume": volume_payload(bdm)})
            await volumes.attachments.complete(vcaller, bdm.attachment_id)
        else:
            # a shelved-offloaded server has no host to connect to: the volume is marked attached
            # (in-use) with no connection, as Nova's _attach_volume_shelved_offloaded; the unshelve
            # connects it on the new host (connect_offloaded)
            await volumes.attachments.attach(vcaller, bdm.volume_id, instance_uuid=inst.uuid, host_name=None,
                                             mountpoint=bdm.device_name or "")
    except (*host_errors(), APIError) as exc:
        log.warning("attaching volume %s to %s failed: %s", bdm.volume_id, inst.uuid, exc)
        if inst.host:  # the host lets go of what it may have opened
            try:
                await c.host_op(ctx.id, "attach-undo", inst.host, "detach_volume", inst.uuid,
                                {"volume_id": bdm.volume_id})
            except host_errors() as err:
                log.warning("could not close volume %s on %s: %s", bdm.volume_id, inst.host, err)
        try:
            await volumes.attachments.delete(vcaller, bdm.attachment_id)
        except APIError as err:
            log.warning("could not delete attachment %s: %s", bdm.attachment_id, err)
        await _forget(c, bdm.uuid)
        await action_failed(c, inst, rid, event, exc, vm_state=inst.vm_state)
        return {"error": _message(exc)}
    await _save(c, bdm.uuid, status="attached")
    await _done(c, inst, rid, event)
    return {"volume_id": bdm.volume_id}


@handles("detach_volume")
async def detach_volume(c: Conductor, ctx: TaskContext, inst: Instance, params: dict[str, Any],
                        rid: str) -> dict[str, Any]:
    event = "compute_detach_volume"
    bdm = await _begin(c, ctx, inst, rid, event, params)
    if bdm is None:
        return {"skipped": "the volume is not attached"}
    try:
        if inst.host:
            await c.host_op(ctx.id, "detach", inst.host, "detach_volume", inst.uuid, {"volume_id": bdm.volume_id})
    except host_errors() as exc:
        await _save(c, bdm.uuid, status="attached")
        await action_failed(c, inst, rid, event, exc, vm_state=inst.vm_state)
        return {"error": _message(exc)}
    await _release(c, inst, bdm, delete_volume=False)
    await _done(c, inst, rid, event)
    return {"volume_id": bdm.volume_id}


async def _release(c: Conductor, inst: Instance, bdm: BDM, delete_volume: bool) -> None:
    """The attachment deleted (the volume available again), the volume too when asked, the row gone."""
    vcaller = volume_caller(None, inst.project_id, inst.user_id)
    volumes = c.compute.volume
    if bdm.attachment_id:
        try:
            await volumes.attachments.delete(vcaller, bdm.attachment_id)
        except APIError as exc:
            if exc.status != 404:
                log.warning("could not delete attachment %s of %s: %s", bdm.attachment_id, inst.uuid, exc)
    if delete_volume and bdm.volume_id:
        try:
            await volumes.volumes.delete(vcaller, bdm.volume_id)
        except APIError as exc:
            if exc.status != 404:
                log.warning("could not delete volume %s of %s: %s", bdm.volume_id, inst.uuid, exc)
    await _forget(c, bdm.uuid)


async def release_volumes(c: Conductor, inst: Instance) -> None:
    """A deleted server's volumes: detached (the host is gone already), those marked
    delete_on_termination deleted (Nova's _cleanup_volumes)."""
    from mcloud.compute.service_servers_volumes import bdms_of

    async with c.compute.db.read() as session:
        bdms = (await bdms_of(session, [inst.uuid]))[inst.uuid]
    for bdm in bdms:
        await _release(c, inst, bdm, delete_volume=bool(bdm.delete_on_termination))


async def prepare_volumes(c: Conductor, inst: Instance) -> None:
    """The build's block device step: each BDM's volume made (from an image, a snapshot or
    blank) and waited for, reserved for the instance and connected to its host, then completed.
    A failure aborts the build with Nova's message."""
    from mcloud.compute.service_servers_volumes import bdms_of

    async with c.compute.db.read() as session:
        bdms = (await bdms_of(session, [inst.uuid]))[inst.uuid]
    if not bdms:
        return
    vcaller = volume_caller(None, inst.project_id, inst.user_id)
    volumes = c.compute.volume
    for bdm in bdms:
        try:
            if bdm.volume_id is None:
                made = await volumes.volumes.create(
                    vcaller, bdm.volume_size, image_id=bdm.image_id if bdm.source_type == "image" else None,
                    snapshot_id=bdm.snapshot_id if bdm.source_type == "snapshot" else None,
                    name=f"{inst.name}-volume" if bdm.boot_index != 0 else "", volume_type=bdm.volume_type,
                    availability_zone=None)
                bdm.volume_id = made["id"]
                await _save(c, bdm.uuid, volume_id=made["id"])
            await _wait_available(c, vcaller, bdm.volume_id, bdm.attachment_id is not None)
            if bdm.attachment_id is None:
                att = await volumes.attachments.create(vcaller, bdm.volume_id, inst.uuid)
                bdm.attachment_id = att["id"]
                await _save(c, bdm.uuid, attachment_id=att["id"])
            await _connect(c, inst, bdm, vcaller)
            await volumes.attachments.complete(vcaller, bdm.attachment_id)
            await _save(c, bdm.uuid, status="attached")
        except (APIError, ActionFailed) as exc:
            raise ActionFailed(f"Build of instance {inst.uuid} aborted: {_message(exc)}") from exc


async def connect_offloaded(c: Conductor, inst: Instance) -> None:
    """At an unshelve to ``inst.host``: the volumes attached while the server was offloaded (no
    connection yet) get the new host's connector and are completed, so the spawn opens them
    (Nova's unshelve refreshes each attachment with the new host's connector)."""
    from mcloud.compute.service_servers_volumes import bdms_of

    async with c.compute.db.read() as session:
        bdms = (await bdms_of(session, [inst.uuid]))[inst.uuid]
    vcaller = volume_caller(None, inst.project_id, inst.user_id)
    for bdm in bdms:
        if bdm.attachment_id and not bdm.connection_info and bdm.status == "attached":
            try:
                await _connect(c, inst, bdm, vcaller)
                await c.compute.volume.attachments.complete(vcaller, bdm.attachment_id)
            except APIError as exc:
                raise ActionFailed(f"Volume {bdm.volume_id} could not be connected: {_message(exc)}") from exc


async def _wait_available(c: Conductor, vcaller: Any, volume_id: str, reserved: bool) -> None:
    """Until the volume is available (or, reserved already by this build, anything but an error)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + VOLUME_CREATE_TIMEOUT
    attempts = 0
    started = loop.time()
    while True:
        attempts += 1
        volume = await c.compute.volume.volumes.get(vcaller, volume_id)
        status = volume.get("status")
        if status == "available" or (reserved and status in ("reserved", "attaching", "in-use")):
            return
        if status not in ("creating", "downloading") or loop.time() > deadline:
            raise ActionFailed(f"Volume {volume_id} did not finish being created even after we waited "
                               f"{int(loop.time() - started)} seconds or {attempts} attempts. And its status "
                               f"is {status}.")
        await asyncio.sleep(min(0.05 * attempts, 1.0))

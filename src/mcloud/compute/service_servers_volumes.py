"""Volumes on servers, the API side (Nova's ``os-volume_attachments`` and the block device
mappings of a server create): the checks Nova makes, the BDM rows, the volume service's
attachment (volume ``reserved``) and the conductor's ``attach_volume`` / ``detach_volume``
actions (conductor_volumes.py), which open the volume on the host and complete it.

The volume service is called in-process (``compute.volume``, seam 3 of the volume contract) with
a volume caller of the same user and project (a volume another project owns is not found, as
Cinder would not show it)."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from mcloud.compute import models as m
from mcloud.compute import states as st
from mcloud.compute.models_volumes import BlockDeviceMapping as BDM
from mcloud.compute.service import Caller
from mcloud.core.errors import APIError, BadRequest, Conflict, Forbidden, NotFound

#: vm_states a volume may be attached or detached in (Nova's compute API attach_volume/detach_volume)
VOLUME_STATES = (st.ACTIVE, st.PAUSED, st.STOPPED, st.RESIZED, st.SOFT_DELETED, st.SHELVED,
                 st.SHELVED_OFFLOADED)
#: the root disk's device name (Nova's default for virtio)
ROOT_DEVICE = "/dev/vda"
#: a BDM whose volume the API is reserving (conductor_volumes waits for it, or takes over)
RESERVING = "reserving"


def volume_caller(caller: Caller | None, project_id: str | None = None, user_id: str | None = None) -> Any:
    """The volume service's caller for ``caller`` (same user and project and admin flag; compute's
    policy already passed), or an internal one for the instance's project."""
    from mcloud.volume.service import Caller as VolumeCaller

    if caller is None or caller.policy is None:
        return VolumeCaller.internal(project_id, user_id)
    return VolumeCaller(user_id=caller.user_id, project_id=caller.project_id, roles=caller.roles,
                        is_admin=caller.is_admin, request_id=caller.request_id)


async def get_volume(compute: Any, vcaller: Any, volume_id: str) -> dict[str, Any]:
    """The volume as the caller sees it (404 "Volume X could not be found.")."""
    try:
        return dict(await compute.volume.volumes.get(vcaller, volume_id))
    except APIError as exc:
        if exc.status == 404:
            raise NotFound(f"Volume {volume_id} could not be found.") from None
        raise


async def bdms_of(session: Any, uuids: Sequence[str]) -> dict[str, list[BDM]]:
    """Each instance's volume BDMs, the boot volume first, then in the order they came."""
    out: dict[str, list[BDM]] = {u: [] for u in uuids}
    if not uuids:
        return out
    rows = await session.execute(sa.select(BDM).where(BDM.instance_uuid.in_(list(uuids)))
                                 .order_by(BDM.instance_uuid, sa.func.coalesce(BDM.boot_index, 1000), BDM.id))
    for bdm in rows.scalars():
        out.setdefault(bdm.instance_uuid, []).append(bdm)
    return out


async def volumes_attached(session: Any, uuids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """``os-extended-volumes:volumes_attached`` of each server: {id, delete_on_termination} (the
    view shows delete_on_termination from 2.3)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for uuid, bdms in (await bdms_of(session, uuids)).items():
        out[uuid] = [{"id": b.volume_id, "delete_on_termination": bool(b.delete_on_termination)}
                     for b in bdms if b.volume_id]
    return out


def next_device(used: Sequence[str | None]) -> str:
    """The next free ``/dev/vdX`` after the root disk (Nova's get_next_device_name)."""
    taken = {u.rsplit("/", 1)[-1] for u in used if u} | {"vda"}
    for letter in "bcdefghijklmnopqrstuvwxyz":
        if f"vd{letter}" not in taken:
            return f"/dev/vd{letter}"
    raise BadRequest("The supplied device path (/dev/vdz) is in use.")


def attachment_view(caller: Caller, bdm: BDM, server_id: str, created: bool = False) -> dict[str, Any]:
    """One ``volumeAttachment`` as Nova shows it at ``caller``'s microversion."""
    out: dict[str, Any] = {"device": bdm.device_name, "serverId": server_id, "volumeId": bdm.volume_id}
    if created or not caller.at(2, 89):
        out["id"] = bdm.volume_id
    if caller.at(2, 70):
        out["tag"] = bdm.tag
    if caller.at(2, 79):
        out["delete_on_termination"] = bool(bdm.delete_on_termination)
    if caller.at(2, 89) and not created:
        out["attachment_id"] = bdm.attachment_id
        out["bdm_uuid"] = bdm.uuid
    return out


def check_volume_state(inst: m.Instance, action: str) -> None:
    if inst.vm_state not in VOLUME_STATES:
        raise Conflict(f"Cannot '{action}' instance {inst.uuid} while it is in vm_state {inst.vm_state}")
    if inst.task_state is not None:
        raise Conflict(f"Cannot '{action}' instance {inst.uuid} while it is in task_state {inst.task_state}")


class ServerVolumes:
    """``compute.servers`` helpers for the volume attachment routes."""

    def __init__(self, servers: Any):
        self.servers = servers
        self.compute = servers.compute

    async def list(self, caller: Caller, server_id: str) -> tuple[m.Instance, list[BDM]]:
        async with self.servers.db.read() as session:
            inst = await self.servers.get(session, caller, server_id)
            caller.authorize("os_compute_api:os-volumes-attachments:index", {"project_id": inst.project_id})
            bdms = (await bdms_of(session, [inst.uuid]))[inst.uuid]
        return inst, [b for b in bdms if b.volume_id]

    async def show(self, caller: Caller, server_id: str, volume_id: str) -> tuple[m.Instance, BDM]:
        async with self.servers.db.read() as session:
            inst = await self.servers.get(session, caller, server_id)
            caller.authorize("os_compute_api:os-volumes-attachments:show", {"project_id": inst.project_id})
            bdms = (await bdms_of(session, [inst.uuid]))[inst.uuid]
        if not bdms:
            raise NotFound(f"Instance {server_id} is not attached.")
        bdm = next((b for b in bdms if b.volume_id == volume_id), None)
        if bdm is None:
            raise NotFound(f"volume_id not found: {volume_id}")
        return inst, bdm

    async def attach(self, caller: Caller, server_id: str, volume_id: str, device: str | None = None,
                     tag: str | None = None, delete_on_termination: bool = False) -> tuple[m.Instance, BDM]:
        """Nova's attach_volume: checks, the BDM row with the conductor's action, the volume
        reserved (an attachment), the instance action; the conductor opens it on the host. Answers
        at once (the attach is async)."""
        compute = self.compute
        async with self.servers.db.read() as session:
            inst = await self.servers.get(session, caller, server_id)
        caller.authorize("os_compute_api:os-volumes-attachments:create", {"project_id": inst.project_id})
        self.servers.check_lock(caller, inst)
        check_volume_state(inst, "attach_volume")
        vcaller = volume_caller(caller)
        volume = await get_volume(compute, vcaller, volume_id)
        async with self.servers.db.read() as session:
            bdms = (await bdms_of(session, [inst.uuid]))[inst.uuid]
        if any(b.volume_id == volume_id for b in bdms):
            raise BadRequest(f"Invalid volume: volume {volume_id} already attached")
        if volume.get("status") != "available" and not (volume.get("multiattach") and volume.get("status") == "in-use"):
            raise BadRequest(f"Invalid volume: volume '{volume_id}' status must be 'available'. Currently in "
                             f"'{volume.get('status')}'")
        if device is not None and device in {b.device_name for b in bdms}:
            raise Conflict(f"The supplied device path ({device}) is in use.")
        device = next_device([b.device_name for b in bdms]) if not device else device
        if not device.startswith("/dev/"):
            raise BadRequest(f"The supplied device path ({device}) is invalid.")
        # Nova's order: the BDM first (with the conductor's task, so that a process killed at any
        # point leaves a task that finishes or undoes the attach), then the volume reserved, then
        # the BDM given the attachment; the task waits while the BDM is "reserving".
        async with self.servers.db.write() as session:
            row = await self.servers.get(session, caller, server_id, for_update=True)
            check_volume_state(row, "attach_volume")
            taken = (await bdms_of(session, [row.uuid]))[row.uuid]
            if any(b.volume_id == volume_id for b in taken):
                raise BadRequest(f"Invalid volume: volume {volume_id} already attached")
            if device in {b.device_name for b in taken}:
                raise Conflict(f"The supplied device path ({device}) is in use.")
            bdm = BDM(uuid=str(uuidlib.uuid4()), instance_uuid=row.uuid, volume_id=volume_id,
                      source_type="volume", destination_type="volume", device_name=device, tag=tag,
                      delete_on_termination=bool(delete_on_termination), volume_size=volume.get("size"),
                      status=RESERVING)
            session.add(bdm)
            await session.flush()
            task = await compute.conductor.submit_action(
                session, row, "attach_volume", {"bdm_uuid": bdm.uuid, "volume_id": volume_id,
                                                "api_worker": compute.tasks.worker_id}, caller.request_id, caller)
            session.expunge(bdm)
        try:
            attachment = await compute.volume.attachments.create(vcaller, volume_id, inst.uuid)
        except BaseException as exc:
            await self._unreserve(bdm.uuid, task.id if task is not None else None)
            if isinstance(exc, APIError) and exc.status == 400:
                raise BadRequest(f"Invalid volume: {exc.message}") from None
            raise
        async with self.servers.db.write() as session:
            await self.servers.record_action(session, caller, inst, "attach_volume")
            claimed = await session.execute(sa.update(BDM).where(BDM.uuid == bdm.uuid, BDM.status == RESERVING)
                                            .values(attachment_id=attachment["id"], status="attaching",
                                                    updated_at=m.now()))
            kept = None if claimed.rowcount else await session.scalar(
                sa.select(BDM.attachment_id).where(BDM.uuid == bdm.uuid))
        if not claimed.rowcount and kept != attachment["id"]:
            # the conductor found this process too slow and finished (or undid) the attach itself
            await compute.volume.attachments.delete(vcaller, attachment["id"])
        bdm.attachment_id, bdm.status = attachment["id"], "attaching"
        compute.tasks.wake()
        return inst, bdm

    async def _unreserve(self, bdm_uuid: str, task_id: str | None) -> None:
        """The attach refused after its BDM was written: the BDM and the task not yet run go."""
        from mcloud.core.tasks import PENDING, SUCCEEDED, Task

        async with self.servers.db.write() as session:
            await session.execute(sa.delete(BDM).where(BDM.uuid == bdm_uuid, BDM.status == RESERVING))
            if task_id is not None:
                await session.execute(sa.update(Task).where(Task.id == task_id, Task.status == PENDING).values(
                    status=SUCCEEDED, result={"cancelled": "the volume could not be reserved"}, updated_at=m.now()))

    async def update(self, caller: Caller, server_id: str, volume_id: str, new_volume_id: str,
                     delete_on_termination: bool | None) -> None:
        """PUT: the same volume (2.85) changes delete_on_termination; another volume is a swap,
        which this cloud's drivers do not do (409)."""
        compute = self.compute
        vcaller = volume_caller(caller)
        await get_volume(compute, vcaller, volume_id)
        if new_volume_id != volume_id:
            caller.authorize("os_compute_api:os-volumes-attachments:swap")
            try:
                await get_volume(compute, vcaller, new_volume_id)
            except NotFound as exc:
                raise BadRequest(exc.message) from None
        async with self.servers.db.write() as session:
            inst = await self.servers.get(session, caller, server_id, for_update=True)
            caller.authorize("os_compute_api:os-volumes-attachments:update", {"project_id": inst.project_id})
            self.servers.check_lock(caller, inst)
            bdm = next((b for b in (await bdms_of(session, [inst.uuid]))[inst.uuid] if b.volume_id == volume_id), None)
            if bdm is None:
                raise NotFound("The volume was either invalid or not attached to the instance.")
            if new_volume_id != volume_id:
                check_volume_state(inst, "swap_volume")
                raise Conflict(f"Swapping volume {volume_id} for {new_volume_id} is not supported by the "
                               f"hypervisor of instance {inst.uuid}.")
            if delete_on_termination is not None:
                bdm.delete_on_termination = bool(delete_on_termination)
                bdm.updated_at = m.now()

    async def detach(self, caller: Caller, server_id: str, volume_id: str) -> None:
        from mcloud.compute.service_servers_actions import start_action

        async with self.servers.db.read() as session:
            inst = await self.servers.get(session, caller, server_id)
        caller.authorize("os_compute_api:os-volumes-attachments:delete", {"project_id": inst.project_id})
        await get_volume(self.compute, volume_caller(caller), volume_id)
        async with self.servers.db.write() as session:
            row = await self.servers.get(session, caller, server_id, for_update=True)
            bdms = (await bdms_of(session, [row.uuid]))[row.uuid]
            if not bdms:
                raise NotFound(f"Instance {server_id} is not attached.")
            bdm = next((b for b in bdms if b.volume_id == volume_id), None)
            if bdm is None:
                raise NotFound(f"volume_id not found: {volume_id}")
            if bdm.boot_index == 0:
                raise Forbidden("Can't detach root device volume")
            self.servers.check_lock(caller, row)
            check_volume_state(row, "detach_volume")
            if bdm.status in (RESERVING, "attaching", "detaching"):
                raise BadRequest(f"Invalid volume: Invalid input received: Invalid volume: Volume {volume_id} "
                                 f"status must be in-use to detach, but the current status is "
                                 f"{'attaching' if bdm.status == 'attaching' else 'detaching'}.")
            bdm.status = "detaching"
            bdm.updated_at = m.now()
            await start_action(self.servers, session, caller, row, "detach_volume",
                               {"bdm_uuid": bdm.uuid, "volume_id": volume_id}, check_lock=False)
        self.compute.tasks.wake()


# ---------------------------------------------------------------------- server create (BDM v2)

INVALID_BOOT = ("Block Device Mapping is Invalid: Boot sequence for the instance and image/block device "
                "mapping combination is not valid.")


def _int_or_none(value: Any, what: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for field/attribute {what}. Value: {value}. "
                         f"'{value}' is not a valid integer") from None


def volume_mappings(server: dict[str, Any], image_ref: str) -> list[dict[str, Any]]:
    """The volume BDMs of a create request (``block_device_mapping_v2`` entries whose destination
    is a volume), checked as Nova's BlockDeviceDict and _validate_bdm check them without the
    volume service: the columns of each row to be. Local entries (the image's root disk,
    ephemeral and swap) are not rows."""
    out: list[dict[str, Any]] = []
    boot_indexes: list[int] = []
    for bdm in server.get("block_device_mapping_v2") or []:
        source = bdm.get("source_type")
        dest = bdm.get("destination_type") or ("local" if source in ("image", "blank", None) else "volume")
        boot_index = _int_or_none(bdm.get("boot_index"), "boot_index")
        if boot_index is not None and boot_index >= 0:
            boot_indexes.append(boot_index)
        if dest == "local":
            if source in ("volume", "snapshot"):
                raise BadRequest("Block Device Mapping is Invalid: Mapping image to local is not supported.")
            continue
        size = _int_or_none(bdm.get("volume_size"), "volume_size")
        if size is not None and size <= 0:
            raise BadRequest(f"Block Device Mapping is Invalid: Volume size must be greater than 0: {size}")
        uuid = bdm.get("uuid") or bdm.get("volume_id") or bdm.get("snapshot_id")
        if source in ("volume", "snapshot", "image") and not uuid:
            raise BadRequest(f"Block Device Mapping is Invalid: Missing uuid for the {source} source.")
        if source == "image" and not size:
            raise BadRequest("Block Device Mapping is Invalid: Images with destination_type 'volume' need to "
                             "have a non-zero size specified")
        if source == "blank" and not size:
            raise BadRequest("Block Device Mapping is Invalid: Blank volumes (source: 'blank', dest: 'volume') "
                             "need to have non-zero size")
        if source not in ("volume", "snapshot", "image", "blank"):
            raise BadRequest("Block Device Mapping is Invalid: Unrecognized source_type.")
        dot = bdm.get("delete_on_termination")
        from mcloud.compute.schemas import as_bool

        out.append({"source_type": source, "destination_type": "volume",
                    "volume_id": uuid if source == "volume" else None,
                    "image_id": uuid if source == "image" else None,
                    "snapshot_id": uuid if source == "snapshot" else None,
                    "volume_size": size, "volume_type": bdm.get("volume_type"),
                    "boot_index": boot_index if boot_index is not None and boot_index >= 0 else None,
                    "device_name": bdm.get("device_name"), "disk_bus": bdm.get("disk_bus"),
                    "device_type": bdm.get("device_type"), "tag": bdm.get("tag"),
                    "delete_on_termination": as_bool(dot) if dot is not None else False})
    if len(boot_indexes) != len(set(boot_indexes)) or (boot_indexes and 0 not in boot_indexes):
        raise BadRequest(INVALID_BOOT)
    root = [v for v in out if v["boot_index"] == 0]
    if not image_ref and not root and 0 not in boot_indexes:
        raise BadRequest(INVALID_BOOT)
    # the device names as Nova gives them: the boot volume /dev/vda, the others the next free
    used: list[str | None] = []
    for v in sorted(out, key=lambda v: v["boot_index"] != 0):
        if v["boot_index"] == 0:
            v["device_name"] = ROOT_DEVICE
        elif not v["device_name"] or v["device_name"] in used:
            v["device_name"] = next_device(used)
        used.append(v["device_name"])
    return out


async def check_mappings(compute: Any, caller: Caller, mappings: list[dict[str, Any]], count: int) -> dict[str, Any] | None:
    """The volumes and snapshots the mappings name, as the caller sees them (Nova's 400s); returns
    the boot volume's view when the server boots from an existing volume."""
    vcaller = volume_caller(caller)
    boot: dict[str, Any] | None = None
    for v in mappings:
        if v["volume_id"]:
            try:
                volume = await get_volume(compute, vcaller, v["volume_id"])
            except NotFound:
                raise BadRequest(f"Block Device Mapping is Invalid: failed to get volume {v['volume_id']}.") from None
            if v["boot_index"] == 0:
                _bootable(volume)
            if count > 1:
                raise BadRequest("Cannot attach one or more volumes to multiple instances")
            if volume.get("status") != "available":
                raise BadRequest(f"Invalid volume: volume '{v['volume_id']}' status must be 'available'. "
                                 f"Currently in '{volume.get('status')}'")
            if v["boot_index"] == 0:
                boot = volume
            v["volume_size"] = v["volume_size"] or volume.get("size")
        elif v["snapshot_id"]:
            snapshots = getattr(compute.volume, "snapshots", None)
            try:
                snap = await snapshots.get(vcaller, v["snapshot_id"])
            except (APIError, AttributeError):
                raise BadRequest(f"Block Device Mapping is Invalid: failed to get snapshot {v['snapshot_id']}.") \
                    from None
            if v["boot_index"] == 0:
                # a snapshot boots if the volume it was taken of does (Nova reads that volume)
                try:
                    _bootable(await get_volume(compute, vcaller, snap["volume_id"]))
                except NotFound:
                    raise BadRequest(f"Block Device Mapping is Invalid: failed to get volume "
                                     f"{snap['volume_id']}.") from None
            v["volume_size"] = v["volume_size"] or snap.get("size")
    return boot


def _bootable(volume: dict[str, Any]) -> None:
    """Nova's InvalidBDMVolumeNotBootable: a boot volume Cinder does not mark bootable is a 400."""
    if str(volume.get("bootable", "true")).lower() == "false":
        raise BadRequest(f"Block Device {volume['id']} is not bootable.")


def bdm_rows(instance_uuid: str, mappings: list[dict[str, Any]]) -> list[BDM]:
    return [BDM(uuid=str(uuidlib.uuid4()), instance_uuid=instance_uuid, status="attaching", **v) for v in mappings]

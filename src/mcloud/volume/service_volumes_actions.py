"""The volume actions that change a volume's data or flags (``POST /volumes/{id}/action``):
extend, retype, bootable, readonly, reset status, force delete, upload to an image, image
metadata and revert to a snapshot, with Cinder's status checks and messages. The attach flow's
actions are in ``service_attachments.py``. Mixed into :class:`~mcloud.volume.service_volumes.Volumes`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.core.errors import BadRequest, NotFound
from mcloud.volume import states as st
from mcloud.volume.models import Snapshot, Volume, now
from mcloud.volume.service import Caller

REVERTING = "reverting"
RESTORING = "restoring"


class VolumeActions:
    volume: Any
    db: Any

    async def row(self, session: AsyncSession, caller: Caller, volume_id: str, *, lock: bool = False) -> Volume:
        raise NotImplementedError

    async def _acting(self, session: AsyncSession, caller: Caller, volume_id: str, rule: str) -> Volume:
        caller.authorize(rule)
        row = await self.row(session, caller, volume_id, lock=True)
        caller.authorize(rule, {"project_id": row.project_id})
        return row

    async def extend(self, caller: Caller, volume_id: str, new_size: int) -> None:
        async with self.db.write() as session:
            row = await self._acting(session, caller, volume_id, "volume:extend")
            attached = row.status == st.IN_USE
            can_online = attached and caller.at(3, 42) and self._online_extend(row)
            if attached and can_online:
                caller.authorize("volume:extend_attached_volume", {"project_id": row.project_id})
            expected = st.IN_USE if can_online else st.AVAILABLE
            if new_size <= row.size:
                raise BadRequest(f"Invalid input received: New size for extend must be greater than current size. "
                                 f"(current: {row.size}, extended: {new_size}).")
            if row.status != expected:
                raise BadRequest(f"Invalid volume: Volume {row.id} status must be '{{'status': '{expected}'}}' to "
                                 f"extend, currently {row.status}.")
            type_name = await self._type_name(session, row)
            delta = new_size - row.size
            deltas = {"gigabytes": delta, "per_volume_gigabytes": new_size}
            if type_name:
                deltas[f"gigabytes_{type_name}"] = delta
            await self.volume.quotas.reserve(session, row.project_id, deltas)
            row.previous_status = row.status
            row.status = st.EXTENDING
            row.updated_at = now()
            await self.volume.manager.extend_volume(session, row, new_size, previous_status=row.previous_status)

    def _online_extend(self, row: Volume) -> bool:
        """Whether the volume's backend grows a volume a guest has open (BACKENDS says, per host)."""
        check = getattr(self.volume.backends, "can_extend_attached", None)
        return bool(check(row.host)) if check is not None else False

    async def _type_name(self, session: AsyncSession, row: Volume) -> str | None:
        if not row.volume_type_id:
            return None
        try:
            return (await self.volume.types.get(session, row.volume_type_id)).name
        except NotFound:
            return None

    async def retype(self, caller: Caller, volume_id: str, new_type: str, migration_policy: str | None) -> None:
        async with self.db.write() as session:
            row = await self._acting(session, caller, volume_id, "volume:retype")
            if row.status not in (st.AVAILABLE, st.IN_USE):
                raise BadRequest(f"Invalid volume: Volume {row.id} status must be available or in-use, must not be "
                                 f"migrating, have snapshots, be replicated, be part of a group and destination host "
                                 f"must be different than the current host.")
            if row.migration_status in ("migrating", "starting"):
                raise BadRequest(f"Invalid volume: Volume {row.id} is migrating.")
            try:
                vtype = await self.volume.types.resolve(session, caller, new_type)
            except NotFound:
                raise BadRequest(f"Invalid volume_type passed: {new_type}.") from None
            if vtype.id == row.volume_type_id:
                raise BadRequest(f"Invalid input received: New volume_type same as original: {new_type}.")
            await self.volume.quotas.reserve(session, row.project_id, {
                f"volumes_{vtype.name}": 1, f"gigabytes_{vtype.name}": row.size})
            row.previous_status = row.status
            row.status = st.RETYPING
            row.updated_at = now()
            await self.volume.manager.retype_volume(session, row, vtype.id, migration_policy or "never",
                                                    previous_status=row.previous_status)

    async def set_bootable(self, caller: Caller, volume_id: str, bootable: bool) -> None:
        async with self.db.write() as session:
            row = await self._acting(session, caller, volume_id, "volume:update")
            if row.status == st.MAINTENANCE:
                raise BadRequest("Invalid volume: The volume cannot be updated during maintenance.")
            row.bootable = bootable
            row.updated_at = now()

    async def set_readonly(self, caller: Caller, volume_id: str, readonly: bool) -> None:
        async with self.db.write() as session:
            row = await self._acting(session, caller, volume_id, "volume:update_readonly_flag")
            if row.status != st.AVAILABLE:
                raise BadRequest(f"Invalid volume: Volume {row.id} status must be available to update readonly "
                                 f"flag, but current status is: {row.status}.")
            row.admin_metadata = {**(row.admin_metadata or {}), "readonly": str(readonly)}
            row.updated_at = now()

    async def reset_status(self, caller: Caller, volume_id: str, status: str | None, attach_status: str | None,
                           migration_status: str | None) -> None:
        """Admin's os-reset_status: set what the body names, no task (Cinder's admin action)."""
        if status is None and attach_status is None and migration_status is None:
            raise BadRequest("Must specify 'status', 'attach_status' or 'migration_status' for update.")
        if status is not None and status not in st.VOLUME_STATUSES:
            raise BadRequest(f"Invalid input received: Must specify a valid status (got {status}).")
        async with self.db.write() as session:
            row = await self._acting(session, caller, volume_id,
                                     "volume_extension:volume_admin_actions:reset_status")
            if status is not None:
                row.status = status
            if attach_status is not None:
                row.attach_status = attach_status
                if attach_status == st.DETACHED:
                    from mcloud.volume.models import VolumeAttachment  # noqa: PLC0415

                    for att in (await session.execute(sa.select(VolumeAttachment).where(
                            VolumeAttachment.volume_id == row.id, VolumeAttachment.deleted.is_(False)))).scalars():
                        att.deleted, att.deleted_at, att.attach_status = True, now(), st.DETACHED
            if migration_status is not None:
                row.migration_status = None if migration_status == "none" else migration_status
            row.updated_at = now()

    async def force_delete(self, caller: Caller, volume_id: str) -> None:
        async with self.db.write() as session:
            row = await self._acting(session, caller, volume_id,
                                     "volume_extension:volume_admin_actions:force_delete")
            await self._start_delete(session, caller, row, cascade=False, force=True)  # type: ignore[attr-defined]

    async def _start_delete(self, session: AsyncSession, caller: Caller, row: Volume, *, cascade: bool,
                            force: bool) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ upload to image

    async def upload_to_image(self, caller: Caller, volume_id: str, *, image_name: str, force: bool = False,
                              disk_format: str = "raw", container_format: str = "bare",
                              visibility: str | None = None, protected: bool = False) -> dict[str, Any]:
        from mcloud.image.service import Caller as ImageCaller  # noqa: PLC0415

        if disk_format not in ("raw", "qcow2"):
            raise BadRequest(f"Invalid input received: Invalid disk-format '{disk_format}' is specified. Allowed "
                             f"disk-formats are raw, qcow2.")
        async with self.db.write() as session:
            row = await self._acting(session, caller, volume_id, "volume_extension:volume_actions:upload_image")
            if visibility == "public":
                caller.authorize("volume_extension:volume_actions:upload_public", {"project_id": row.project_id})
            allowed = (st.AVAILABLE, st.IN_USE) if force else (st.AVAILABLE,)
            if row.status not in allowed:
                raise BadRequest(f"Invalid volume: Volume {row.id} status must be available or in-use, but current "
                                 f"status is: {row.status}." if force else
                                 f"Invalid volume: Volume {row.id} status must be available, but current status "
                                 f"is: {row.status}.")
            fields: dict[str, Any] = {"name": image_name, "disk_format": disk_format,
                                      "container_format": container_format,
                                      "visibility": visibility or "private", "protected": protected}
            image = await self.volume.image.create_image(
                session, ImageCaller(row.project_id, caller.is_admin), dict(fields), properties={}, tags=())
            row.previous_status = row.status
            row.status = st.UPLOADING
            row.updated_at = now()
            await self.volume.manager.upload_to_image(session, row, image.id, disk_format, force,
                                                      previous_status=row.previous_status)
            type_name = await self._type_name(session, row)
            return {"id": row.id, "updated_at": row.updated_at.strftime("%Y-%m-%dT%H:%M:%S.%f"),
                    "status": row.status, "display_description": row.display_description, "size": row.size,
                    "volume_type": ({"id": row.volume_type_id, "name": type_name} if type_name else None),
                    "image_id": image.id, "container_format": container_format, "disk_format": disk_format,
                    "image_name": image_name, "protected": protected, "visibility": fields["visibility"]}

    # ------------------------------------------------------------------ image metadata

    async def image_metadata(self, caller: Caller, volume_id: str) -> dict[str, str]:
        caller.authorize("volume_extension:volume_image_metadata:show")
        async with self.db.read() as session:
            row = await self.row(session, caller, volume_id)
            caller.authorize("volume_extension:volume_image_metadata:show", {"project_id": row.project_id})
            return {str(k): str(v) for k, v in (row.volume_image_metadata or {}).items()}

    async def set_image_metadata(self, caller: Caller, volume_id: str, metadata: dict[str, str]) -> dict[str, str]:
        async with self.db.write() as session:
            row = await self._acting(session, caller, volume_id, "volume_extension:volume_image_metadata:set")
            if row.status not in (st.AVAILABLE, st.IN_USE):
                raise BadRequest(f"Invalid volume: Volume {row.id} status must be available or in-use, but current "
                                 f"status is: {row.status}.")
            row.volume_image_metadata = {**(row.volume_image_metadata or {}), **metadata}
            row.updated_at = now()
            return {str(k): str(v) for k, v in row.volume_image_metadata.items()}

    async def unset_image_metadata(self, caller: Caller, volume_id: str, key: str) -> None:
        async with self.db.write() as session:
            row = await self._acting(session, caller, volume_id, "volume_extension:volume_image_metadata:remove")
            current = dict(row.volume_image_metadata or {})
            if key not in current:
                raise NotFound(f"Glance metadata for volume {row.id} with key {key} could not be found.")
            del current[key]
            row.volume_image_metadata = current
            row.updated_at = now()

    # ------------------------------------------------------------------ revert (3.40)

    async def revert(self, caller: Caller, volume_id: str, snapshot_id: str | None) -> None:
        async with self.db.write() as session:
            row = await self._acting(session, caller, volume_id, "volume:revert_to_snapshot")
            if not snapshot_id:
                raise BadRequest("Invalid input received: Must specify snapshot_id for revert.")
            snap = (await session.execute(sa.select(Snapshot).where(
                Snapshot.id == snapshot_id, Snapshot.deleted.is_(False)))).scalar()
            if snap is None or (not caller.is_admin and snap.project_id != caller.project_id):
                raise NotFound(f"Snapshot {snapshot_id} could not be found.")
            if snap.volume_id != row.id:
                raise BadRequest(f"Invalid input received: Snapshot {snap.id} is not a snapshot of volume {row.id}.")
            latest = (await session.execute(sa.select(Snapshot).where(
                Snapshot.volume_id == row.id, Snapshot.deleted.is_(False))
                .order_by(Snapshot.created_at.desc(), Snapshot.id.desc()).limit(1))).scalar()
            if latest is None or latest.id != snap.id:
                raise BadRequest(f"Invalid snapshot: Volume {row.id} status must be available or the snapshot "
                                 f"must be the latest one, but the snapshot {snap.id} is not the latest one.")
            if row.status != st.AVAILABLE:
                raise BadRequest(f"Invalid volume: Volume {row.id} status must be available, but current status "
                                 f"is: {row.status}.")
            if snap.status != st.AVAILABLE:
                raise BadRequest(f"Invalid snapshot: Snapshot {snap.id} status must be available, but current status "
                                 f"is: {snap.status}.")
            if snap.volume_size != row.size:
                raise BadRequest(f"Invalid volume: Volume {row.id} size {row.size}GB is not the size of snapshot "
                                 f"{snap.id} ({snap.volume_size}GB): revert needs them equal.")
            row.status = REVERTING
            snap.status = RESTORING
            row.updated_at = snap.updated_at = now()
            await self.volume.manager.revert_to_snapshot(session, row, snap)

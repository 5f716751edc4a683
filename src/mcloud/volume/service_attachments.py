"""Attachments (``volume.attachments``): the attachments API of 3.27+ (create → reserved, update
with a connector → attaching with the backend's connection_info, complete → in-use, delete →
available when none is left) and the older os-reserve / os-initialize_connection / os-attach /
os-begin_detaching / os-detach flow over the same rows, as Cinder's volume/api.py and
db.volume_attached / finish_detach move a volume and its attachments.

For compute (seam 3): :meth:`Attachments.create`, :meth:`update`, :meth:`complete`,
:meth:`delete` with a :class:`~mcloud.volume.service.Caller`.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.core.errors import BadRequest, Conflict, NotFound
from mcloud.core.pagination import page, parse_limit, parse_sort
from mcloud.volume import states as st
from mcloud.volume import views
from mcloud.volume.models import Volume, VolumeAttachment, now
from mcloud.volume.service import Caller
from mcloud.volume.service_volumes import _last, _sort

SORT_KEYS = {"created_at": VolumeAttachment.created_at, "id": VolumeAttachment.id,
             "volume_id": VolumeAttachment.volume_id, "instance_id": VolumeAttachment.instance_uuid,
             "attach_status": VolumeAttachment.attach_status}
FILTERS = {"volume_id": VolumeAttachment.volume_id, "instance_id": VolumeAttachment.instance_uuid,
           "instance_uuid": VolumeAttachment.instance_uuid, "status": VolumeAttachment.attach_status,
           "attach_status": VolumeAttachment.attach_status}


class Attachments:
    def __init__(self, volume: Any):
        self.volume = volume

    @property
    def db(self) -> Any:
        return self.volume.db

    # ------------------------------------------------------------------ rows

    async def row(self, session: AsyncSession, caller: Caller, attachment_id: str) -> VolumeAttachment:
        query = sa.select(VolumeAttachment).where(VolumeAttachment.id == str(attachment_id),
                                                  VolumeAttachment.deleted.is_(False))
        if not caller.is_admin:
            query = query.where(VolumeAttachment.project_id == (caller.project_id or ""))
        row = (await session.execute(query)).scalar()
        if row is None:
            raise NotFound(f"Volume attachment could not be found with filter: attachment_id = {attachment_id}.")
        return row

    async def _live(self, session: AsyncSession, volume_id: str) -> list[VolumeAttachment]:
        return list((await session.execute(sa.select(VolumeAttachment).where(
            VolumeAttachment.volume_id == volume_id, VolumeAttachment.deleted.is_(False))
            .order_by(VolumeAttachment.created_at))).scalars())

    async def _reserve(self, session: AsyncSession, vol: Volume, instance_uuid: str | None, mode: str,
                       project_id: str) -> VolumeAttachment:
        """Cinder's _attachment_reserve: the volume → reserved, a new attachment row reserved."""
        expected = (st.AVAILABLE, st.IN_USE, st.DOWNLOADING) if vol.multiattach else (st.AVAILABLE, st.DOWNLOADING)
        if vol.status not in expected:
            same_server = instance_uuid is not None and vol.status in (st.IN_USE, st.RESERVED) and any(
                a.instance_uuid == instance_uuid for a in await self._live(session, vol.id))
            if not same_server:
                raise BadRequest(f"Invalid volume: Volume {vol.id} status must be {' or '.join(expected)} to "
                                 f"reserve, but the current status is {vol.status}.")
        else:
            vol.status = st.RESERVED
        vol.updated_at = now()
        row = VolumeAttachment(id=str(uuid.uuid4()), volume_id=vol.id, project_id=project_id,
                               instance_uuid=instance_uuid, attach_status=st.ATTACH_RESERVED, attach_mode=mode,
                               created_at=now())
        session.add(row)
        await session.flush()
        return row

    async def _connect(self, session: AsyncSession, vol: Volume, att: VolumeAttachment,
                       connector: dict[str, Any]) -> dict[str, Any]:
        """The backend's connection_info for ``connector`` (Cinder's _connection_create), with the
        access mode and the attachment's id in it."""
        if "error" in vol.status:
            raise Conflict(f"Volume attachments can not be updated if the volume is in an error state. The Volume "
                           f"{vol.id} currently has a status of: {vol.status} ")
        backend = self.volume.backends.for_host(vol.host) if vol.host else None
        if backend is None:
            raise BadRequest(f"Invalid volume: Volume {vol.id} has no backend to connect to (status {vol.status}).")
        info = dict(await backend.connection_info(vol.id, connector))
        mode = att.attach_mode or connector.get("mode", "rw")
        info["data"] = {**info.get("data", {}), "access_mode": mode, "encrypted": vol.encryption_key_id is not None}
        info.setdefault("attachment_id", att.id)
        info.setdefault("serial", vol.id)
        return info

    @staticmethod
    def _attached(vol: Volume, att: VolumeAttachment, *, instance_uuid: str | None, host: str | None,
                  mountpoint: str | None, mode: str, mark: bool) -> None:
        """Cinder's db.volume_attached: the attachment and volume → attaching, or attached/in-use."""
        att.instance_uuid = instance_uuid or att.instance_uuid
        att.attached_host = host or att.attached_host
        att.mountpoint = mountpoint or att.mountpoint
        att.attach_mode = mode
        att.attach_status = st.ATTACHED if mark else st.ATTACH_ATTACHING
        att.attach_time = now() if mark else att.attach_time
        att.updated_at = now()
        vol.status = st.IN_USE if mark else st.ATTACHING
        vol.attach_status = st.ATTACHED if mark else st.ATTACH_ATTACHING
        vol.admin_metadata = {**(vol.admin_metadata or {}), "attached_mode": mode}
        vol.updated_at = now()

    async def _finish_detach(self, session: AsyncSession, vol: Volume, att: VolumeAttachment) -> None:
        """Cinder's finish_detach: the attachment goes; the volume is in-use while others remain."""
        att.attach_status = st.DETACHED
        att.detach_time = att.deleted_at = att.updated_at = now()
        att.deleted = True
        await session.flush()
        remaining = [a for a in await self._live(session, vol.id) if a.id != att.id]
        if any(a.attach_status == st.ATTACHED for a in remaining):
            vol.status, vol.attach_status = st.IN_USE, st.ATTACHED
        elif remaining:
            vol.status, vol.attach_status = st.RESERVED, st.DETACHED
        else:
            vol.status, vol.attach_status = st.AVAILABLE, st.DETACHED
            vol.admin_metadata = {k: v for k, v in (vol.admin_metadata or {}).items() if k != "attached_mode"}
        vol.updated_at = now()

    def _check_mode(self, vol: Volume, mode: str) -> None:
        if (vol.admin_metadata or {}).get("readonly") == "True" and mode == "rw":
            raise BadRequest(f"Invalid volume: Volume {vol.id} is read-only: attach it with mode 'ro'.")

    # ------------------------------------------------------------------ the attachments API (3.27)

    async def create(self, caller: Caller, volume_id: str, instance_uuid: str | None = None,
                     connector: dict[str, Any] | None = None, mode: str = "rw") -> dict[str, Any]:
        caller.authorize("volume:attachment_create")
        async with self.db.write() as session:
            vol = await self.volume.volumes.row(session, caller, volume_id, lock=True)
            caller.authorize("volume:attachment_create", {"project_id": vol.project_id})
            if vol.multiattach and vol.status == st.IN_USE and vol.bootable:
                caller.authorize("volume:multiattach_bootable_volume", {"project_id": vol.project_id})
            self._check_mode(vol, mode)
            att = await self._reserve(session, vol, instance_uuid, mode, vol.project_id)
            if connector:
                att.connector = connector
                att.connection_info = await self._connect(session, vol, att, connector)
                self._attached(vol, att, instance_uuid=instance_uuid, host=connector.get("host"),
                               mountpoint=connector.get("mountpoint"), mode=mode, mark=False)
            return views.attachment_view(att)

    async def update(self, caller: Caller, attachment_id: str, connector: dict[str, Any]) -> dict[str, Any]:
        caller.authorize("volume:attachment_update")
        async with self.db.write() as session:
            att = await self.row(session, caller, attachment_id)
            caller.authorize("volume:attachment_update", {"project_id": att.project_id})
            vol = await self.volume.volumes.row(session, Caller.internal(), att.volume_id, lock=True)
            others = [a for a in await self._live(session, vol.id) if a.id != att.id and a.connection_info]
            if others and not vol.multiattach and {a.connector.get("host") for a in others if a.connector} - {
                    connector.get("host")}:
                raise Conflict(f"duplicate connectors detected on volume {vol.id}")
            mode = att.attach_mode or connector.get("mode", "rw")
            att.connector = connector
            att.connection_info = await self._connect(session, vol, att, connector)
            self._attached(vol, att, instance_uuid=att.instance_uuid, host=connector.get("host"),
                           mountpoint=connector.get("mountpoint"), mode=mode, mark=False)
            return views.attachment_view(att)

    async def complete(self, caller: Caller, attachment_id: str) -> None:
        caller.authorize("volume:attachment_complete")
        async with self.db.write() as session:
            att = await self.row(session, caller, attachment_id)
            caller.authorize("volume:attachment_complete", {"project_id": att.project_id})
            vol = await self.volume.volumes.row(session, Caller.internal(), att.volume_id, lock=True)
            if att.connection_info is None:
                raise BadRequest(f"Invalid volume attachment: Attachment {att.id} has no connection yet: update it "
                                 f"with a connector first.")
            self._attached(vol, att, instance_uuid=att.instance_uuid, host=None, mountpoint=None,
                           mode=att.attach_mode, mark=True)

    async def delete(self, caller: Caller, attachment_id: str) -> list[dict[str, Any]]:
        """Remove an attachment; the volume's remaining attachments (summaries)."""
        caller.authorize("volume:attachment_delete")
        async with self.db.write() as session:
            att = await self.row(session, caller, attachment_id)
            caller.authorize("volume:attachment_delete", {"project_id": att.project_id})
            vol = await self.volume.volumes.row(session, Caller.internal(), att.volume_id, lock=True)
            await self._finish_detach(session, vol, att)
            return [views.attachment_view(a, detail=False) for a in await self._live(session, vol.id)]

    async def get(self, caller: Caller, attachment_id: str) -> dict[str, Any]:
        async with self.db.read() as session:
            att = await self.row(session, caller, attachment_id)
            return views.attachment_view(att)

    async def list(self, caller: Caller, params: dict[str, list[str]], *, detail: bool) -> list[dict[str, Any]]:
        from mcloud.volume.schemas import as_bool  # noqa: PLC0415

        query = sa.select(VolumeAttachment).where(VolumeAttachment.deleted.is_(False))
        all_tenants = caller.is_admin and as_bool(_last(params, "all_tenants") or "false", "all_tenants")
        project = _last(params, "project_id")
        if caller.is_admin and (all_tenants or project):
            if project:
                query = query.where(VolumeAttachment.project_id == project)
        else:
            query = query.where(VolumeAttachment.project_id == (caller.project_id or ""))
        for key, values in params.items():
            if key in FILTERS:
                query = query.where(FILTERS[key] == values[-1])
        keys, dirs = _sort(params)
        sort = parse_sort(keys, dirs, SORT_KEYS, default=("created_at",))
        async with self.db.read() as session:
            rows = await page(session, query, VolumeAttachment.id, sort,
                              parse_limit(_last(params, "limit"), self.volume.config.max_limit),
                              _last(params, "marker"))
        return [views.attachment_view(a, detail=detail) for a in rows]

    # ------------------------------------------------------------------ the older os-attach flow

    async def _acting(self, session: AsyncSession, caller: Caller, volume_id: str, rule: str) -> Volume:
        caller.authorize(rule)
        vol = await self.volume.volumes.row(session, caller, volume_id, lock=True)
        caller.authorize(rule, {"project_id": vol.project_id})
        return vol

    async def reserve(self, caller: Caller, volume_id: str) -> None:
        """os-reserve: available (or in-use when multiattach) → attaching."""
        async with self.db.write() as session:
            vol = await self._acting(session, caller, volume_id, "volume_extension:volume_actions:reserve")
            expected = (st.AVAILABLE, st.IN_USE) if vol.multiattach else (st.AVAILABLE,)
            if vol.status not in expected:
                raise BadRequest(f"Invalid volume: Volume status must be {' or '.join(expected)} to reserve, but "
                                 f"the status is {vol.status}.")
            vol.status = st.ATTACHING
            vol.updated_at = now()

    async def unreserve(self, caller: Caller, volume_id: str) -> None:
        async with self.db.write() as session:
            vol = await self._acting(session, caller, volume_id, "volume_extension:volume_actions:unreserve")
            if vol.status != st.ATTACHING:
                return  # Cinder: nothing to do
            attached = any(a.attach_status == st.ATTACHED for a in await self._live(session, vol.id))
            vol.status = st.IN_USE if attached else st.AVAILABLE
            vol.updated_at = now()

    async def begin_detaching(self, caller: Caller, volume_id: str) -> None:
        async with self.db.write() as session:
            vol = await self._acting(session, caller, volume_id, "volume_extension:volume_actions:begin_detaching")
            if vol.status != st.IN_USE or vol.attach_status != st.ATTACHED:
                raise BadRequest("Invalid volume: Unable to detach volume. Volume status must be 'in-use' and "
                                 "attach_status must be 'attached' to detach.")
            vol.status = st.DETACHING
            vol.updated_at = now()

    async def roll_detaching(self, caller: Caller, volume_id: str) -> None:
        async with self.db.write() as session:
            vol = await self._acting(session, caller, volume_id, "volume_extension:volume_actions:roll_detaching")
            if vol.status == st.DETACHING:
                vol.status = st.IN_USE
                vol.updated_at = now()

    async def attach(self, caller: Caller, volume_id: str, *, instance_uuid: str | None, host_name: str | None,
                     mountpoint: str, mode: str = "rw") -> None:
        """os-attach: a new attachment, attached; the volume in-use."""
        async with self.db.write() as session:
            vol = await self._acting(session, caller, volume_id, "volume_extension:volume_actions:attach")
            if vol.status == st.MAINTENANCE:
                raise BadRequest("Invalid volume: The volume cannot be attached in maintenance mode.")
            allowed = (st.AVAILABLE, st.ATTACHING, st.RESERVED) + ((st.IN_USE,) if vol.multiattach else ())
            if vol.status not in allowed:
                raise BadRequest(f"Invalid volume: Volume {vol.id} status must be {' or '.join(allowed)} to attach, "
                                 f"but the current status is {vol.status}.")
            self._check_mode(vol, mode)
            live = await self._live(session, vol.id)
            att = next((a for a in live if a.attach_status != st.ATTACHED and a.instance_uuid == instance_uuid),
                       None)
            if att is None:
                att = VolumeAttachment(id=str(uuid.uuid4()), volume_id=vol.id, project_id=vol.project_id,
                                       attach_status=st.ATTACH_RESERVED, attach_mode=mode, created_at=now())
                session.add(att)
            self._attached(vol, att, instance_uuid=instance_uuid, host=host_name, mountpoint=mountpoint, mode=mode,
                           mark=True)

    async def detach(self, caller: Caller, volume_id: str, attachment_id: str | None,
                     rule: str = "volume_extension:volume_actions:detach") -> None:
        """os-detach (and os-force_detach for admins): the attachment named, or the only one."""
        async with self.db.write() as session:
            vol = await self._acting(session, caller, volume_id, rule)
            if vol.status == st.MAINTENANCE and rule.endswith(":detach"):
                raise BadRequest("Invalid volume: The volume cannot be detached in maintenance mode.")
            live = await self._live(session, vol.id)
            if attachment_id:
                att = next((a for a in live if a.id == attachment_id), None)
                if att is None:
                    raise NotFound(f"Volume attachment could not be found with filter: attachment_id = "
                                   f"{attachment_id}.")
            elif len(live) == 1:
                att = live[0]
            elif not live:
                # Cinder's manager: "Volume detach called, but volume not attached": available, no error
                vol.status, vol.attach_status = st.AVAILABLE, st.DETACHED
                vol.updated_at = now()
                return
            else:
                raise BadRequest("Invalid volume: Detach volume failed: more than one attachment, but no "
                                 "attachment_id provided.")
            await self._finish_detach(session, vol, att)

    async def initialize_connection(self, caller: Caller, volume_id: str, connector: dict[str, Any]) -> dict[str, Any]:
        async with self.db.write() as session:
            vol = await self._acting(session, caller, volume_id,
                                     "volume_extension:volume_actions:initialize_connection")
            if vol.status == st.MAINTENANCE:
                raise BadRequest("Invalid volume: The volume connection cannot be initialized in maintenance mode.")
            mode = (vol.admin_metadata or {}).get("attached_mode") or (
                "ro" if (vol.admin_metadata or {}).get("readonly") == "True" else "rw")
            probe = VolumeAttachment(id="", volume_id=vol.id, project_id=vol.project_id, attach_status="",
                                     attach_mode=mode)
            info = await self._connect(session, vol, probe, connector)
            info.pop("attachment_id", None)
            return info

    async def terminate_connection(self, caller: Caller, volume_id: str) -> None:
        async with self.db.read() as session:
            await self._acting(session, caller, volume_id, "volume_extension:volume_actions:terminate_connection")

    async def views_of(self, session: AsyncSession, volume_id: str) -> list[VolumeAttachment]:
        return await self._live(session, volume_id)


__all__ = ["Attachments", "Volume"]

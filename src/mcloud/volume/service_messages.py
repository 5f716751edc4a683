"""User messages (3.3, ``volume.messages``): what went wrong with a project's volume, snapshot or
backup, in Cinder's message ids (cinder/message/message_field.py), so that a user sees why a
resource went to ``error``. The other parts call :meth:`Messages.record` (seam 2)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.core.errors import NotFound
from mcloud.volume import models_types as m
from mcloud.volume.models_types import now
from mcloud.volume.service_types import listing

#: Cinder's message_ttl (seconds a message is kept: guaranteed_until)
MESSAGE_TTL = 2592000

# resource types (message_field.Resource)
VOLUME = "VOLUME"
VOLUME_SNAPSHOT = "VOLUME_SNAPSHOT"
VOLUME_BACKUP = "VOLUME_BACKUP"

#: message_field.Action: id -> what was being done
ACTIONS = {
    "001": "schedule allocate volume", "002": "attach volume", "003": "copy volume to image",
    "004": "update attachment", "005": "copy image to volume", "006": "unmanage volume", "007": "extend volume",
    "008": "create volume from backend storage", "009": "create snapshot", "010": "delete snapshot",
    "011": "update snapshot", "012": "update snapshot metadata", "013": "create backup", "014": "delete backup",
    "015": "restore backup", "016": "reimage volume",
}
#: message_field.Detail: id -> what went wrong
DETAILS = {
    "001": "An unknown error occurred.", "002": "Driver is not initialized at present.",
    "003": "Could not find any available weighted backend.", "004": "Failed to upload volume to image at backend.",
    "005": "Volume's attach mode is invalid.", "006": "Not enough quota resource for operation.",
    "007": "Image used for creating volume exceeds available space.",
    "008": "Unmanaging encrypted volumes is not supported.", "009": "Compute service failed to extend volume.",
    "010": "Volume Driver failed to extend volume.", "011": "Image signature verification failed.",
    "012": "Driver failed to create the volume.", "013": "Snapshot failed to create.",
    "014": "Volume snapshot update metadata failed.", "015": "Snapshot is busy.",
    "016": "Snapshot failed to delete.", "017": "Backup status is invalid.", "018": "Backup service is down.",
    "019": "Failed to get backup device from the volume service.", "020": "Backup driver failed to create backup.",
    "021": "Failed to attach volume.", "022": "Failed to detach volume.",
    "023": "Cleanup of temporary volume/snapshot failed.",
    "024": "Backup failed to schedule. Service not found for creating backup.",
    "025": "Backup driver failed to delete backup.", "026": "Backup driver failed to restore backup.",
    "027": "Volume status is invalid.", "028": "Compute service failed to reimage volume.",
    "029": "The image disk format must be the same as the volume format for the volume type you are requesting.",
    "030": "Incremental backup not possible, forcing full backup.",
}

# the names the other parts pass (message_field.Action.X[0], Detail.X[0])
SCHEDULE_ALLOCATE_VOLUME, ATTACH_VOLUME, COPY_VOLUME_TO_IMAGE, UPDATE_ATTACHMENT = "001", "002", "003", "004"
COPY_IMAGE_TO_VOLUME, EXTEND_VOLUME, SNAPSHOT_CREATE, SNAPSHOT_DELETE = "005", "007", "009", "010"
BACKUP_CREATE, BACKUP_DELETE, BACKUP_RESTORE = "013", "014", "015"
UNKNOWN_ERROR, NO_BACKEND_AVAILABLE, FAILED_TO_UPLOAD_VOLUME, QUOTA_EXCEED = "001", "003", "004", "006"
NOT_ENOUGH_SPACE_FOR_IMAGE, DRIVER_FAILED_EXTEND, DRIVER_FAILED_CREATE = "007", "010", "012"
SNAPSHOT_CREATE_ERROR, SNAPSHOT_DELETE_ERROR, ATTACH_ERROR, DETACH_ERROR = "013", "016", "021", "022"
BACKUP_CREATE_DRIVER_ERROR, BACKUP_DELETE_DRIVER_ERROR, BACKUP_RESTORE_ERROR = "020", "025", "026"
VOLUME_INVALID_STATE = "027"

FILTERS = ("resource_uuid", "resource_type", "event_id", "request_id", "message_level", "project_id")
SORT_KEYS = ("id", "created_at", "event_id", "message_level", "resource_type", "resource_uuid", "request_id")


def user_message(row: m.Message) -> str:
    """Cinder's "action:detail" text (message api _translate_message)."""
    return f"{ACTIONS.get(row.action_id or '', '')}:{DETAILS.get(row.detail_id or '', DETAILS['001'])}"


class Messages:
    def __init__(self, volume: Any):
        self.volume = volume

    async def record(self, session: AsyncSession, project_id: str, resource_type: str, resource_uuid: str | None,
                     action_id: str, detail_id: str = UNKNOWN_ERROR, message_level: str = "ERROR",
                     request_id: str | None = None) -> m.Message:
        """Record a user message in the caller's transaction (seam 2): ``action_id`` and
        ``detail_id`` are Cinder's ids (the constants above), ``resource_type`` VOLUME,
        VOLUME_SNAPSHOT or VOLUME_BACKUP."""
        if detail_id not in DETAILS:
            detail_id = UNKNOWN_ERROR
        row = m.Message(id=str(uuid.uuid4()), project_id=project_id, request_id=request_id or f"req-{uuid.uuid4()}",
                        resource_type=resource_type, resource_uuid=resource_uuid,
                        event_id=f"VOLUME_{resource_type}_{action_id}_{detail_id}", message_level=message_level,
                        action_id=action_id, detail_id=detail_id, created_at=now(),
                        expires_at=now() + timedelta(seconds=MESSAGE_TTL))
        session.add(row)
        await session.flush()
        return row

    def _scope(self, caller: Any) -> list[Any]:
        if caller.is_admin:
            return []
        return [m.Message.project_id == (caller.project_id or "")]

    async def get(self, session: AsyncSession, caller: Any, message_id: str) -> m.Message:
        caller.authorize("message:get")
        row = (await session.execute(sa.select(m.Message).where(
            m.Message.id == message_id, *self._scope(caller)))).scalar()
        if row is None:
            raise NotFound(f"Message {message_id} could not be found.")
        return row

    async def list(self, session: AsyncSession, caller: Any, *, filters: dict[str, str] | None = None,
                   sort: list[tuple[str, str]] | None = None, limit: int | None = None,
                   marker: str | None = None, offset: int = 0) -> list[m.Message]:
        caller.authorize("message:get_all")
        query = sa.select(m.Message).where(*self._scope(caller))
        for key, value in (filters or {}).items():
            if key in FILTERS:
                query = query.where(getattr(m.Message, key) == value)
        return await listing(session, query, m.Message, SORT_KEYS, sort, limit, marker, offset)

    async def delete(self, session: AsyncSession, caller: Any, message_id: str) -> None:
        row = await self.get(session, caller, message_id)
        caller.authorize("message:delete", {"project_id": row.project_id})
        await session.delete(row)
        await session.flush()

    async def expire(self, session: AsyncSession) -> int:
        """Delete messages past their guaranteed_until (Cinder's cleanup_expired_messages)."""
        result = await session.execute(sa.delete(m.Message).where(m.Message.expires_at < now()))
        return int(result.rowcount or 0)

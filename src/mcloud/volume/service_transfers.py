"""Volume transfers (Cinder's transfer API): a project offers one of its available volumes
(status ``awaiting-transfer``) with a random ``auth_key`` shown once; a member of any project who
knows the transfer's id and key accepts it, and the volume (with its snapshots unless
``no_snapshots``, 3.55) becomes that project's, counted in its quota from then on. Deleting the
transfer puts the volume back to ``available``.

As Cinder, only a salted HMAC-SHA1 of the key is kept; the key is 16 hex digits, the salt 8. An
accepted or deleted transfer stays as a deleted row for the history 3.57 shows (``accepted``,
``destination_project_id``) but is listed and found no more.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.core.errors import BadRequest, NotFound
from mcloud.core.pagination import SortKey, page, parse_limit, parse_sort
from mcloud.volume import states as st
from mcloud.volume.models_backups import Transfer, now

SALT_LENGTH = 8
KEY_LENGTH = 16
SORT_COLUMNS = {"created_at": Transfer.created_at, "id": Transfer.id, "name": Transfer.display_name,
                "display_name": Transfer.display_name, "volume_id": Transfer.volume_id,
                "updated_at": Transfer.updated_at}


def _models() -> tuple[Any, Any]:
    from mcloud.volume import models

    return models.Volume, models.Snapshot


def crypt_hash(salt: str, auth_key: str) -> str:
    return hmac.new(salt.encode(), str(auth_key).encode(), hashlib.sha1).hexdigest()


class Transfers:
    def __init__(self, volume: Any):
        self.volume = volume

    def _lock(self, query: sa.Select[Any]) -> sa.Select[Any]:
        return query if self.volume.db.is_sqlite else query.with_for_update()

    async def _get(self, session: AsyncSession, caller: Any, transfer_id: str, *, any_project: bool = False,
                   lock: bool = False) -> Transfer:
        query = sa.select(Transfer).where(Transfer.id == transfer_id, Transfer.deleted == sa.false())
        if not (any_project or caller.is_admin):
            query = query.where(Transfer.source_project_id == caller.project_id)
        row = (await session.execute(self._lock(query) if lock else query)).scalar()
        if row is None:
            raise NotFound(f"Transfer {transfer_id} could not be found.")
        return row

    async def get(self, caller: Any, transfer_id: str) -> Transfer:
        caller.authorize("volume:get_transfer")
        async with self.volume.db.read() as session:
            return await self._get(session, caller, transfer_id)

    async def list(self, caller: Any, filters: Mapping[str, str], *, all_tenants: bool = False,
                   sort: list[str] | None = None, sort_dirs: list[str] | None = None, limit: str | None = None,
                   marker: str | None = None, offset: int = 0) -> tuple[list[Transfer], int]:
        caller.authorize("volume:get_all_transfers")
        query = sa.select(Transfer).where(Transfer.deleted == sa.false())
        if not (caller.is_admin and all_tenants):
            query = query.where(Transfer.source_project_id == caller.project_id)
        for key, value in filters.items():
            column = {"name": Transfer.display_name, "volume_id": Transfer.volume_id,
                      "id": Transfer.id, "source_project_id": Transfer.source_project_id}.get(key)
            if column is not None:
                query = query.where(column == value)
        keys = parse_sort(sort or [], sort_dirs or ["asc"], SORT_COLUMNS, default=["created_at"])
        size = parse_limit(limit, self.volume.config.max_limit)
        async with self.volume.db.read() as session:
            rows = await page(session, query, Transfer.id, [SortKey(k.column, k.descending) for k in keys],
                              size + offset, marker)
        return rows[offset:], size

    async def create(self, caller: Any, volume_id: str, name: str | None = None,
                     no_snapshots: bool = False) -> tuple[Transfer, str]:
        """The transfer and its auth_key (shown this once)."""
        volume_model, snapshot_model = _models()
        async with self.volume.db.write() as session:
            query = sa.select(volume_model).where(volume_model.id == volume_id, volume_model.deleted == sa.false())
            if not caller.is_admin:
                query = query.where(volume_model.project_id == caller.project_id)
            vol = (await session.execute(self._lock(query))).scalar()
            if vol is None:
                raise NotFound(f"Volume {volume_id} could not be found.")
            caller.authorize("volume:create_transfer", {"project_id": vol.project_id, "user_id": vol.user_id})
            if vol.status != st.AVAILABLE:
                raise BadRequest("Invalid volume: status must be available")
            if getattr(vol, "encryption_key_id", None):
                raise BadRequest("Invalid volume: transferring encrypted volume is not supported")
            if not no_snapshots:
                snaps = (await session.execute(sa.select(snapshot_model).where(
                    snapshot_model.volume_id == volume_id, snapshot_model.deleted == sa.false()))).scalars()
                for snap in snaps:
                    if snap.status != st.AVAILABLE:
                        raise BadRequest(f"Invalid snapshot: snapshot: {snap.id} status must be available")
            salt = secrets.token_hex(SALT_LENGTH)[:SALT_LENGTH]
            auth_key = secrets.token_hex(KEY_LENGTH)[:KEY_LENGTH]
            created = now()
            row = Transfer(id=str(uuid.uuid4()), volume_id=volume_id, display_name=name, salt=salt,
                           crypt_hash=crypt_hash(salt, auth_key), source_project_id=vol.project_id,
                           destination_project_id=None, accepted=False, no_snapshots=bool(no_snapshots),
                           deleted=False, created_at=created, updated_at=created)
            session.add(row)
            vol.status = st.AWAITING_TRANSFER
            vol.updated_at = created
        return row, auth_key

    async def delete(self, caller: Any, transfer_id: str) -> None:
        volume_model, _ = _models()
        async with self.volume.db.write() as session:
            row = await self._get(session, caller, transfer_id, lock=True)
            vol = (await session.execute(self._lock(sa.select(volume_model).where(
                volume_model.id == row.volume_id)))).scalar()
            caller.authorize("volume:delete_transfer",
                             {"project_id": vol.project_id if vol is not None else row.source_project_id})
            if vol is not None and not vol.deleted and vol.status == st.AWAITING_TRANSFER:
                vol.status = st.AVAILABLE
                vol.updated_at = now()
            row.deleted = True
            row.deleted_at = row.updated_at = now()

    async def accept(self, caller: Any, transfer_id: str, auth_key: str) -> Transfer:
        caller.authorize("volume:accept_transfer")
        volume_model, snapshot_model = _models()
        async with self.volume.db.write() as session:
            row = await self._get(session, caller, transfer_id, any_project=True, lock=True)
            if not hmac.compare_digest(crypt_hash(row.salt, str(auth_key)), row.crypt_hash):
                raise BadRequest(f"Invalid auth key: Attempt to transfer {transfer_id} with invalid auth key.")
            vol = (await session.execute(self._lock(sa.select(volume_model).where(
                volume_model.id == row.volume_id)))).scalar()
            if vol is None or vol.deleted:
                raise NotFound(f"Volume {row.volume_id} could not be found.")
            if vol.status != st.AWAITING_TRANSFER:
                raise BadRequest(f"Invalid volume: Volume {vol.id} is {vol.status}, not awaiting-transfer.")
            if getattr(vol, "group_id", None):
                raise BadRequest(f"Invalid volume: Volume {vol.id} must not be part of a group.")
            snaps = []
            if not row.no_snapshots:
                snaps = list((await session.execute(sa.select(snapshot_model).where(
                    snapshot_model.volume_id == vol.id, snapshot_model.deleted == sa.false()))).scalars())
            project = caller.project_id
            if project != vol.project_id:
                deltas: dict[str, int] = {"volumes": 1, "gigabytes": int(vol.size)}
                type_name = await self._type_name(session, getattr(vol, "volume_type_id", None))
                if type_name:
                    deltas[f"volumes_{type_name}"] = 1
                    deltas[f"gigabytes_{type_name}"] = int(vol.size)
                if snaps:
                    deltas["snapshots"] = len(snaps)
                    deltas["gigabytes"] += sum(int(getattr(s, "volume_size", 0) or 0) for s in snaps)
                    if type_name:
                        deltas[f"snapshots_{type_name}"] = len(snaps)
                        deltas[f"gigabytes_{type_name}"] += sum(int(getattr(s, "volume_size", 0) or 0)
                                                                for s in snaps)
                await self.volume.quotas.reserve(session, project, deltas)
            vol.project_id = project
            vol.user_id = caller.user_id
            vol.status = st.AVAILABLE
            vol.updated_at = now()
            for snap in snaps:
                snap.project_id = project
                if hasattr(snap, "user_id"):
                    snap.user_id = caller.user_id
                snap.updated_at = now()
            row.accepted = True
            row.destination_project_id = project
            row.deleted = True
            row.deleted_at = row.updated_at = now()
        return row

    async def _type_name(self, session: AsyncSession, type_id: str | None) -> str | None:
        if not type_id or not hasattr(self.volume.types, "get"):
            return None
        try:
            view = await self.volume.types.get(session, type_id)
        except Exception:  # noqa: BLE001 (a type deleted since: no per-type quota)
            return None
        return getattr(view, "name", None) if view is not None else None

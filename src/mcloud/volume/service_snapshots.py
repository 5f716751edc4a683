"""Snapshots (``volume.snapshots``): create (``force`` for an in-use volume; not needed from 3.66),
list, show, update, delete, metadata and the snapshot actions, as Cinder's volume/api.py.

The row is written in ``creating`` / ``deleting`` and the manager's task submitted in the same
transaction (seam 1); quota through ``volume.quotas.reserve`` (seam 2). Compute's volume-backed
images call :meth:`Snapshots.create` in-process (seam 3).
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.core.errors import BadRequest, NotFound
from mcloud.core.pagination import page, parse_limit, parse_sort
from mcloud.volume import states as st
from mcloud.volume import views
from mcloud.volume.models import Snapshot, Volume, now
from mcloud.volume.schemas import as_bool, int_param
from mcloud.volume.service import Caller
from mcloud.volume.service_volumes import _last, _sort, literal_dict

SORT_KEYS = {"created_at": Snapshot.created_at, "updated_at": Snapshot.updated_at, "id": Snapshot.id,
             "name": Snapshot.display_name, "display_name": Snapshot.display_name, "status": Snapshot.status,
             "size": Snapshot.volume_size, "volume_id": Snapshot.volume_id, "project_id": Snapshot.project_id}
FILTERS = {"name": Snapshot.display_name, "display_name": Snapshot.display_name, "status": Snapshot.status,
           "volume_id": Snapshot.volume_id, "id": Snapshot.id, "group_snapshot_id": Snapshot.group_snapshot_id}
DELETE_REFUSED = "Invalid snapshot: Snapshot status must be available or error and must not be part of a group."


class Snapshots:
    def __init__(self, volume: Any):
        self.volume = volume

    @property
    def db(self) -> Any:
        return self.volume.db

    async def row(self, session: AsyncSession, caller: Caller, snapshot_id: str, *, lock: bool = False) -> Snapshot:
        """A live snapshot the caller may see, else Cinder's 404 "Snapshot X could not be found."."""
        query = sa.select(Snapshot).where(Snapshot.id == str(snapshot_id), Snapshot.deleted.is_(False))
        if not caller.is_admin:
            query = query.where(Snapshot.project_id == (caller.project_id or ""))
        if lock and not self.db.is_sqlite:
            query = query.with_for_update()
        row = (await session.execute(query)).scalar()
        if row is None:
            raise NotFound(f"Snapshot {snapshot_id} could not be found.")
        return row

    async def _acting(self, session: AsyncSession, caller: Caller, snapshot_id: str, rule: str) -> Snapshot:
        caller.authorize(rule)
        row = await self.row(session, caller, snapshot_id, lock=True)
        caller.authorize(rule, {"project_id": row.project_id})
        return row

    async def get(self, caller: Caller, snapshot_id: str) -> dict[str, Any]:
        caller.authorize("volume:get_snapshot")
        async with self.db.read() as session:
            row = await self.row(session, caller, snapshot_id)
            caller.authorize("volume:get_snapshot", {"project_id": row.project_id})
            return views.snapshot_view(row, caller)

    async def create(self, caller: Caller, volume_id: str, name: str | None = None, force: bool = True, *,
                     description: str | None = None, metadata: dict[str, str] | None = None) -> dict[str, Any]:
        """A snapshot in ``creating`` with its task submitted; Cinder's 400 when the volume is busy
        (in-use needs ``force`` before 3.66), 413 over quota."""
        caller.authorize("volume:create_snapshot")
        async with self.db.write() as session:
            vol = await self.volume.volumes.row(session, caller, volume_id, lock=True)
            caller.authorize("volume:create_snapshot", {"project_id": vol.project_id})
            if vol.migration_status in ("migrating", "starting"):
                raise BadRequest("Invalid volume: Snapshot cannot be created while volume is migrating.")
            if vol.status == st.MAINTENANCE:
                raise BadRequest("Invalid volume: The snapshot cannot be created when the volume is in maintenance "
                                 "mode.")
            allowed = (st.AVAILABLE, st.IN_USE) if force else (st.AVAILABLE,)
            if vol.status not in allowed:
                raise BadRequest(f"Invalid volume: Volume {vol.id} status must be {' or '.join(allowed)}, but "
                                 f"current status is: {vol.status}.")
            type_name = await self.volume.volumes._type_name(session, vol)
            deltas = {"snapshots": 1, "gigabytes": vol.size}
            if type_name:
                deltas.update({f"snapshots_{type_name}": 1, f"gigabytes_{type_name}": vol.size})
            await self.volume.quotas.reserve(session, vol.project_id, deltas)
            row = Snapshot(id=str(uuid.uuid4()), volume_id=vol.id, project_id=vol.project_id, user_id=caller.user_id,
                           volume_size=vol.size, status=st.CREATING, progress="0%", display_name=name,
                           display_description=description, volume_type_id=vol.volume_type_id,
                           metadata_=dict(metadata or {}), use_quota=True, created_at=now())
            session.add(row)
            await session.flush()
            await self.volume.manager.create_snapshot(session, row)
            return views.snapshot_view(row, caller, extended=False)

    async def list(self, caller: Caller, params: dict[str, list[str]], *,
                   detail: bool) -> tuple[list[dict[str, Any]], list[Snapshot], int | None]:
        caller.authorize("volume:get_all_snapshots")
        query = sa.select(Snapshot).where(Snapshot.deleted.is_(False))
        all_tenants = caller.is_admin and as_bool(_last(params, "all_tenants") or "false", "all_tenants")
        project = _last(params, "project_id")
        if caller.is_admin and (all_tenants or project):
            if project:
                query = query.where(Snapshot.project_id == project)
        else:
            query = query.where(Snapshot.project_id == (caller.project_id or ""))
        for key, values in params.items():
            value = values[-1]
            if key.endswith("~") and caller.at(3, 34) and key[:-1] in ("name", "display_name", "status"):
                query = query.where(FILTERS[key[:-1]].like(f"%{value}%"))
            elif key in FILTERS:
                query = query.where(FILTERS[key] == value)
            elif key == "metadata":
                query = query.where(*[Snapshot.metadata_[str(k)].as_string() == str(v)
                                      for k, v in literal_dict(value, key).items()])
            elif key == "consumes_quota" and caller.at(3, 65):
                query = query.where(Snapshot.use_quota.is_(as_bool(value, key)))
        limit = parse_limit(_last(params, "limit"), self.volume.config.max_limit)
        keys, dirs = _sort(params)
        sort = parse_sort(keys, dirs, SORT_KEYS, default=("created_at",))
        if not dirs and not any(":" in k for k in keys):
            sort = [s.__class__(s.column, True) for s in sort]
        async with self.db.read() as session:
            count = None
            if caller.at(3, 45) and as_bool(_last(params, "with_count") or "false", "with_count"):
                count = (await session.execute(sa.select(sa.func.count()).select_from(query.subquery()))).scalar()
            offset = int_param(params, "offset") or 0
            rows = await page(session, query.offset(offset) if offset else query, Snapshot.id, sort, limit,
                              _last(params, "marker"))
        return [views.snapshot_view(r, caller, extended=detail) for r in rows], rows, count

    async def update(self, caller: Caller, snapshot_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        async with self.db.write() as session:
            row = await self._acting(session, caller, snapshot_id, "volume:update_snapshot")
            for key, attr in (("name", "display_name"), ("display_name", "display_name"),
                              ("description", "display_description"),
                              ("display_description", "display_description")):
                if key in fields:
                    setattr(row, attr, fields[key])
            row.updated_at = now()
            return views.snapshot_view(row, caller, extended=False)

    async def delete(self, caller: Caller, snapshot_id: str, *, force: bool = False) -> None:
        async with self.db.write() as session:
            rule = "volume_extension:snapshot_admin_actions:force_delete" if force else "volume:delete_snapshot"
            row = await self._acting(session, caller, snapshot_id, rule)
            if row.group_snapshot_id is not None or (
                    not force and row.status not in (st.AVAILABLE, st.ERROR)):
                raise BadRequest(DELETE_REFUSED)
            if row.status == st.DELETING and not force:
                raise BadRequest(DELETE_REFUSED)
            row.status = st.DELETING
            row.updated_at = now()
            await self.volume.manager.delete_snapshot(session, row)

    # ------------------------------------------------------------------ actions

    async def reset_status(self, caller: Caller, snapshot_id: str, status: str) -> None:
        if status not in st.SNAPSHOT_STATUSES:
            raise BadRequest(f"Invalid input received: Must specify a valid status (got {status}).")
        async with self.db.write() as session:
            row = await self._acting(session, caller, snapshot_id,
                                     "volume_extension:snapshot_admin_actions:reset_status")
            row.status = status
            row.updated_at = now()

    async def update_status(self, caller: Caller, snapshot_id: str, status: str, progress: str | None) -> None:
        """os-update_snapshot_status: what a driver reports (Cinder's allowed moves)."""
        moves = {st.CREATING: (st.CREATING, st.AVAILABLE, st.ERROR), st.DELETING: (st.DELETING, st.ERROR_DELETING)}
        async with self.db.write() as session:
            row = await self._acting(session, caller, snapshot_id,
                                     "snapshot_extension:snapshot_actions:update_snapshot_status")
            if status not in moves.get(row.status, ()):
                raise BadRequest(f"Invalid input received: Snapshot status {row.status} not allowed for "
                                 f"update_snapshot_status")
            row.status = status
            if progress is not None:
                row.progress = progress
            row.updated_at = now()

    # ------------------------------------------------------------------ metadata

    async def metadata(self, caller: Caller, snapshot_id: str) -> dict[str, str]:
        caller.authorize("volume:get_snapshot_metadata")
        async with self.db.read() as session:
            row = await self.row(session, caller, snapshot_id)
            caller.authorize("volume:get_snapshot_metadata", {"project_id": row.project_id})
            return dict(row.metadata_ or {})

    async def set_metadata(self, caller: Caller, snapshot_id: str, metadata: dict[str, str], *,
                           replace: bool) -> dict[str, str]:
        async with self.db.write() as session:
            row = await self._acting(session, caller, snapshot_id, "volume:update_snapshot_metadata")
            row.metadata_ = dict(metadata) if replace else {**(row.metadata_ or {}), **metadata}
            row.updated_at = now()
            return dict(row.metadata_)

    async def delete_metadata(self, caller: Caller, snapshot_id: str, key: str) -> None:
        async with self.db.write() as session:
            row = await self._acting(session, caller, snapshot_id, "volume:delete_snapshot_metadata")
            current = dict(row.metadata_ or {})
            if key not in current:
                raise NotFound(f"Metadata key: {key} could not be found.")
            del current[key]
            row.metadata_ = current
            row.updated_at = now()

    async def volume_of(self, session: AsyncSession, row: Snapshot) -> Volume | None:
        return await session.get(Volume, row.volume_id)

"""Backups (Cinder's backup API and backup manager, in one process): create full or incremental
backups of a volume or of one of its snapshots, restore them to a new or an existing volume,
delete them, and the admin's reset-status and force-delete.

The API side checks and writes the rows in one transaction (the backup ``creating``, the volume
``backing-up`` or the snapshot ``backing-up``, Cinder's quota check for ``backups`` and
``backup_gigabytes``) and submits a durable task in the same transaction; the task moves the
data through the backup driver (``backup_drivers/``) and sets the end states as Cinder's backup
manager does:

- create: the volume's data (an in-use volume's through a temporary backend snapshot, named from
  the backup's id so a resumed task finds it) → backup ``available``; the volume or snapshot back
  to its former status. Failure: backup ``error`` with ``fail_reason``, nothing kept.
- restore to an existing volume: backup ``restoring``, volume ``restoring-backup`` → both
  ``available``; failure: the volume ``error_restoring``, the backup ``available`` again. A restore
  without a volume makes one through ``volumes.create(..., backup_id=...)``: the manager's create
  task fills it (:meth:`Backups.restore_into`), so it is ``available`` only once whole.
- delete: backup ``deleting`` → the row goes; failure: ``error_deleting``.

A volume made from a backup (``POST /volumes`` with ``backup_id``, 3.47) is made by the manager,
which calls :meth:`Backups.restore_into` once the backend has made the blank volume.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.core.errors import BadRequest, NotFound
from mcloud.core.pagination import SortKey, page, parse_limit, parse_sort
from mcloud.core.tasks import Task, TaskContext
from mcloud.volume import states as st
from mcloud.volume.backup_drivers import BackupDriver, load_backup_driver
from mcloud.volume.models_backups import Backup, now

log = logging.getLogger("mcloud.volume.backups")

CREATE, RESTORE, DELETE = "volume.backup_create", "volume.backup_restore", "volume.backup_delete"
RESTORING = "restoring"
DEFAULT_CONTAINER = "volumebackups"
#: the volume an imported backup names (Cinder's IMPORT_VOLUME_ID)
IMPORT_VOLUME_ID = "00000000-0000-0000-0000-000000000000"
#: Cinder's module names of the drivers like ours, for backup records
SERVICE_NAMES = {"file": "posix", "rbd": "ceph", "fake": "fake"}
GIB = 1 << 30
#: the temporary snapshot of an in-use volume's backup: named from the backup, found again on resume
TEMP_SNAPSHOT_NS = uuid.UUID("5a0c1d1e-6b1f-4bb0-8f0e-62a1c4a3b0d1")
#: Cinder's user-message ids (cinder/message/message_field.py)
MSG_BACKUP_CREATE, MSG_BACKUP_DELETE, MSG_BACKUP_RESTORE = "015", "016", "017"
DETAIL_BACKUP_CREATE_FAILED, DETAIL_BACKUP_RESTORE_FAILED = "021", "026"

SORT_COLUMNS = {"created_at": Backup.created_at, "updated_at": Backup.updated_at, "id": Backup.id,
                "name": Backup.display_name, "display_name": Backup.display_name, "status": Backup.status,
                "size": Backup.size, "volume_id": Backup.volume_id, "container": Backup.container,
                "availability_zone": Backup.availability_zone, "project_id": Backup.project_id,
                "data_timestamp": Backup.data_timestamp}


def _models() -> tuple[Any, Any]:
    from mcloud.volume import models

    return models.Volume, models.Snapshot


def temp_snapshot_id(backup_id: str) -> str:
    return str(uuid.uuid5(TEMP_SNAPSHOT_NS, backup_id))


def after_commit(session: AsyncSession, fn: Any) -> None:
    sa_event.listen(session.sync_session, "after_commit", lambda _s: fn(), once=True)


def _is_admin(caller: Any) -> bool:
    return bool(caller.is_admin)


class Backups:
    def __init__(self, volume: Any):
        self.volume = volume
        self._driver: BackupDriver | None = None
        self._starting = asyncio.Lock()
        self._started = False

    # ------------------------------------------------------------------ the driver

    @property
    def driver_name(self) -> str:
        return str((self.volume.config.backup or {}).get("driver", "file"))

    async def driver(self) -> BackupDriver:
        async with self._starting:
            if self._driver is None:
                self._driver = load_backup_driver(self.volume.config.backup or {}, self.volume.data_dir)
            if not self._started:
                await self._driver.start()
                self._started = True
        return self._driver

    async def close(self) -> None:
        if self._driver is not None and self._started:
            await self._driver.close()
            self._started = False

    def register(self, tasks: Any) -> None:
        tasks.register(CREATE, self._run_create, on_failure=self._given_up)
        tasks.register(RESTORE, self._run_restore, on_failure=self._given_up)
        tasks.register(DELETE, self._run_delete, on_failure=self._given_up)

    async def _submit(self, session: AsyncSession, kind: str, backup: Backup, **payload: Any) -> None:
        await self.volume.tasks.submit(session, kind, {"backup_id": backup.id, **payload}, resource_id=backup.id,
                                       owner_project=backup.project_id)
        after_commit(session, self.volume.tasks.wake)

    # ------------------------------------------------------------------ reading

    def _visible(self, caller: Any, query: sa.Select[Any], all_tenants: bool = False) -> sa.Select[Any]:
        if _is_admin(caller) and all_tenants:
            return query
        return query.where(Backup.project_id == caller.project_id)

    async def _find(self, session: AsyncSession, caller: Any, model: Any, what: str, row_id: str,
                    lock: bool = False) -> Any:
        """A row of ``model`` the caller may see (its project's; an admin's: any), live; Cinder's
        404 "<What> <id> could not be found." otherwise."""
        query = sa.select(model).where(model.id == row_id)
        if hasattr(model, "deleted"):
            query = query.where(model.deleted == sa.false())
        if not _is_admin(caller):
            query = query.where(model.project_id == caller.project_id)
        if lock and not self.volume.db.is_sqlite:
            query = query.with_for_update()
        row = (await session.execute(query)).scalar()
        if row is None:
            raise NotFound(f"{what} {row_id} could not be found.")
        return row

    async def _get(self, session: AsyncSession, caller: Any, backup_id: str, lock: bool = False) -> Backup:
        return await self._find(session, caller, Backup, "Backup", backup_id, lock)

    async def get(self, caller: Any, backup_id: str) -> Backup:
        async with self.volume.db.read() as session:
            row = await self._get(session, caller, backup_id)
        caller.authorize("backup:get", {"project_id": row.project_id, "user_id": row.user_id})
        return row

    async def dependents(self, session: AsyncSession, ids: list[str]) -> set[str]:
        """Which of ``ids`` have incremental backups made on them."""
        if not ids:
            return set()
        rows = await session.execute(sa.select(Backup.parent_id).where(Backup.parent_id.in_(ids)).distinct())
        return {r for r in rows.scalars() if r}

    async def list(self, caller: Any, filters: Mapping[str, str], *, all_tenants: bool = False,
                   sort: list[str] | None = None, sort_dirs: list[str] | None = None, limit: str | None = None,
                   marker: str | None = None, offset: int = 0, with_count: bool = False
                   ) -> tuple[list[Backup], set[str], int | None, int]:
        """A page of the caller's backups (an admin's ``all_tenants``: everyone's); returns
        (rows, ids with dependents, total count when asked, the limit used)."""
        query = self._visible(caller, sa.select(Backup), all_tenants)
        for key, value in filters.items():
            column = {"name": Backup.display_name, "status": Backup.status, "volume_id": Backup.volume_id,
                      "project_id": Backup.project_id, "availability_zone": Backup.availability_zone,
                      "container": Backup.container, "parent_id": Backup.parent_id}.get(key)
            if column is not None:
                query = query.where(column == value)
        keys = parse_sort(sort or [], sort_dirs or ["desc"], SORT_COLUMNS, default=["created_at"])
        max_limit = self.volume.config.max_limit
        size = parse_limit(limit, max_limit)
        async with self.volume.db.read() as session:
            count = None
            if with_count:
                count = (await session.execute(sa.select(sa.func.count()).select_from(query.subquery()))).scalar()
            rows = await page(session, query, Backup.id, [SortKey(k.column, k.descending) for k in keys],
                              size + offset, marker)
            rows = rows[offset:]
            deps = await self.dependents(session, [r.id for r in rows])
        return rows, deps, count, size

    # ------------------------------------------------------------------ create

    async def _volume(self, session: AsyncSession, caller: Any, volume_id: str, lock: bool = False) -> Any:
        return await self._find(session, caller, _models()[0], "Volume", volume_id, lock)

    async def _snapshot(self, session: AsyncSession, caller: Any, snapshot_id: str, lock: bool = False) -> Any:
        return await self._find(session, caller, _models()[1], "Snapshot", snapshot_id, lock)

    async def _reserve(self, session: AsyncSession, project_id: str, deltas: dict[str, int]) -> None:
        await self.volume.quotas.reserve(session, project_id, deltas)

    async def create(self, caller: Any, volume_id: str, *, name: str | None = None, description: str | None = None,
                     container: str | None = None, incremental: bool = False, force: bool = False,
                     snapshot_id: str | None = None, metadata: dict[str, str] | None = None,
                     availability_zone: str | None = None) -> Backup:
        async with self.volume.db.write() as session:
            vol = await self._volume(session, caller, volume_id, lock=True)
            caller.authorize("backup:create", {"project_id": vol.project_id, "user_id": vol.user_id})
            snap = None
            if snapshot_id:
                snap = await self._snapshot(session, caller, snapshot_id, lock=True)
                if snap.volume_id != volume_id:
                    raise BadRequest(f"Invalid volume: Volume {volume_id} does not match with "
                                     f"snapshot.volume_id {snap.volume_id}.")
                if snap.status != st.AVAILABLE:
                    raise BadRequest(f"Invalid snapshot: Snapshot to be backed up must be available, but the "
                                     f"current status is \"{snap.status}\".")
            elif vol.status not in (st.AVAILABLE, st.IN_USE):
                raise BadRequest(f"Invalid volume: Volume to be backed up must be available or in-use, but the "
                                 f"current status is \"{vol.status}\".")
            elif vol.status == st.IN_USE and not force:
                raise BadRequest("Invalid volume: Backing up an in-use volume must use the force flag.")
            zone = availability_zone or vol.availability_zone
            if availability_zone and availability_zone != vol.availability_zone and \
                    availability_zone != self.volume.config.storage_availability_zone:
                raise BadRequest(f"Invalid input received: Availability zone '{availability_zone}' is invalid.")
            await self._reserve(session, caller.project_id or vol.project_id,
                                {"backups": 1, "backup_gigabytes": int(vol.size)})
            parent = None
            if incremental:
                # the parent: the caller's backup of this volume with the latest data_timestamp
                # (for a snapshot's backup, the latest taken before the snapshot)
                query = sa.select(Backup).where(Backup.volume_id == volume_id,
                                                Backup.project_id == caller.project_id)
                if snap is not None:
                    query = query.where(Backup.data_timestamp < snap.created_at)
                parent = (await session.execute(query.order_by(Backup.data_timestamp.desc(), Backup.created_at.desc())
                                                .limit(1))).scalar()
                if parent is None:
                    raise BadRequest("Invalid backup: No backups available to do an incremental backup.")
                if parent.status != st.AVAILABLE:
                    raise BadRequest("Invalid backup: The parent backup must be available for incremental backup.")
            created = now()
            row = Backup(id=str(uuid.uuid4()), project_id=caller.project_id or vol.project_id,
                         user_id=caller.user_id, volume_id=volume_id, snapshot_id=snapshot_id, status=st.CREATING,
                         display_name=name, display_description=description,
                         container=container or DEFAULT_CONTAINER, availability_zone=zone, size=int(vol.size),
                         object_count=0, parent_id=parent.id if parent else None,
                         data_timestamp=snap.created_at if snap is not None else created,
                         driver=self.driver_name, metadata_=dict(metadata or {}), created_at=created,
                         updated_at=created)
            if snap is not None:
                row.volume_previous_status = snap.status
                snap.status = st.BACKING_UP
                snap.updated_at = created
            else:
                row.volume_previous_status = vol.status
                vol.status = st.BACKING_UP
                vol.updated_at = created
            session.add(row)
            await session.flush()
            await self._submit(session, CREATE, row, volume_id=volume_id, snapshot_id=snapshot_id)
        return row

    # ------------------------------------------------------------------ update, delete, reset

    async def update(self, caller: Any, backup_id: str, values: dict[str, Any]) -> Backup:
        async with self.volume.db.write() as session:
            row = await self._get(session, caller, backup_id, lock=True)
            caller.authorize("backup:update", {"project_id": row.project_id, "user_id": row.user_id})
            if "name" in values:
                row.display_name = values["name"]
            if "description" in values:
                row.display_description = values["description"]
            if "metadata" in values:
                row.metadata_ = dict(values["metadata"] or {})
            row.updated_at = now()
        return row

    async def delete(self, caller: Any, backup_id: str, force: bool = False) -> None:
        async with self.volume.db.write() as session:
            row = await self._get(session, caller, backup_id, lock=True)
            if force:
                caller.authorize("volume_extension:backup_admin_actions:force_delete",
                                 {"project_id": row.project_id, "user_id": row.user_id})
            else:
                caller.authorize("backup:delete", {"project_id": row.project_id, "user_id": row.user_id})
                if row.status not in (st.AVAILABLE, st.ERROR):
                    raise BadRequest("Invalid backup: Backup status must be available or error")
            if await self.dependents(session, [row.id]):
                raise BadRequest("Invalid backup: Incremental backups exist for this backup.")
            if row.status == st.DELETING:
                return
            if row.status in (st.CREATING, RESTORING):
                await self._settle_source(session, row)
            row.status = st.DELETING
            row.updated_at = now()
            await self._submit(session, DELETE, row)

    async def reset_status(self, caller: Any, backup_id: str, status: str) -> None:
        async with self.volume.db.write() as session:
            row = await self._get(session, caller, backup_id, lock=True)
            caller.authorize("volume_extension:backup_admin_actions:reset_status",
                             {"project_id": row.project_id, "user_id": row.user_id})
            if status not in (st.AVAILABLE, st.ERROR):
                raise BadRequest(f"Invalid input received: Backup status {status} is not allowed: "
                                 "use available or error.")
            if row.status in (st.CREATING, RESTORING):
                await self._settle_source(session, row)
            row.status = status
            row.updated_at = now()

    # ------------------------------------------------------------------ export and import records

    def backup_service(self) -> str:
        """The name Cinder gives the driver in a backup record (``cinder.backup.drivers.<name>``)."""
        return "cinder.backup.drivers." + SERVICE_NAMES.get(self.driver_name, self.driver_name)

    async def export_record(self, caller: Any, backup_id: str) -> dict[str, str]:
        """Cinder's ``backup-record``: what ``import_record`` needs to make the backup known again
        (after a database loss, or in another cloud sharing the store)."""
        async with self.volume.db.read() as session:
            row = await self._get(session, caller, backup_id)
        caller.authorize("backup:export-import", {"project_id": row.project_id, "user_id": row.user_id})
        if row.status != st.AVAILABLE:
            raise BadRequest(f"Invalid backup: Backup status must be available and not {row.status}.")
        record = {"id": row.id, "size": row.size, "volume_id": row.volume_id, "snapshot_id": row.snapshot_id,
                  "display_name": row.display_name, "display_description": row.display_description,
                  "container": row.container, "availability_zone": row.availability_zone,
                  "object_count": row.object_count, "parent_id": row.parent_id, "driver": row.driver,
                  "data_timestamp": row.data_timestamp.isoformat() if row.data_timestamp else None,
                  "service_metadata": row.service_metadata, "volume_facts": row.volume_facts,
                  "metadata": dict(row.metadata_ or {})}
        url = base64.b64encode(json.dumps(record).encode()).decode()
        return {"backup_service": self.backup_service(), "backup_url": url}

    async def import_record(self, caller: Any, backup_service: str, backup_url: str) -> Backup:
        caller.authorize("backup:backup-import")
        if backup_service != self.backup_service():
            raise BadRequest(f"Invalid backup: Backup service {backup_service} is not the one this cloud "
                             f"runs ({self.backup_service()}).")
        try:
            record = json.loads(base64.b64decode(backup_url, validate=True))
        except (binascii.Error, ValueError):
            raise BadRequest("Invalid input received: Can't parse backup record.") from None
        if not isinstance(record, dict) or "id" not in record:
            raise BadRequest("Invalid input received: Provided backup record is missing an id")
        if "size" not in record:
            raise BadRequest("Invalid input received: Provided backup record is missing size attribute")
        meta = record.get("service_metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("chunks"), list):
            raise BadRequest("Invalid backup: The backup record does not say where the backup's data is.")
        try:
            backup_id = str(uuid.UUID(str(record["id"])))
            size = int(record["size"])
            stamp = datetime.fromisoformat(record["data_timestamp"]) if record.get("data_timestamp") else None
        except (TypeError, ValueError):
            raise BadRequest("Invalid input received: Can't parse backup record.") from None
        async with self.volume.db.write() as session:
            if await session.get(Backup, backup_id) is not None:
                raise BadRequest("Invalid backup: Backup already exists in database.")
            await self._reserve(session, caller.project_id, {"backups": 1, "backup_gigabytes": size})
            created = now()
            row = Backup(id=backup_id, project_id=caller.project_id, user_id=caller.user_id,
                         volume_id=IMPORT_VOLUME_ID, snapshot_id=record.get("snapshot_id"), status=st.AVAILABLE,
                         display_name=record.get("display_name"),
                         display_description=record.get("display_description"),
                         container=record.get("container") or DEFAULT_CONTAINER,
                         availability_zone=record.get("availability_zone"), size=size,
                         object_count=int(record.get("object_count") or 0), parent_id=record.get("parent_id"),
                         data_timestamp=stamp or created, driver=self.driver_name, service_metadata=meta,
                         volume_facts=record.get("volume_facts") or {}, metadata_=dict(record.get("metadata") or {}),
                         created_at=created, updated_at=created)
            session.add(row)
        return row

    # ------------------------------------------------------------------ restore

    async def restore(self, caller: Any, backup_id: str, volume_id: str | None = None,
                      name: str | None = None) -> dict[str, Any]:
        async with self.volume.db.read() as session:
            row = await self._get(session, caller, backup_id)
        caller.authorize("backup:restore", {"project_id": row.project_id, "user_id": row.user_id})
        if row.status != st.AVAILABLE:
            raise BadRequest("Invalid backup: Backup status must be available")
        if volume_id is None:
            # Cinder's API makes a volume of the backup's size (quota checked there); here the
            # manager makes it from the backup (restore_into), so it is available only when whole
            from mcloud.volume.service import Caller

            maker = Caller.internal(caller.project_id, caller.user_id, caller.request_id)
            made = await self.volume.volumes.create(
                maker, row.size, name=name or f"restore_backup_{backup_id}",
                description="auto-created_from_restore_from_backup", backup_id=backup_id,
                availability_zone=row.availability_zone or None)
            return {"backup_id": backup_id, "volume_id": made["id"], "volume_name": made.get("name")}
        async with self.volume.db.write() as session:
            row = await self._get(session, caller, backup_id, lock=True)
            if row.status != st.AVAILABLE:
                raise BadRequest("Invalid backup: Backup status must be available")
            vol = await self._volume(session, caller, volume_id, lock=True)
            if vol.status != st.AVAILABLE:
                raise BadRequest("Invalid volume: Volume to be restored to must be available")
            if row.size > vol.size:
                raise BadRequest(f"Invalid volume: volume size {vol.size} is too small to restore backup "
                                 f"of size {row.size}.")
            vol.status = st.RESTORING_BACKUP
            vol.updated_at = now()
            row.status = RESTORING
            row.restore_volume_id = volume_id
            row.updated_at = now()
            await self._submit(session, RESTORE, row, volume_id=volume_id)
            volume_name = vol.display_name
        return {"backup_id": backup_id, "volume_id": volume_id, "volume_name": volume_name}

    # ------------------------------------------------------------------ the tasks

    async def _backup_row(self, backup_id: str) -> Backup | None:
        async with self.volume.db.read() as session:
            return await session.get(Backup, backup_id)

    async def _volume_row(self, session: AsyncSession, volume_id: str) -> Any:
        volume_model, _ = _models()
        query = sa.select(volume_model).where(volume_model.id == volume_id)
        if not self.volume.db.is_sqlite:
            query = query.with_for_update()
        return (await session.execute(query)).scalar()

    async def _snapshot_row(self, session: AsyncSession, snapshot_id: str) -> Any:
        _, snapshot_model = _models()
        return (await session.execute(sa.select(snapshot_model).where(snapshot_model.id == snapshot_id))).scalar()

    async def _settle_source(self, session: AsyncSession, row: Backup) -> None:
        """Put the backed-up volume or snapshot (or the volume being restored) back as it was."""
        if row.status == RESTORING and row.restore_volume_id:
            vol = await self._volume_row(session, row.restore_volume_id)
            if vol is not None and not vol.deleted and vol.status == st.RESTORING_BACKUP:
                vol.status = st.ERROR_RESTORING
                vol.updated_at = now()
            return
        if row.snapshot_id:
            snap = await self._snapshot_row(session, row.snapshot_id)
            if snap is not None and not snap.deleted and snap.status == st.BACKING_UP:
                snap.status = row.volume_previous_status or st.AVAILABLE
                snap.updated_at = now()
            return
        vol = await self._volume_row(session, row.volume_id)
        if vol is not None and not vol.deleted and vol.status == st.BACKING_UP:
            vol.status = row.volume_previous_status or st.AVAILABLE
            vol.updated_at = now()

    async def _message(self, session: AsyncSession, project_id: str, backup_id: str, action: str,
                       detail: str) -> None:
        record = getattr(self.volume.messages, "record", None)
        if record is None:
            return
        try:
            async with session.begin_nested():
                await record(session, project_id, "VOLUME_BACKUP", backup_id, action, detail)
        except Exception:  # noqa: BLE001 (a message is not worth failing the state change)
            log.warning("could not record a user message for backup %s", backup_id, exc_info=True)

    def _progress(self, ctx: TaskContext) -> Any:
        last = [-1]

        async def report(done: int, total: int) -> None:
            percent = int(done * 100 / total) if total else 100
            if percent != last[0]:
                last[0] = percent
                await ctx.progress(percent)

        return report

    async def _run_create(self, ctx: TaskContext) -> dict[str, Any]:
        backup_id = ctx.payload["backup_id"]
        row = await self._backup_row(backup_id)
        if row is None or row.status != st.CREATING:
            return {"skipped": row.status if row is not None else "gone"}
        driver = await self.driver()
        temp = None
        try:
            backend = self.volume.manager.backend_for(await self._host_of(row.volume_id))
            parent_meta = None
            if row.parent_id:
                parent = await self._backup_row(row.parent_id)
                parent_meta = parent.service_metadata if parent is not None else None
            snapshot_id = row.snapshot_id
            if snapshot_id is None and row.volume_previous_status == st.IN_USE:
                # a guest writes to the volume: back up a crash-consistent snapshot of it
                temp = temp_snapshot_id(backup_id)
                await backend.create_snapshot(temp, row.volume_id)
                snapshot_id = temp
            data = backend.read(row.volume_id, snapshot_id, chunk_size=driver.chunk_size)
            meta = await driver.backup(backup_id, row.container or DEFAULT_CONTAINER, data, row.size * GIB,
                                       parent=parent_meta, progress=self._progress(ctx))
            if temp:
                await backend.delete_snapshot(temp, row.volume_id)
                temp = None
        except Exception as exc:  # noqa: BLE001 (any failure: the backup in error, nothing kept)
            log.warning("backup %s failed: %s", backup_id, exc)
            with contextlib.suppress(Exception):
                await driver.delete(backup_id, row.container or DEFAULT_CONTAINER)
            if temp:
                with contextlib.suppress(Exception):
                    await backend.delete_snapshot(temp, row.volume_id)
            async with self.volume.db.write() as session:
                current = await session.get(Backup, backup_id)
                if current is not None and current.status == st.CREATING:
                    await self._settle_source(session, current)
                    current.status = st.ERROR
                    current.fail_reason = str(exc)[:255] or type(exc).__name__
                    current.updated_at = now()
                    await self._message(session, current.project_id, backup_id, MSG_BACKUP_CREATE,
                                        DETAIL_BACKUP_CREATE_FAILED)
            return {"error": str(exc)}
        async with self.volume.db.write() as session:
            current = await session.get(Backup, backup_id)
            if current is None or current.status != st.CREATING:
                # deleted (forced) or reset while the data moved: keep nothing
                gone = True
            else:
                gone = False
                await self._settle_source(session, current)
                current.status = st.AVAILABLE
                current.service_metadata = meta
                current.object_count = int(meta.get("object_count", 0))
                current.volume_facts = await self._facts(session, current.volume_id)
                current.updated_at = now()
        if gone and (current is None or current.status != st.DELETING):
            await driver.delete(backup_id, row.container or DEFAULT_CONTAINER)
        return {"objects": int(meta.get("object_count", 0))}

    async def _host_of(self, volume_id: str) -> str | None:
        volume_model, _ = _models()
        async with self.volume.db.read() as session:
            return (await session.execute(sa.select(volume_model.host).where(volume_model.id == volume_id))).scalar()

    async def _facts(self, session: AsyncSession, volume_id: str) -> dict[str, Any]:
        """What a restore gives the volume back besides its data (Cinder keeps the volume's
        metadata in the backup): bootable, the image metadata and the volume's metadata."""
        volume_model, _ = _models()
        vol = (await session.execute(sa.select(volume_model).where(volume_model.id == volume_id))).scalar()
        if vol is None:
            return {}
        return {"bootable": bool(getattr(vol, "bootable", False)),
                "volume_image_metadata": dict(getattr(vol, "volume_image_metadata", None) or {}),
                "metadata": dict(getattr(vol, "metadata_", None) or {})}

    async def _restore_data(self, row: Backup, backend: Any, volume_id: str, ctx: TaskContext | None) -> None:
        if not row.service_metadata:
            raise RuntimeError(f"Backup {row.id} holds no data.")
        driver = await self.driver()
        progress = self._progress(ctx) if ctx is not None else None
        await backend.write(volume_id, driver.restore(row.service_metadata, progress=progress))

    async def _run_restore(self, ctx: TaskContext) -> dict[str, Any]:
        backup_id, volume_id = ctx.payload["backup_id"], ctx.payload["volume_id"]
        row = await self._backup_row(backup_id)
        if row is None or row.status != RESTORING:
            return {"skipped": row.status if row is not None else "gone"}
        try:
            backend = self.volume.manager.backend_for(await self._host_of(volume_id))
            await self._restore_data(row, backend, volume_id, ctx)
        except Exception as exc:  # noqa: BLE001
            log.warning("restore of backup %s to volume %s failed: %s", backup_id, volume_id, exc)
            async with self.volume.db.write() as session:
                current = await session.get(Backup, backup_id)
                vol = await self._volume_row(session, volume_id)
                if vol is not None and not vol.deleted and vol.status in (st.RESTORING_BACKUP, st.CREATING):
                    vol.status = st.ERROR_RESTORING
                    vol.updated_at = now()
                if current is not None and current.status == RESTORING:
                    current.status = st.AVAILABLE
                    current.updated_at = now()
                    await self._message(session, current.project_id, backup_id, MSG_BACKUP_RESTORE,
                                        DETAIL_BACKUP_RESTORE_FAILED)
            return {"error": str(exc)}
        async with self.volume.db.write() as session:
            current = await session.get(Backup, backup_id)
            vol = await self._volume_row(session, volume_id)
            if vol is not None and not vol.deleted and vol.status == st.RESTORING_BACKUP:
                vol.status = st.AVAILABLE
                self._give_facts(vol, row)
                vol.updated_at = now()
            if current is not None and current.status == RESTORING:
                current.status = st.AVAILABLE
                current.updated_at = now()
        return {"volume_id": volume_id}

    @staticmethod
    def _give_facts(vol: Any, row: Backup) -> None:
        facts = row.volume_facts or {}
        if "bootable" in facts and hasattr(vol, "bootable"):
            vol.bootable = bool(facts["bootable"])
        if facts.get("volume_image_metadata") and hasattr(vol, "volume_image_metadata"):
            vol.volume_image_metadata = dict(facts["volume_image_metadata"])
        if facts.get("metadata") and hasattr(vol, "metadata_"):
            # Cinder restores the source volume's metadata over the target's
            vol.metadata_ = {**(vol.metadata_ or {}), **facts["metadata"]}

    async def restore_into(self, backup_id: str, volume_id: str, backend: Any) -> None:
        """For the manager's create of a volume from a backup (3.47): write the backup's data
        into the new (blank) volume; the backup shows ``restoring`` meanwhile."""
        async with self.volume.db.write() as session:
            row = await session.get(Backup, backup_id)
            if row is None or row.status not in (st.AVAILABLE, RESTORING):
                raise RuntimeError(f"Backup {backup_id} is not available to restore from.")
            row.status = RESTORING
            row.restore_volume_id = volume_id
            row.updated_at = now()
        try:
            await self._restore_data(row, backend, volume_id, None)
        finally:
            async with self.volume.db.write() as session:
                current = await session.get(Backup, backup_id)
                if current is not None and current.status == RESTORING:
                    current.status = st.AVAILABLE
                    current.updated_at = now()
                vol = await self._volume_row(session, volume_id)
                if vol is not None:
                    self._give_facts(vol, row)

    async def _run_delete(self, ctx: TaskContext) -> dict[str, Any]:
        backup_id = ctx.payload["backup_id"]
        row = await self._backup_row(backup_id)
        if row is None:
            return {"gone": True}
        if row.status != st.DELETING:
            return {"skipped": row.status}
        try:
            driver = await self.driver()
            await driver.delete(backup_id, row.container or DEFAULT_CONTAINER)
        except Exception as exc:  # noqa: BLE001
            async with self.volume.db.write() as session:
                current = await session.get(Backup, backup_id)
                if current is not None and current.status == st.DELETING:
                    current.status = st.ERROR_DELETING
                    current.fail_reason = str(exc)[:255]
                    current.updated_at = now()
                    await self._message(session, current.project_id, backup_id, MSG_BACKUP_DELETE, "001")
            return {"error": str(exc)}
        async with self.volume.db.write() as session:
            current = await session.get(Backup, backup_id)
            if current is not None and current.status == st.DELETING:
                await session.delete(current)
        return {"deleted": True}

    async def _given_up(self, session: AsyncSession, task: Task, message: str) -> None:
        backup_id = (task.payload or {}).get("backup_id")
        row = await session.get(Backup, backup_id) if backup_id else None
        if row is None:
            return
        if task.kind == CREATE and row.status == st.CREATING:
            await self._settle_source(session, row)
            row.status = st.ERROR
            row.fail_reason = message[:255]
        elif task.kind == RESTORE and row.status == RESTORING:
            await self._settle_source(session, row)
            row.status = st.AVAILABLE
        elif task.kind == DELETE and row.status == st.DELETING:
            row.status = st.ERROR_DELETING
            row.fail_reason = message[:255]
        row.updated_at = now()

    # ------------------------------------------------------------------ for quotas and checks

    async def usage(self, session: AsyncSession, project_id: str) -> dict[str, int]:
        """``backups`` and ``backup_gigabytes`` the project holds (every backup row counts)."""
        count, gigabytes = (await session.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(Backup.size), 0))
            .where(Backup.project_id == project_id))).one()
        return {"backups": int(count), "backup_gigabytes": int(gigabytes)}

    async def orphans(self) -> set[str]:
        """Objects of the backup store that belong to no backup row (after a crash: none)."""
        driver = await self.driver()
        async with self.volume.db.read() as session:
            live = set((await session.execute(sa.select(Backup.id))).scalars())
        return {n for n in await driver.object_names() if n.split("/")[1:2] and n.split("/")[1] not in live}


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


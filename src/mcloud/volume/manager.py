"""The volume manager: the durable tasks that drive the backends, as Cinder's volume manager and
scheduler do (cinder/volume/manager.py, cinder/scheduler/manager.py).

VOLUMES writes the change a user asked for (the volume ``creating``, ``deleting``, ``extending``
..., a snapshot ``creating``/``deleting``) and, in the same write transaction, calls one of the
submit functions here (seam 1), which adds a task (``core/tasks.py``). The task worker runs it:

- **create**: schedule and claim (``backends.schedule``: the type's ``volume_backend_name`` and
  capabilities, the zone, room; a volume from a snapshot or another volume stays on its
  source's backend), the volume's ``host`` written with the claim in one transaction; then the
  backend makes it (blank, from an image, snapshot or volume, or blank and filled by BACKUPS'
  restore); ``available`` (bootable and ``volume_image_metadata`` for an image), else ``error``
  with a user message, the half-made volume removed and the claim released. No pool fits:
  ``error`` and "No valid backend was found." (action 001, detail 003, as Cinder records it).
- **delete**: waits for the volume's earlier tasks (a create still running), deletes its
  snapshots (cascade) and the volume on the backend, releases the claim and soft-deletes the
  row (``deleted``, as Cinder keeps it); a backend failure leaves ``error_deleting``.
- **extend**, **revert**, **snapshot create/delete**; **retype** and **upload to image** live in
  ``manager_moves.py``.

Every step is idempotent (backends treat "already there"/"already gone" as done) and a task
resumed after a crash re-reads the rows and carries on: a volume never ends without a row (rows
are written before the backend object is made and soft-deleted only after it is gone), nor stuck
in a transitional status (a task given up after its attempts puts it in ``error``/
``error_deleting`` through ``on_failure``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.core.tasks import PENDING, RUNNING, Task, TaskContext
from mcloud.volume import states as st
from mcloud.volume.backends import NoValidBackend, backend_of
from mcloud.volume.drivers.base import BackendError, BackendNotFound, ImageSource

log = logging.getLogger("mcloud.volume.manager")

CREATE, DELETE, EXTEND, RETYPE, UPLOAD, REVERT = (
    "volume.create", "volume.delete", "volume.extend", "volume.retype", "volume.upload", "volume.revert")
SNAPSHOT_CREATE, SNAPSHOT_DELETE = "volume.snapshot_create", "volume.snapshot_delete"

# Cinder's user message ids (cinder/message/message_field.py): (action, detail)
MSG_SCHEDULE = "001"  # schedule allocate volume
MSG_UPLOAD = "003"  # copy volume to image
MSG_COPY_IMAGE = "005"  # copy image to volume
MSG_EXTEND = "007"  # extend volume
MSG_CREATE = "008"  # create volume from backend storage
MSG_SNAPSHOT_CREATE = "009"
MSG_SNAPSHOT_DELETE = "010"
DETAIL_UNKNOWN = "001"
DETAIL_NO_BACKEND = "003"  # Could not find any available weighted backend.
DETAIL_UPLOAD_FAILED = "004"
DETAIL_EXTEND_FAILED = "010"
DETAIL_CREATE_FAILED = "012"  # Driver failed to create the volume.
DETAIL_SNAPSHOT_CREATE_FAILED = "013"
DETAIL_SNAPSHOT_DELETE_FAILED = "016"

REVERTING = "reverting"
DELETED = "deleted"


def now() -> datetime:
    return datetime.utcnow().replace(microsecond=0)


def after_commit(session: AsyncSession, fn: Any) -> None:
    sa_event.listen(session.sync_session, "after_commit", lambda _s: fn(), once=True)


def _models() -> tuple[Any, Any]:
    from mcloud.volume import models

    return models.Volume, models.Snapshot


class Manager:
    def __init__(self, volume: Any):
        self.volume = volume
        self.config = volume.config

    @property
    def backends(self) -> Any:
        return self.volume.backends

    @property
    def tasks(self) -> Any:
        return self.volume.tasks

    def register(self, tasks: Any) -> None:
        from mcloud.volume import manager_moves

        tasks.register(CREATE, self._run_create, on_failure=self._given_up)
        tasks.register(DELETE, self._run_delete, on_failure=self._given_up)
        tasks.register(EXTEND, self._run_extend, on_failure=self._given_up)
        tasks.register(REVERT, self._run_revert, on_failure=self._given_up)
        tasks.register(SNAPSHOT_CREATE, self._run_snapshot_create, on_failure=self._snapshot_given_up)
        tasks.register(SNAPSHOT_DELETE, self._run_snapshot_delete, on_failure=self._snapshot_given_up)
        moves = manager_moves.Moves(self)
        tasks.register(RETYPE, moves.run_retype, on_failure=self._given_up)
        tasks.register(UPLOAD, moves.run_upload, on_failure=self._given_up)

    # ------------------------------------------------------------------ seam 1: what VOLUMES calls

    async def _submit(self, session: AsyncSession, kind: str, resource_id: str, project_id: str | None,
                      payload: dict[str, Any]) -> None:
        await self.tasks.submit(session, kind, payload, resource_id=resource_id, owner_project=project_id)
        after_commit(session, self.tasks.wake)

    async def create_volume(self, session: AsyncSession, row: Any, source: dict[str, Any] | None = None) -> None:
        source = dict(source or {})
        if "image" in source and "image_id" not in source:
            image = source.pop("image")
            source["image_id"] = image.get("id") if isinstance(image, dict) else image
        await self._submit(session, CREATE, row.id, row.project_id, {"volume_id": row.id, "source": source})

    async def delete_volume(self, session: AsyncSession, row: Any, cascade: bool = False) -> None:
        await self._submit(session, DELETE, row.id, row.project_id, {"volume_id": row.id, "cascade": bool(cascade)})

    async def extend_volume(self, session: AsyncSession, row: Any, new_size: int,
                            previous_status: str | None = None) -> None:
        previous = previous_status or getattr(row, "previous_status", None) or (
            st.IN_USE if getattr(row, "attach_status", None) == st.ATTACHED else st.AVAILABLE)
        await self._submit(session, EXTEND, row.id, row.project_id,
                           {"volume_id": row.id, "size": int(new_size), "previous_status": previous})

    async def retype_volume(self, session: AsyncSession, row: Any, new_type: Any,
                            migration_policy: str = "never", previous_status: str | None = None) -> None:
        type_id = new_type if isinstance(new_type, str) else getattr(new_type, "id", None) or new_type["id"]
        previous = previous_status or getattr(row, "previous_status", None) or (
            st.IN_USE if getattr(row, "attach_status", None) == st.ATTACHED else st.AVAILABLE)
        await self._submit(session, RETYPE, row.id, row.project_id,
                           {"volume_id": row.id, "type_id": type_id, "policy": migration_policy or "never",
                            "previous_status": previous})

    async def upload_to_image(self, session: AsyncSession, row: Any, image_id: str, disk_format: str = "raw",
                              force: bool = False, previous_status: str | None = None) -> None:
        previous = previous_status or getattr(row, "previous_status", None) or (
            st.IN_USE if getattr(row, "attach_status", None) == st.ATTACHED else st.AVAILABLE)
        await self._submit(session, UPLOAD, row.id, row.project_id,
                           {"volume_id": row.id, "image_id": image_id, "disk_format": disk_format or "raw",
                            "force": bool(force), "previous_status": previous})

    async def revert_to_snapshot(self, session: AsyncSession, row: Any, snapshot_row: Any) -> None:
        await self._submit(session, REVERT, row.id, row.project_id,
                           {"volume_id": row.id, "snapshot_id": snapshot_row.id})

    async def create_snapshot(self, session: AsyncSession, snapshot_row: Any) -> None:
        await self._submit(session, SNAPSHOT_CREATE, snapshot_row.id, snapshot_row.project_id,
                           {"snapshot_id": snapshot_row.id, "volume_id": snapshot_row.volume_id})

    async def delete_snapshot(self, session: AsyncSession, snapshot_row: Any) -> None:
        await self._submit(session, SNAPSHOT_DELETE, snapshot_row.id, snapshot_row.project_id,
                           {"snapshot_id": snapshot_row.id, "volume_id": snapshot_row.volume_id})

    # ------------------------------------------------------------------ helpers

    async def _row(self, session: AsyncSession, model: Any, row_id: str, lock: bool) -> Any:
        query = sa.select(model).where(model.id == row_id)
        if lock and not self.volume.db.is_sqlite:
            query = query.with_for_update()
        return (await session.execute(query)).scalar()

    async def _volume(self, session: AsyncSession, volume_id: str, lock: bool = False) -> Any:
        return await self._row(session, _models()[0], volume_id, lock)

    async def _snapshot(self, session: AsyncSession, snapshot_id: str, lock: bool = False) -> Any:
        return await self._row(session, _models()[1], snapshot_id, lock)

    async def set_volume(self, volume_id: str, only_if: set[str] | None = None, **values: Any) -> bool:
        """Set columns of a live volume in a transaction of its own (only from the statuses given)."""
        async with self.volume.db.write() as session:
            row = await self._volume(session, volume_id, lock=True)
            if row is None or row.deleted or (only_if is not None and row.status not in only_if):
                return False
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = now()
            return True

    async def _type_specs(self, session: AsyncSession, type_id: str | None) -> dict[str, str]:
        types = self.volume.types
        if not type_id or not hasattr(types, "get"):
            return {}
        try:
            view = await types.get(session, type_id)
        except Exception:  # noqa: BLE001 (a type deleted since: no constraints)
            return {}
        if view is None:
            return {}
        specs = view.get("extra_specs") if isinstance(view, dict) else getattr(view, "extra_specs", None)
        return dict(specs or {})

    async def message(self, session: AsyncSession, project_id: str | None, resource_id: str, action: str,
                      detail: str, resource_type: str = "VOLUME") -> None:
        """A user message (TYPES' ``messages.record``), if the messages part is there."""
        record = getattr(self.volume.messages, "record", None)
        if record is None or not project_id:
            return
        try:
            async with session.begin_nested():
                await record(session, project_id, resource_type, resource_id, action, detail)
        except Exception:  # noqa: BLE001 (a message is not worth failing the state change)
            log.warning("could not record a user message for %s", resource_id, exc_info=True)

    async def wait_for_earlier(self, ctx: TaskContext, kinds: tuple[str, ...] = (CREATE, EXTEND, REVERT, RETYPE,
                                                                                UPLOAD, SNAPSHOT_CREATE)) -> None:
        """Wait until the volume's tasks submitted before this one (of ``kinds``) are finished,
        so a delete never runs beside the create that is still making the volume."""
        deadline = asyncio.get_running_loop().time() + self.config.operation_timeout
        ids = [ctx.payload.get("volume_id"), ctx.resource_id]
        while True:
            async with self.volume.db.read() as session:
                mine = await session.get(Task, ctx.id)
                created = mine.created_at if mine is not None else now()
                busy = (await session.execute(sa.select(Task.id).where(
                    Task.resource_id.in_([i for i in ids if i]), Task.id != ctx.id, Task.kind.in_(kinds),
                    Task.status.in_([PENDING, RUNNING]), Task.created_at <= created).limit(1))).first()
            if busy is None:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise BackendError("An earlier operation on the volume did not finish in time.")
            await asyncio.sleep(0.2)
            await ctx.progress(0)

    def backend_for(self, host: str | None) -> Any:
        """The backend of a volume's host; BackendError if it is on none, or on one not configured."""
        backend = self.backends.for_host(host)
        if backend is None:
            raise BackendError(f"The volume's backend {backend_of(host)} is not configured." if host
                               else "The volume is on no backend.")
        return backend

    async def _failed(self, exc: BaseException, kind: str, resource_id: str, project_id: str | None,
                      only_if: set[str] | None, status: str, action: str, detail: str) -> dict[str, Any]:
        """A backend operation failed: the volume or snapshot (still in one of ``only_if``; None:
        any live status) gets ``status`` and its owner a user message."""
        log.warning("%s %s: %s failed: %s", kind, resource_id, action, exc,
                    exc_info=not isinstance(exc, BackendError))
        async with self.volume.db.write() as session:
            get = self._volume if kind == "volume" else self._snapshot
            row = await get(session, resource_id, lock=True)
            if row is not None and not row.deleted and (only_if is None or row.status in only_if):
                row.status = status
                row.updated_at = now()
            await self.message(session, project_id, resource_id, action, detail,
                               resource_type="VOLUME" if kind == "volume" else "VOLUME_SNAPSHOT")
        return {"error": str(exc) or type(exc).__name__}

    # ------------------------------------------------------------------ create

    async def _source_backend(self, session: AsyncSession, source: dict[str, Any]) -> tuple[str | None, Any, Any]:
        """(the backend a volume from this source must use, the source snapshot, source volume)."""
        if source.get("snapshot_id"):
            snap = await self._snapshot(session, source["snapshot_id"])
            if snap is None or snap.deleted:
                raise BackendError(f"Snapshot {source['snapshot_id']} could not be found.")
            parent = await self._volume(session, snap.volume_id)
            if parent is None:
                raise BackendError(f"Volume {snap.volume_id} of snapshot {snap.id} could not be found.")
            return backend_of(parent.host), snap, parent
        if source.get("source_volid"):
            parent = await self._volume(session, source["source_volid"])
            if parent is None or parent.deleted:
                raise BackendError(f"Volume {source['source_volid']} could not be found.")
            return backend_of(parent.host), None, parent
        return None, None, None

    async def _run_create(self, ctx: TaskContext) -> dict[str, Any]:
        volume_id = ctx.payload["volume_id"]
        source = dict(ctx.payload.get("source") or {})
        # 1. schedule and claim, the host written with the claim
        async with self.volume.db.write() as session:
            row = await self._volume(session, volume_id, lock=True)
            if row is None or row.deleted or row.status != st.CREATING:
                return {"skipped": row.status if row is not None else "gone"}
            project_id = row.project_id
            try:
                restrict, snap, parent = await self._source_backend(session, source)
                specs = await self._type_specs(session, row.volume_type_id)
                pool = row.host or await self.backends.schedule(
                    session, volume_id, int(row.size), specs, row.availability_zone, backend=restrict)
            except NoValidBackend as exc:
                log.info("volume %s: %s", volume_id, exc)
                row.status = st.ERROR
                row.updated_at = now()
                await self.message(session, project_id, volume_id, MSG_SCHEDULE, DETAIL_NO_BACKEND)
                return {"error": str(exc)}
            except BackendError as exc:
                row.status = st.ERROR
                row.updated_at = now()
                await self.message(session, project_id, volume_id, MSG_SCHEDULE, DETAIL_UNKNOWN)
                return {"error": str(exc)}
            row.host = pool
            row.updated_at = now()
            size = int(row.size)
            snapshot_id = snap.id if snap is not None else None
            parent_id = parent.id if parent is not None else None
        backend = self.backends.for_host(pool)
        # 2. the backend makes it
        how = "blank"
        extra: dict[str, Any] = {}
        action = MSG_COPY_IMAGE if source.get("image_id") else MSG_CREATE
        try:
            if backend is None:
                raise BackendError(f"The volume's backend {backend_of(pool)} is not configured.")
            if source.get("image_id"):
                image, extra = await self.image_source(source["image_id"])
                how = await backend.create_from_image(volume_id, size, image)
            elif snapshot_id:
                await backend.create_from_snapshot(volume_id, size, snapshot_id, parent_id)
                how = "snapshot"
            elif parent_id:
                await backend.clone(volume_id, size, parent_id)
                how = "clone"
            elif source.get("backup_id"):
                await backend.create(volume_id, size)
                restore = getattr(self.volume.backups, "restore_into", None)
                if restore is None:
                    raise BackendError("Restoring backups is not available.")
                await restore(source["backup_id"], volume_id, backend)
                how = "backup"
            else:
                await backend.create(volume_id, size)
        except Exception as exc:  # noqa: BLE001 (any failure ends in error with nothing left behind)
            log.warning("volume %s: create failed: %s", volume_id, exc, exc_info=not isinstance(exc, BackendError))
            if backend is not None:
                with contextlib.suppress(Exception):
                    await backend.delete(volume_id)
            async with self.volume.db.write() as session:
                await self.backends.release(session, volume_id)
                row = await self._volume(session, volume_id, lock=True)
                if row is not None and not row.deleted and row.status == st.CREATING:
                    row.status = st.ERROR
                    row.host = None
                    row.updated_at = now()
                    await self.message(session, project_id, volume_id, action,
                                       DETAIL_CREATE_FAILED if action == MSG_CREATE else DETAIL_UNKNOWN)
            return {"error": str(exc) or type(exc).__name__}
        # 3. available
        async with self.volume.db.write() as session:
            row = await self._volume(session, volume_id, lock=True)
            if row is not None and not row.deleted and row.status == st.CREATING:
                row.status = st.AVAILABLE
                row.launched_at = now()
                row.updated_at = now()
                if extra:
                    row.bootable = True
                    row.volume_image_metadata = extra
                elif parent_id:
                    parent = await self._volume(session, parent_id)
                    if parent is not None:
                        row.bootable = bool(parent.bootable)
                        if getattr(parent, "volume_image_metadata", None):
                            row.volume_image_metadata = dict(parent.volume_image_metadata)
        return {"host": pool, "made": how}

    async def image_source(self, image_id: str) -> tuple[ImageSource, dict[str, Any]]:
        """The image as a backend takes it, and the volume's ``volume_image_metadata``."""
        from mcloud.image.service import Caller as ImageCaller

        images = self.volume.image
        async with images.db.read() as session:
            image = await images.get_image(session, ImageCaller(None, is_admin=True), image_id)
            view = await images.view(session, image)
            location = await images.data_location(session, image)
            if image.status != "active" or location is None:
                raise BackendError(f"Image {image_id} is not active.")
            loc_url, loc_store = location.url, location.store
            session.expunge(location)
        rbd = ceph_conf = path = None
        if loc_url.startswith("rbd://"):
            parts = loc_url[len("rbd://"):].split("/")
            if len(parts) == 4:
                rbd = f"{parts[1]}/{parts[2]}@{parts[3]}"
                ceph_conf = getattr(images.stores.get(loc_store), "conf_path", None)
        elif loc_url.startswith("file://"):
            store = images.stores.get(loc_store)
            with contextlib.suppress(Exception):
                path = str(store.path_of(loc_url))

        def open_data() -> Any:
            return images.read(location)

        source = ImageSource(id=image.id, disk_format=image.disk_format or "raw", size=int(image.size or 0),
                             virtual_size=image.virtual_size, checksum=image.os_hash_value or image.checksum,
                             rbd=rbd, ceph_conf=ceph_conf, path=path, open=open_data)
        meta: dict[str, Any] = {"image_id": image.id, "image_name": image.name or "",
                                "checksum": image.checksum or "", "disk_format": image.disk_format or "",
                                "container_format": image.container_format or "", "size": str(image.size or 0),
                                "min_disk": str(image.min_disk or 0), "min_ram": str(image.min_ram or 0)}
        for key, value in view.properties.items():
            meta.setdefault(key, str(value))
        return source, meta

    # ------------------------------------------------------------------ delete

    async def _run_delete(self, ctx: TaskContext) -> dict[str, Any]:
        volume_id = ctx.payload["volume_id"]
        await self.wait_for_earlier(ctx)
        _, snapshot_model = _models()
        async with self.volume.db.read() as session:
            row = await self._volume(session, volume_id)
            if row is None or row.deleted:
                return {"skipped": "gone"}
            host, project_id = row.host, row.project_id
            snaps = list((await session.execute(sa.select(snapshot_model.id).where(
                snapshot_model.volume_id == volume_id, snapshot_model.deleted == sa.false()))).scalars())
        try:
            backend = self.backends.for_host(host)
            if host and backend is None:
                raise BackendError(f"The volume's backend {backend_of(host)} is not configured.")
            if backend is not None:
                if ctx.payload.get("cascade"):
                    for snapshot_id in snaps:
                        await backend.delete_snapshot(snapshot_id, volume_id)
                        await self._soft_delete_snapshot(snapshot_id)
                await backend.delete(volume_id)
        except Exception as exc:  # noqa: BLE001
            log.warning("volume %s: delete failed: %s", volume_id, exc, exc_info=not isinstance(exc, BackendError))
            await self.set_volume(volume_id, status=st.ERROR_DELETING)
            return {"error": str(exc) or type(exc).__name__}
        async with self.volume.db.write() as session:
            await self.backends.release(session, volume_id)
            row = await self._volume(session, volume_id, lock=True)
            if row is not None and not row.deleted:
                row.status = DELETED
                row.deleted = True
                row.deleted_at = now()
                row.terminated_at = now()
                row.updated_at = now()
        log.debug("volume %s of %s deleted", volume_id, project_id)
        return {}

    async def _soft_delete_snapshot(self, snapshot_id: str) -> None:
        async with self.volume.db.write() as session:
            snap = await self._snapshot(session, snapshot_id, lock=True)
            if snap is not None and not snap.deleted:
                snap.status = DELETED
                snap.deleted = True
                snap.deleted_at = now()
                snap.updated_at = now()

    # ------------------------------------------------------------------ extend

    async def _run_extend(self, ctx: TaskContext) -> dict[str, Any]:
        volume_id, size = ctx.payload["volume_id"], int(ctx.payload["size"])
        previous = ctx.payload.get("previous_status") or st.AVAILABLE
        async with self.volume.db.write() as session:
            row = await self._volume(session, volume_id, lock=True)
            if row is None or row.deleted or row.status != st.EXTENDING:
                return {"skipped": row.status if row is not None else "gone"}
            project_id, host = row.project_id, row.host
            try:
                await self.backends.grow(session, volume_id, size)
            except NoValidBackend:
                row.status = previous
                row.updated_at = now()
                await self.message(session, project_id, volume_id, MSG_EXTEND, DETAIL_NO_BACKEND)
                return {"error": "No valid backend was found."}
        try:
            await self.backend_for(host).extend(volume_id, size)
        except Exception as exc:  # noqa: BLE001
            return await self._failed(exc, "volume", volume_id, project_id, {st.EXTENDING}, st.ERROR_EXTENDING,
                                      MSG_EXTEND, DETAIL_EXTEND_FAILED)
        await self.set_volume(volume_id, only_if={st.EXTENDING}, size=size, status=previous)
        return {"size": size, "host": host}

    # ------------------------------------------------------------------ revert

    async def _run_revert(self, ctx: TaskContext) -> dict[str, Any]:
        volume_id, snapshot_id = ctx.payload["volume_id"], ctx.payload["snapshot_id"]
        async with self.volume.db.read() as session:
            row = await self._volume(session, volume_id)
            if row is None or row.deleted:
                return {"skipped": "gone"}
            host = row.host
        try:
            await self.backend_for(host).revert_to_snapshot(volume_id, snapshot_id)
            status = st.AVAILABLE
        except Exception as exc:  # noqa: BLE001
            log.warning("volume %s: revert to %s failed: %s", volume_id, snapshot_id, exc)
            status = st.ERROR
        await self.set_volume(volume_id, only_if={REVERTING, st.CREATING, st.AVAILABLE}, status=status)
        async with self.volume.db.write() as session:
            snap = await self._snapshot(session, snapshot_id, lock=True)
            if snap is not None and not snap.deleted and snap.status == "restoring":
                snap.status = st.AVAILABLE
                snap.updated_at = now()
        return {"status": status}

    # ------------------------------------------------------------------ snapshots

    async def _run_snapshot_create(self, ctx: TaskContext) -> dict[str, Any]:
        snapshot_id, volume_id = ctx.payload["snapshot_id"], ctx.payload["volume_id"]
        async with self.volume.db.read() as session:
            snap = await self._snapshot(session, snapshot_id)
            row = await self._volume(session, volume_id)
            if snap is None or snap.deleted or snap.status != st.CREATING or row is None:
                return {"skipped": "gone"}
            project_id, host = snap.project_id, row.host
        try:
            await self.backend_for(host).create_snapshot(snapshot_id, volume_id)
        except Exception as exc:  # noqa: BLE001
            return await self._failed(exc, "snapshot", snapshot_id, project_id, {st.CREATING}, st.ERROR,
                                      MSG_SNAPSHOT_CREATE, DETAIL_SNAPSHOT_CREATE_FAILED)
        async with self.volume.db.write() as session:
            snap = await self._snapshot(session, snapshot_id, lock=True)
            if snap is not None and not snap.deleted and snap.status == st.CREATING:
                snap.status = st.AVAILABLE
                snap.progress = "100%"
                snap.updated_at = now()
        return {}

    async def _run_snapshot_delete(self, ctx: TaskContext) -> dict[str, Any]:
        snapshot_id, volume_id = ctx.payload["snapshot_id"], ctx.payload["volume_id"]
        await self.wait_for_earlier(ctx, kinds=(SNAPSHOT_CREATE,))
        async with self.volume.db.read() as session:
            snap = await self._snapshot(session, snapshot_id)
            row = await self._volume(session, volume_id)
            if snap is None or snap.deleted:
                return {"skipped": "gone"}
            project_id, host = snap.project_id, row.host if row is not None else None
        try:
            if host:
                await self.backend_for(host).delete_snapshot(snapshot_id, volume_id)
        except Exception as exc:  # noqa: BLE001
            return await self._failed(exc, "snapshot", snapshot_id, project_id, None, st.ERROR_DELETING,
                                      MSG_SNAPSHOT_DELETE, DETAIL_SNAPSHOT_DELETE_FAILED)
        await self._soft_delete_snapshot(snapshot_id)
        return {}

    # ------------------------------------------------------------------ given up

    async def _given_up(self, session: AsyncSession, task: Task, message: str) -> None:
        """A task whose worker died too often (or that raised): the volume shows it. A create
        keeps its host and claim: whatever the backend holds goes when the volume is deleted."""
        volume_id = (task.payload or {}).get("volume_id")
        row = await self._volume(session, volume_id) if volume_id else None
        if row is None or row.deleted:
            return
        status = {CREATE: st.ERROR, DELETE: st.ERROR_DELETING, EXTEND: st.ERROR_EXTENDING}.get(task.kind)
        if status is None:  # retype, upload, revert: the volume as it was
            status = (task.payload or {}).get("previous_status") or st.AVAILABLE
            if task.kind == REVERT:
                status = st.ERROR
        if row.status in (st.CREATING, st.DELETING, st.EXTENDING, st.RETYPING, st.UPLOADING, REVERTING):
            row.status = status
            row.updated_at = now()
        if task.kind == RETYPE:
            row.migration_status = "error" if row.migration_status else None
            await self.backends.settle_move(session, row.id, done=False)
        action = {CREATE: MSG_CREATE, EXTEND: MSG_EXTEND, UPLOAD: MSG_UPLOAD}.get(task.kind, MSG_CREATE)
        await self.message(session, row.project_id, row.id, action, DETAIL_UNKNOWN)

    async def _snapshot_given_up(self, session: AsyncSession, task: Task, message: str) -> None:
        snapshot_id = (task.payload or {}).get("snapshot_id")
        snap = await self._snapshot(session, snapshot_id) if snapshot_id else None
        if snap is None or snap.deleted:
            return
        if snap.status in (st.CREATING, st.DELETING):
            snap.status = st.ERROR if task.kind == SNAPSHOT_CREATE else st.ERROR_DELETING
            snap.updated_at = now()

    # ------------------------------------------------------------------ checks

    async def orphans(self) -> dict[str, set[str]]:
        """Per backend, the objects it holds that no live volume or snapshot row has (after a
        crash there should be none)."""
        volume_model, snapshot_model = _models()
        async with self.volume.db.read() as session:
            live_volumes = {f"volume-{i}" for i in (await session.execute(
                sa.select(volume_model.id).where(volume_model.deleted == sa.false()))).scalars()}
            live_snaps = {f"snapshot-{i}" for i in (await session.execute(
                sa.select(snapshot_model.id).where(snapshot_model.deleted == sa.false()))).scalars()}
        found: dict[str, set[str]] = {}
        for name in self.backends.names():
            extra = await self.backends.get(name).list_ids() - live_volumes - live_snaps
            if extra:
                found[name] = extra
        return found


__all__ = ["Manager", "BackendNotFound"]

"""Volumes (``volume.volumes``): create, list, show, update, delete, metadata and the volume
actions, as Cinder's volume/api.py does them, with its state machine and its messages.

Every write sets the transitional status in its transaction and submits the manager's task in
the same transaction (seam 1); the manager sets the end state. Quota is checked through
``volume.quotas.reserve`` before the rows it counts are written (seam 2).

For compute (seam 3): :meth:`Volumes.get`, :meth:`Volumes.create`, :meth:`Volumes.delete` with a
:class:`~mcloud.volume.service.Caller` (``Caller.internal(project_id, user_id)`` or one from the
request's token).
"""

from __future__ import annotations

import ast
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.core.errors import BadRequest, NotFound
from mcloud.core.pagination import page, parse_limit, parse_sort
from mcloud.core.policy import optional_modules
from mcloud.volume import states as st
from mcloud.volume import views
from mcloud.volume.models import Snapshot, Volume, VolumeAttachment, now
from mcloud.volume.schemas import as_bool, as_size, int_param
from mcloud.volume.service import Caller
from mcloud.volume.service_volumes_actions import VolumeActions

#: statuses a volume may be deleted from without force (Cinder's volume/api.py delete)
DELETABLE = (st.AVAILABLE, st.ERROR, st.ERROR_RESTORING, st.ERROR_EXTENDING, "error_managing")
DELETE_REFUSED = ("Invalid volume: Volume status must be available or error or error_restoring or error_extending "
                  "or error_managing and must not be migrating, attached, belong to a group, have snapshots, "
                  "awaiting a transfer, or be disassociated from snapshots after volume transfer.")
#: the filters a volume list takes (Cinder's resource_filters.json "volume") and their columns
SORT_KEYS = {"created_at": Volume.created_at, "updated_at": Volume.updated_at, "id": Volume.id,
             "name": Volume.display_name, "display_name": Volume.display_name, "status": Volume.status,
             "size": Volume.size, "availability_zone": Volume.availability_zone, "bootable": Volume.bootable,
             "project_id": Volume.project_id, "volume_type_id": Volume.volume_type_id}
COLUMN_FILTERS = {"name": Volume.display_name, "display_name": Volume.display_name, "status": Volume.status,
                  "availability_zone": Volume.availability_zone, "size": Volume.size,
                  "volume_type_id": Volume.volume_type_id, "snapshot_id": Volume.snapshot_id,
                  "source_volid": Volume.source_volid, "group_id": Volume.group_id, "host": Volume.host,
                  "migration_status": Volume.migration_status, "attach_status": Volume.attach_status,
                  "user_id": Volume.user_id, "id": Volume.id, "description": Volume.display_description,
                  "display_description": Volume.display_description, "replication_status": Volume.replication_status}
LIKE_FILTERS = ("name", "display_name", "status", "availability_zone", "description", "display_description")
IGNORED_PARAMS = ("limit", "marker", "sort", "sort_key", "sort_dir", "offset", "with_count", "all_tenants",
                  "project_id", "detail", "is_public")


def literal_dict(text: str, name: str) -> dict[str, Any]:
    """A ``metadata={'k': 'v'}`` query value (Cinder reads it with ast.literal_eval), 400 if not one."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = None
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input received: Invalid filter value for {name}: {text}")
    return value


class Volumes(VolumeActions):
    def __init__(self, volume: Any):
        self.volume = volume

    @property
    def db(self) -> Any:
        return self.volume.db

    # ------------------------------------------------------------------ rows and views

    def _visible(self, caller: Caller) -> Any:
        return sa.true() if caller.is_admin else Volume.project_id == (caller.project_id or "")

    async def row(self, session: AsyncSession, caller: Caller, volume_id: str, *, lock: bool = False) -> Volume:
        """A live volume the caller may see, else Cinder's 404 "Volume X could not be found."."""
        query = sa.select(Volume).where(Volume.id == str(volume_id), Volume.deleted.is_(False), self._visible(caller))
        if lock and not self.db.is_sqlite:
            query = query.with_for_update()
        row = (await session.execute(query)).scalar()
        if row is None:
            raise NotFound(f"Volume {volume_id} could not be found.")
        return row

    async def render(self, session: AsyncSession, caller: Caller, rows: Sequence[Volume],
                     links: views.Links = views.no_links, *, extended: bool = True) -> list[dict[str, Any]]:
        """The detailed views of ``rows``, their types and attachments read in two queries."""
        from mcloud.volume.models_types import VolumeType  # noqa: PLC0415 (TYPES' table, read only)

        ids = [r.id for r in rows]
        type_ids = {r.volume_type_id for r in rows if r.volume_type_id}
        names: dict[str, str] = {}
        if type_ids:
            names = dict((await session.execute(sa.select(VolumeType.id, VolumeType.name)
                                                .where(VolumeType.id.in_(type_ids)))).all())
        attached: dict[str, list[VolumeAttachment]] = {i: [] for i in ids}
        if ids:
            for att in (await session.execute(sa.select(VolumeAttachment).where(
                    VolumeAttachment.volume_id.in_(ids), VolumeAttachment.deleted.is_(False))
                    .order_by(VolumeAttachment.created_at))).scalars():
                attached[att.volume_id].append(att)
        return [views.volume_detail(r, caller, type_name=names.get(r.volume_type_id or ""),
                                    attachments=attached[r.id], links=links, extended=extended) for r in rows]

    async def view(self, session: AsyncSession, caller: Caller, row: Volume,
                   links: views.Links = views.no_links, *, extended: bool = True) -> dict[str, Any]:
        return (await self.render(session, caller, [row], links, extended=extended))[0]

    # ------------------------------------------------------------------ seam 3 and the API

    async def get(self, caller: Caller, volume_id: str, links: views.Links = views.no_links) -> dict[str, Any]:
        caller.authorize("volume:get")
        async with self.db.read() as session:
            row = await self.row(session, caller, volume_id)
            caller.authorize("volume:get", {"project_id": row.project_id})
            return await self.view(session, caller, row, links)

    async def create(self, caller: Caller, size: Any = None, image_id: str | None = None,
                     snapshot_id: str | None = None, source_volid: str | None = None, name: str | None = None,
                     volume_type: str | None = None, availability_zone: str | None = None,
                     metadata: dict[str, str] | None = None, *, description: str | None = None,
                     backup_id: str | None = None, group_id: str | None = None,
                     links: views.Links = views.no_links) -> dict[str, Any]:
        """A new volume in ``creating`` (blank, or from an image, snapshot, volume or backup), its
        create task submitted; the view. Cinder's 400/404/413 for what cannot be made."""
        caller.authorize("volume:create")
        if image_id:
            caller.authorize("volume:create_from_image")
        vol = self.volume
        async with self.db.write() as session:
            source: dict[str, Any] = {}
            snapshot = source_volume = backup = image = None
            if snapshot_id is not None:
                snapshot = await vol.snapshots.row(session, caller, snapshot_id)
                if snapshot.status != st.AVAILABLE:
                    raise BadRequest("Invalid snapshot: Originating snapshot status must be 'available' to "
                                     "create a volume.")
                source = {"snapshot_id": snapshot.id}
            if source_volid is not None:
                source_volume = await self.row(session, caller, source_volid)
                if source_volume.status not in (st.AVAILABLE, st.IN_USE):
                    raise BadRequest("Invalid volume: Unable to create a volume from an originating source volume "
                                     "when its status is not 'available' or 'in-use'.")
                source = {"source_volid": source_volume.id}
            if backup_id is not None:
                backup = await self._backup(session, caller, backup_id)
                source = {"backup_id": backup_id}
            if image_id:
                image = await self._image(session, caller, image_id)
                source = {"image_id": image.id}
            if size is None:
                if snapshot is not None:
                    size = snapshot.volume_size
                elif source_volume is not None:
                    size = source_volume.size
                elif backup is not None:
                    size = getattr(backup, "size", None)
            if size is None:
                raise BadRequest("Invalid input received: Volume size 'None' must be an integer and greater than 0")
            size = as_size(size)
            if snapshot is not None and size < snapshot.volume_size:
                raise BadRequest(f"Invalid input received: Volume size '{size}'GB cannot be smaller than the snapshot "
                                 f"size {snapshot.volume_size}GB. They must be >= original snapshot size.")
            if source_volume is not None and size < source_volume.size:
                raise BadRequest(f"Invalid input received: Volume size '{size}'GB cannot be smaller than original "
                                 f"volume size {source_volume.size}GB. They must be >= original volume size.")
            if backup is not None and size < int(getattr(backup, "size", 0) or 0):
                raise BadRequest(f"Invalid input received: Volume size '{size}'GB cannot be smaller than the backup "
                                 f"size {backup.size}GB. It must be >= backup size.")
            if image is not None:
                self._check_image_fits(image, size)
            # the type: the one named, else the source's, else the default
            if volume_type is None and (snapshot is not None or source_volume is not None):
                type_id = (source_volume or await self._snapshot_volume(session, snapshot)).volume_type_id
                vtype = await vol.types.get(session, type_id) if type_id else await vol.types.resolve(
                    session, caller, None)
            else:
                vtype = await vol.types.resolve(session, caller, volume_type or None)
            if group_id is not None:
                # GROUPS' check: the group is the caller's, available (or being made) and supports the type
                groups = optional_modules(("mcloud.volume.service_groups",))
                if not groups:
                    raise NotFound(f"Group {group_id} could not be found.")
                await groups[0].check_new_member(session, caller, group_id, vtype.id)
            zone = await self._zone(availability_zone, snapshot, source_volume, session)
            multiattach = str(vtype.extra_specs.get("multiattach", "")).strip().lower() == "<is> true"
            if multiattach:
                caller.authorize("volume:multiattach")
            await vol.quotas.reserve(session, caller.project_id, {
                "volumes": 1, "gigabytes": size, f"volumes_{vtype.name}": 1, f"gigabytes_{vtype.name}": size,
                "per_volume_gigabytes": size})
            row = Volume(id=str(uuid.uuid4()), project_id=caller.project_id, user_id=caller.user_id, size=size,
                         status=st.CREATING, attach_status=st.DETACHED, display_name=name,
                         display_description=description, volume_type_id=vtype.id, availability_zone=zone,
                         multiattach=multiattach, snapshot_id=snapshot.id if snapshot else None,
                         source_volid=source_volume.id if source_volume else None, backup_id=backup_id,
                         group_id=group_id, metadata_=dict(metadata or {}), admin_metadata={},
                         replication_status="disabled", shared_targets=False, use_quota=True, created_at=now())
            session.add(row)
            await session.flush()
            await vol.manager.create_volume(session, row, source)
            return await self.view(session, caller, row, links, extended=False)

    async def _snapshot_volume(self, session: AsyncSession, snapshot: Snapshot) -> Volume:
        row = await session.get(Volume, snapshot.volume_id)
        assert row is not None
        return row

    async def _zone(self, requested: str | None, snapshot: Snapshot | None, source: Volume | None,
                    session: AsyncSession) -> str:
        """The zone of a new volume: the one asked for (400 when unknown, as Cinder's
        InvalidAvailabilityZone), else its source's, else the default."""
        config = self.volume.config
        zones = {config.storage_availability_zone}
        zones.update(str(opts["availability_zone"]) for opts in (config.backends or {}).values()
                     if isinstance(opts, dict) and opts.get("availability_zone"))
        if source is None and snapshot is not None:
            source = await self._snapshot_volume(session, snapshot)
        if requested:
            if requested not in zones:
                raise BadRequest(f"Invalid input received: Availability zone '{requested}' is invalid.")
            if source is not None and source.availability_zone and requested != source.availability_zone:
                raise BadRequest("Invalid input received: Volume must be in the same availability zone as the "
                                 "snapshot" if snapshot is not None else
                                 "Invalid input received: Volume must be in the same availability zone as the "
                                 "source volume")
            return requested
        if source is not None and source.availability_zone:
            return source.availability_zone
        return config.default_availability_zone or config.storage_availability_zone

    async def _image(self, session: AsyncSession, caller: Caller, image_id: str) -> Any:
        from mcloud.image.service import Caller as ImageCaller  # noqa: PLC0415

        try:
            image = await self.volume.image.get_image(session, ImageCaller(caller.project_id, caller.is_admin),
                                                      str(image_id))
        except NotFound:
            raise BadRequest("Invalid image identifier or unable to access requested image.") from None
        if image.status != "active":
            raise BadRequest(f"Invalid input received: Image {image_id} is not active.")
        return image

    @staticmethod
    def _check_image_fits(image: Any, size: int) -> None:
        gib = 1 << 30
        image_gb = -(-int(image.size or 0) // gib)
        if image_gb > size:
            raise BadRequest(f"Invalid input received: Size of specified image {image_gb}GB is larger than volume "
                             f"size {size}GB.")
        if int(image.min_disk or 0) > size:
            raise BadRequest(f"Invalid input received: Volume size {size}GB cannot be smaller than the image "
                             f"minDisk size {image.min_disk}GB.")

    async def _backup(self, session: AsyncSession, caller: Caller, backup_id: str) -> Any:
        from mcloud.volume import models_backups  # noqa: PLC0415 (BACKUPS' table, read only)

        model = getattr(models_backups, "Backup", None)
        row = await session.get(model, backup_id) if model is not None else None
        if row is None or getattr(row, "deleted", False) or (
                not caller.is_admin and row.project_id != caller.project_id):
            raise NotFound(f"Backup {backup_id} could not be found.")
        if row.status != st.AVAILABLE:
            raise BadRequest(f"Invalid backup: Backup status must be available but is {row.status}.")
        return row

    async def delete(self, caller: Caller, volume_id: str, *, cascade: bool = False, force: bool = False) -> None:
        """Start deleting a volume (``deleting``; the manager removes it), as Cinder refuses it:
        400 when attached, in a busy status (unless ``force``), or with snapshots (unless ``cascade``)."""
        caller.authorize("volume:delete")
        async with self.db.write() as session:
            row = await self.row(session, caller, volume_id, lock=True)
            caller.authorize("volume:delete", {"project_id": row.project_id})
            if force:
                caller.authorize("volume:force_delete", {"project_id": row.project_id})
            await self._start_delete(session, caller, row, cascade=cascade, force=force)

    async def _start_delete(self, session: AsyncSession, caller: Caller, row: Volume, *, cascade: bool,
                            force: bool) -> None:
        refused = (row.attach_status == st.ATTACHED or row.migration_status in ("migrating", "starting")
                   or row.group_id is not None or (not force and row.status not in DELETABLE))
        snapshots = list((await session.execute(sa.select(Snapshot).where(
            Snapshot.volume_id == row.id, Snapshot.deleted.is_(False)))).scalars())
        if snapshots and not cascade:
            refused = True
        if cascade and not force and any(s.status not in (st.AVAILABLE, st.ERROR) for s in snapshots):
            refused = True
        if refused:
            raise BadRequest(DELETE_REFUSED)
        row.previous_status = row.status
        row.status = st.DELETING
        row.terminated_at = row.updated_at = now()
        for snap in snapshots:
            snap.status = st.DELETING
            snap.updated_at = now()
        await self.volume.manager.delete_volume(session, row, cascade=cascade)

    async def list(self, caller: Caller, params: dict[str, list[str]], *, detail: bool,
                   links: views.Links = views.no_links) -> tuple[list[dict[str, Any]], list[Volume], int | None]:
        """One page of the volumes the caller may list with Cinder's filters: (views, rows, count
        when ``with_count`` asks for it at 3.45+)."""
        caller.authorize("volume:get_all")
        async with self.db.read() as session:
            query, limit, marker, sort = await self._list_query(session, caller, params)
            count = None
            if caller.at(3, 45) and as_bool(_last(params, "with_count") or "false", "with_count"):
                count = (await session.execute(sa.select(sa.func.count()).select_from(query.subquery()))).scalar()
            offset = int_param(params, "offset") or 0
            rows = await page(session, query.offset(offset) if offset else query, Volume.id, sort, limit, marker)
            if detail:
                out = await self.render(session, caller, rows, links)
            else:
                out = [views.volume_summary(r, links) for r in rows]
            return out, rows, count

    async def _list_query(self, session: AsyncSession, caller: Caller, params: dict[str, list[str]]) -> Any:
        query = sa.select(Volume).where(Volume.deleted.is_(False))
        all_tenants = as_bool(_last(params, "all_tenants") or "false", "all_tenants") if (
            "all_tenants" in params and caller.is_admin) else False
        project = _last(params, "project_id")
        if caller.is_admin and all_tenants:
            if project:
                query = query.where(Volume.project_id == project)
        elif caller.is_admin and project:
            query = query.where(Volume.project_id == project)
        else:
            query = query.where(Volume.project_id == (caller.project_id or ""))
        like = caller.at(3, 34)
        for key, values in params.items():
            value = values[-1]
            if key in IGNORED_PARAMS:
                continue
            if key.endswith("~") and like and key[:-1] in LIKE_FILTERS:
                column = COLUMN_FILTERS[key[:-1]]
                query = query.where(column.like(f"%{value}%"))
            elif key == "status" and value not in st.VOLUME_STATUSES and value != "deleted":
                query = query.where(sa.false())  # Cinder answers an unknown status with an empty list
            elif key == "size":
                try:
                    query = query.where(Volume.size == int(value))
                except ValueError:
                    raise BadRequest(f"Invalid input received: Invalid filter value for size: {value}") from None
            elif key in COLUMN_FILTERS:
                query = query.where(COLUMN_FILTERS[key] == value)
            elif key == "volume_type":
                query = query.where(Volume.volume_type_id.in_(await self._type_ids(session, value)))
            elif key == "bootable":
                query = query.where(Volume.bootable.is_(as_bool(value, "bootable")))
            elif key == "multiattach":
                query = query.where(Volume.multiattach.is_(as_bool(value, "multiattach")))
            elif key == "consumes_quota" and caller.at(3, 65):
                query = query.where(Volume.use_quota.is_(as_bool(value, "consumes_quota")))
            elif key in ("metadata", "glance_metadata", "image_metadata"):
                wanted = literal_dict(value, key)
                column = Volume.metadata_ if key == "metadata" else Volume.volume_image_metadata
                query = query.where(*[column[str(k)].as_string() == str(v) for k, v in wanted.items()])
            elif key in ("created_at", "updated_at") and caller.at(3, 60):
                query = query.where(*_time_filter(getattr(Volume, key), value))
            # any other key is ignored, as Cinder ignores filters its resource_filters do not list
        limit = parse_limit(_last(params, "limit"), self.volume.config.max_limit)
        marker = _last(params, "marker")
        sort_keys, sort_dirs = _sort(params)
        sort = parse_sort(sort_keys, sort_dirs, SORT_KEYS, default=("created_at",))
        if not sort_dirs and not any(":" in k for k in sort_keys):
            sort = [s.__class__(s.column, True) for s in sort]  # Cinder's default direction: desc
        return query, limit, marker, sort

    async def _type_ids(self, session: AsyncSession, name_or_id: str) -> list[str]:
        from mcloud.volume.models_types import VolumeType  # noqa: PLC0415

        rows = await session.execute(sa.select(VolumeType.id).where(
            (VolumeType.id == name_or_id) | (VolumeType.name == name_or_id)))
        return list(rows.scalars())

    async def summary(self, caller: Caller, params: dict[str, list[str]]) -> dict[str, Any]:
        """``GET /volumes/summary`` (3.12; metadata 3.36)."""
        caller.authorize("volume:get_all")
        async with self.db.read() as session:
            query, _, _, _ = await self._list_query(session, caller, {
                k: v for k, v in params.items() if k not in ("limit", "marker", "sort", "sort_key", "sort_dir")})
            rows = list((await session.execute(query)).scalars())
        out: dict[str, Any] = {"total_count": len(rows), "total_size": sum(r.size for r in rows)}
        if caller.at(3, 36):
            meta: dict[str, list[str]] = {}
            for r in rows:
                for k, v in (r.metadata_ or {}).items():
                    if v not in meta.setdefault(k, []):
                        meta[k].append(v)
            out["metadata"] = meta
        return {"volume-summary": out}

    async def update(self, caller: Caller, volume_id: str, fields: dict[str, Any],
                     links: views.Links = views.no_links) -> dict[str, Any]:
        caller.authorize("volume:update")
        async with self.db.write() as session:
            row = await self.row(session, caller, volume_id, lock=True)
            caller.authorize("volume:update", {"project_id": row.project_id})
            if row.status == st.MAINTENANCE:
                raise BadRequest("Invalid volume: The volume cannot be updated during maintenance.")
            for key, attr in (("name", "display_name"), ("display_name", "display_name"),
                              ("description", "display_description"),
                              ("display_description", "display_description")):
                if key in fields:
                    value = fields[key]
                    setattr(row, attr, value.strip() if isinstance(value, str) else value)
            if "metadata" in fields:
                row.metadata_ = dict(fields["metadata"] or {})
            row.updated_at = now()
            await session.flush()
            return await self.view(session, caller, row, links, extended=False)

    # ------------------------------------------------------------------ metadata

    async def metadata(self, caller: Caller, volume_id: str) -> dict[str, str]:
        caller.authorize("volume:get_volume_metadata")
        async with self.db.read() as session:
            row = await self.row(session, caller, volume_id)
            caller.authorize("volume:get_volume_metadata", {"project_id": row.project_id})
            return dict(row.metadata_ or {})

    async def set_metadata(self, caller: Caller, volume_id: str, metadata: dict[str, str], *,
                           replace: bool, rule: str = "volume:update_volume_metadata") -> dict[str, str]:
        """Merge ``metadata`` into the volume's (POST, PUT of one key) or replace it all (PUT)."""
        caller.authorize(rule)
        async with self.db.write() as session:
            row = await self.row(session, caller, volume_id, lock=True)
            caller.authorize(rule, {"project_id": row.project_id})
            if row.status == st.MAINTENANCE:
                raise BadRequest("Invalid volume: Updating volume metadata is not allowed for volumes in "
                                 "maintenance status.")
            row.metadata_ = dict(metadata) if replace else {**(row.metadata_ or {}), **metadata}
            row.updated_at = now()
            return dict(row.metadata_)

    async def delete_metadata(self, caller: Caller, volume_id: str, key: str) -> None:
        caller.authorize("volume:delete_volume_metadata")
        async with self.db.write() as session:
            row = await self.row(session, caller, volume_id, lock=True)
            caller.authorize("volume:delete_volume_metadata", {"project_id": row.project_id})
            if row.status == st.MAINTENANCE:
                raise BadRequest("Invalid volume: Deleting volume metadata is not allowed for volumes in "
                                 "maintenance status.")
            current = dict(row.metadata_ or {})
            if key not in current:
                raise NotFound(f"Metadata key: {key} could not be found.")
            del current[key]
            row.metadata_ = current
            row.updated_at = now()


def _last(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[-1] if values else None


def _sort(params: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """Cinder's ``sort=key1:dir,key2`` or the older ``sort_key``/``sort_dir`` (not both)."""
    if "sort" in params and ("sort_key" in params or "sort_dir" in params):
        raise BadRequest("Invalid input received: The 'sort_key' and 'sort_dir' parameters are deprecated and "
                         "cannot be used with the 'sort' parameter.")
    if "sort" in params:
        keys = [k.strip() for k in params["sort"][-1].split(",") if k.strip()]
        return keys, []
    return ([k.strip() for v in params.get("sort_key", []) for k in v.split(",") if k.strip()],
            [d.strip() for v in params.get("sort_dir", []) for d in v.split(",") if d.strip()])


_OPS = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__", "eq": "__eq__", "neq": "__ne__"}


def _time_filter(column: Any, value: str) -> list[Any]:
    """``created_at=gte:2024-01-01T00:00:00,lt:...`` (3.60)."""
    from datetime import datetime  # noqa: PLC0415

    out = []
    for part in value.split(","):
        op, _, when = part.partition(":")
        if op not in _OPS or not when:
            raise BadRequest(f"Invalid input received: Invalid filter value for time comparison: {value}")
        try:
            moment = datetime.fromisoformat(when.replace("Z", "+00:00")).replace(tzinfo=None)
        except ValueError:
            raise BadRequest(f"Invalid input received: Invalid filter value for time comparison: {value}") from None
        out.append(getattr(column, _OPS[op])(moment))
    return out

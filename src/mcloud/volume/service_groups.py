"""Generic volume groups (Cinder 3.11-3.38): group types with their specs, groups of volumes and
group snapshots, as cinder/group/api.py and cinder/volume/group_types.py behave.

A group is a record with the volume types its volumes may have; membership is the volume's own
``group_id``. Groups need nothing from a backend (Cinder's generic group implementation), so a
new group is ``available`` at once. What takes time is the volume and snapshot work, which goes
through the manager's durable tasks (seam 1) in the same transaction as the group's rows, and a
durable task of this part waits for it and sets the group's (or group snapshot's) end state:

- ``volume.group_settle`` {op, id}: a group snapshot's snapshots are made (``available`` /
  ``error``) or deleted (the group snapshot is deleted / ``error_deleting``); a group's volumes
  are deleted (the group is deleted / ``error_deleting``).
- ``volume.group_from_src`` {id}: makes a new group's volumes from a group snapshot's snapshots
  or a source group's volumes through ``volume.volumes.create`` (seam 3; resumable: a volume
  already made for a source is not made twice), then waits for them (``available`` / ``error``).

Replication (3.38) is refused as Cinder refuses it without a replication-capable backend.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.core.errors import BadRequest, Conflict, NotFound
from mcloud.core.validation import is_uuid
from mcloud.volume import states as st
from mcloud.volume.manager import after_commit
from mcloud.volume.models import Snapshot, Volume
from mcloud.volume.models_groups import Group, GroupSnapshot, GroupVolumeType, now
from mcloud.volume.models_types import GroupType, GroupTypeProject, GroupTypeSpec
from mcloud.volume.service import Caller

SETTLE = "volume.group_settle"
FROM_SRC = "volume.group_from_src"
#: how often a settle task looks at its volumes or snapshots, and for how long at most
POLL_SECONDS = 0.3
SETTLE_TIMEOUT = 6 * 3600.0

#: cinder/objects/fields.py GroupStatus, GroupSnapshotStatus
GROUP_STATUSES = frozenset({"error", "available", "creating", "deleting", "deleted", "updating", "in-use",
                            "error_deleting"})
GROUP_SNAPSHOT_STATUSES = frozenset({"error", "available", "creating", "deleting", "deleted", "updating",
                                     "error_deleting"})
VALID_REMOVE_STATUS = ("available", "in-use", "error", "error_deleting")
VALID_ADD_STATUS = ("available", "in-use")
#: volume statuses a group delete may start deleting from (Cinder refuses attached volumes and
#: volumes with snapshots; a volume in the middle of other work is refused here too)
DELETABLE_MEMBER = (st.AVAILABLE, st.ERROR, st.ERROR_RESTORING, st.ERROR_EXTENDING, "error_managing")
GROUP_SORTABLE = ("id", "name", "status", "created_at", "updated_at", "availability_zone", "description")
SNAPSHOT_SORTABLE = ("id", "name", "status", "created_at", "updated_at", "group_id", "description")
TYPE_SORTABLE = ("id", "name", "is_public", "created_at", "description")


@dataclasses.dataclass(frozen=True)
class GroupTypeView:
    id: str
    name: str
    description: str | None
    is_public: bool
    group_specs: dict[str, Any]


def groups_of(volume: Any) -> Groups:
    """The volume service's groups part."""
    return volume.groups


async def check_new_member(session: AsyncSession, caller: Caller, group_id: str, volume_type_id: str) -> Group:
    """What a volume create with ``group_id`` needs (Cinder's volume API): a group the caller
    sees (404), that takes volumes (available, or creating from a source), of one of its types."""
    group = await group_row(session, caller, group_id)
    if group.status not in ("available", "creating"):
        raise BadRequest(f"Invalid input received: Group {group.id} status must be available, but current status "
                         f"is: {group.status}.")
    allowed = await volume_type_ids(session, group.id)
    if volume_type_id not in allowed:
        raise BadRequest(f"Invalid input received: Invalid volume_type provided: {volume_type_id} (requested type "
                         f"must be supported by this group).")
    return group


async def group_row(session: AsyncSession, caller: Caller, group_id: str, *, lock: bool = False) -> Group:
    """A live group the caller may see, else Cinder's 404 "Group X could not be found."."""
    query = sa.select(Group).where(Group.id == str(group_id), Group.deleted.is_(False))
    if not caller.is_admin:
        query = query.where(Group.project_id == (caller.project_id or ""))
    if lock and session.bind.dialect.name != "sqlite":
        query = query.with_for_update()
    row = (await session.execute(query)).scalar()
    if row is None:
        raise NotFound(f"Group {group_id} could not be found.")
    return row


async def volume_type_ids(session: AsyncSession, group_id: str) -> list[str]:
    return list((await session.execute(sa.select(GroupVolumeType.volume_type_id).where(
        GroupVolumeType.group_id == group_id).order_by(GroupVolumeType.volume_type_id))).scalars())


async def members(session: AsyncSession, group_id: str) -> list[Volume]:
    return list((await session.execute(sa.select(Volume).where(
        Volume.group_id == group_id, Volume.deleted.is_(False)).order_by(Volume.created_at, Volume.id))).scalars())


class Groups:
    def __init__(self, volume: Any):
        self.volume = volume
        self.db = volume.db

    def register(self, tasks: Any) -> None:
        tasks.register(SETTLE, self._run_settle, on_failure=self._given_up)
        tasks.register(FROM_SRC, self._run_from_src, on_failure=self._given_up)

    async def _submit(self, session: AsyncSession, kind: str, payload: dict[str, Any], project_id: str) -> None:
        tasks = self.volume.tasks
        await tasks.submit(session, kind, payload, resource_id=payload["id"], owner_project=project_id)
        after_commit(session, tasks.wake)

    # ------------------------------------------------------------------ group types (3.11)

    def _type_visible(self, caller: Caller) -> Any:
        if caller.is_admin:
            return sa.true()
        shared = sa.select(GroupTypeProject.group_type_id).where(
            GroupTypeProject.project_id == (caller.project_id or ""))
        return sa.or_(GroupType.is_public.is_(True), GroupType.id.in_(shared))

    async def _type_view(self, session: AsyncSession, row: GroupType) -> GroupTypeView:
        return GroupTypeView(row.id, row.name, row.description, bool(row.is_public),
                             await self.group_specs(session, row.id))

    async def _type_row(self, session: AsyncSession, caller: Caller, type_id: str) -> GroupType:
        row = (await session.execute(sa.select(GroupType).where(
            GroupType.id == str(type_id), self._type_visible(caller)))).scalar()
        if row is None:
            raise NotFound(f"Group type {type_id} could not be found.")
        return row

    async def find_type(self, session: AsyncSession, caller: Caller, name_or_id: str) -> GroupType:
        """By id (then by name, as Cinder's group create), else 404 by id or by name."""
        by_name = sa.select(GroupType).where(GroupType.name == str(name_or_id), self._type_visible(caller))
        if not is_uuid(str(name_or_id)):
            row = (await session.execute(by_name)).scalar()
            if row is None:
                raise NotFound(f"Group type with name {name_or_id} could not be found.")
            return row
        row = (await session.execute(sa.select(GroupType).where(
            GroupType.id == str(name_or_id), self._type_visible(caller)))).scalar()
        if row is None:
            row = (await session.execute(by_name)).scalar()
        if row is None:
            raise NotFound(f"Group type {name_or_id} could not be found.")
        return row

    async def group_type(self, session: AsyncSession, caller: Caller, type_id: str) -> GroupTypeView:
        return await self._type_view(session, await self._type_row(session, caller, type_id))

    async def default_group_type(self, session: AsyncSession) -> GroupTypeView:
        name = getattr(self.volume.config, "default_group_type", None)
        row = None
        if name:
            row = (await session.execute(sa.select(GroupType).where(GroupType.name == name))).scalar()
        if row is None:
            raise NotFound("Default group type can not be found.")
        return await self._type_view(session, row)

    async def list_group_types(self, session: AsyncSession, caller: Caller, *, is_public: bool | None,
                               sort: list[tuple[str, str]] | None, limit: int | None, marker: str | None,
                               offset: int) -> list[GroupTypeView]:
        from mcloud.volume.service_types import listing  # noqa: PLC0415 (the types part's pager)

        query = sa.select(GroupType).where(self._type_visible(caller))
        if is_public is not None:
            query = query.where(GroupType.is_public.is_(is_public))
        rows = await listing(session, query, GroupType, TYPE_SORTABLE, sort, limit, marker, offset)
        return [await self._type_view(session, r) for r in rows]

    async def create_group_type(self, session: AsyncSession, *, name: str, description: str | None,
                                is_public: bool, group_specs: dict[str, Any] | None) -> GroupTypeView:
        if (await session.execute(sa.select(GroupType.id).where(GroupType.name == name))).scalar() is not None:
            raise Conflict(f"Group Type {name} already exists.")
        row = GroupType(id=str(uuid.uuid4()), name=name, description=description, is_public=is_public,
                        created_at=now())
        session.add(row)
        await session.flush()
        for key, value in (group_specs or {}).items():
            session.add(GroupTypeSpec(group_type_id=row.id, key=key, value=value))
        await session.flush()
        return await self._type_view(session, row)

    async def update_group_type(self, session: AsyncSession, caller: Caller, type_id: str, *, name: str | None,
                                description: str | None, is_public: bool | None) -> GroupTypeView:
        row = await self._type_row(session, caller, type_id)
        if name is not None and name != row.name:
            if (await session.execute(sa.select(GroupType.id).where(GroupType.name == name))).scalar() is not None:
                raise Conflict(f"Group Type {name} already exists.")
            row.name = name
        if description is not None:
            row.description = description
        if is_public is not None:
            row.is_public = is_public
        row.updated_at = now()
        await session.flush()
        return await self._type_view(session, row)

    async def delete_group_type(self, session: AsyncSession, caller: Caller, type_id: str) -> None:
        row = await self._type_row(session, caller, type_id)
        used = (await session.execute(sa.select(Group.id).where(
            Group.group_type_id == row.id, Group.deleted.is_(False)).limit(1))).scalar()
        if used is not None:
            raise BadRequest("Target group type is still in use.")
        await session.execute(sa.delete(GroupTypeSpec).where(GroupTypeSpec.group_type_id == row.id))
        await session.execute(sa.delete(GroupTypeProject).where(GroupTypeProject.group_type_id == row.id))
        await session.delete(row)

    async def group_specs(self, session: AsyncSession, type_id: str) -> dict[str, Any]:
        return dict((await session.execute(sa.select(GroupTypeSpec.key, GroupTypeSpec.value).where(
            GroupTypeSpec.group_type_id == type_id))).all())

    async def set_group_specs(self, session: AsyncSession, caller: Caller, type_id: str,
                              specs: dict[str, Any]) -> None:
        row = await self._type_row(session, caller, type_id)
        for key, value in specs.items():
            spec = await session.get(GroupTypeSpec, (row.id, key))
            if spec is None:
                session.add(GroupTypeSpec(group_type_id=row.id, key=key, value=value))
            else:
                spec.value = value
        row.updated_at = now()
        await session.flush()

    async def delete_group_spec(self, session: AsyncSession, caller: Caller, type_id: str, key: str) -> None:
        row = await self._type_row(session, caller, type_id)
        spec = await session.get(GroupTypeSpec, (row.id, key))
        if spec is None:
            raise NotFound(f"Group Type {row.id} has no specs with key {key}.")
        await session.delete(spec)

    # ------------------------------------------------------------------ groups (3.13)

    async def create(self, caller: Caller, *, group_type: str, volume_types: list[str], name: str | None,
                     description: str | None, availability_zone: str | None) -> Group:
        caller.authorize("group:create")
        vol = self.volume
        async with self.db.write() as session:
            # Cinder looks the volume types up elevated, by name or id
            types = [await vol.types.resolve(session, Caller.internal(caller.project_id, caller.user_id), t)
                     for t in volume_types]
            gtype = await self.find_type(session, caller, group_type)
            zone = await vol.volumes._zone(availability_zone or None, None, None, session)
            await vol.quotas.reserve(session, caller.project_id, {"groups": 1})
            row = Group(id=str(uuid.uuid4()), project_id=caller.project_id, user_id=caller.user_id, name=name,
                        description=description, status=st.AVAILABLE, availability_zone=zone,
                        group_type_id=gtype.id, replication_status="disabled", created_at=now())
            session.add(row)
            await session.flush()
            for type_id in dict.fromkeys(t.id for t in types):
                session.add(GroupVolumeType(group_id=row.id, volume_type_id=type_id))
            await session.flush()
            return row

    async def create_from_src(self, caller: Caller, *, name: str | None, description: str | None,
                              group_snapshot_id: str | None, source_group_id: str | None) -> Group:
        """A group in ``creating`` whose volumes a task makes from a group snapshot's snapshots or
        a source group's volumes (Cinder's 400 for an empty or busy source)."""
        caller.authorize("group:create")
        async with self.db.write() as session:
            if group_snapshot_id:
                gsnap = await self.snapshot_row(session, caller, group_snapshot_id)
                source = await group_row(session, Caller.internal(), gsnap.group_id)
                if gsnap.status != st.AVAILABLE:
                    raise BadRequest(f"Invalid Group: Group snapshot {gsnap.id} status must be available, but "
                                     f"current status is: {gsnap.status}.")
                count = (await session.execute(sa.select(sa.func.count()).select_from(Snapshot).where(
                    Snapshot.group_snapshot_id == gsnap.id, Snapshot.deleted.is_(False)))).scalar()
                if not count:
                    raise BadRequest("Invalid Group: Group snapshot is empty. No group will be created.")
                group_type_id = gsnap.group_type_id
            else:
                source = await group_row(session, caller, str(source_group_id))
                if source.status != st.AVAILABLE:
                    raise BadRequest(f"Invalid Group: Source group {source.id} status must be available, but "
                                     f"current status is: {source.status}.")
                if not await members(session, source.id):
                    raise BadRequest("Invalid Group: Source Group is empty. No group will be created.")
                group_type_id = source.group_type_id
            await self.volume.quotas.reserve(session, caller.project_id, {"groups": 1})
            row = Group(id=str(uuid.uuid4()), project_id=caller.project_id, user_id=caller.user_id, name=name,
                        description=description, status=st.CREATING, availability_zone=source.availability_zone,
                        group_type_id=group_type_id, group_snapshot_id=group_snapshot_id or None,
                        source_group_id=None if group_snapshot_id else source.id, replication_status="disabled",
                        created_at=now())
            session.add(row)
            await session.flush()
            for type_id in await volume_type_ids(session, source.id):
                session.add(GroupVolumeType(group_id=row.id, volume_type_id=type_id))
            await session.flush()
            await self._submit(session, FROM_SRC, {"id": row.id}, row.project_id)
            return row

    async def get(self, session: AsyncSession, caller: Caller, group_id: str) -> Group:
        row = await group_row(session, caller, group_id)
        caller.authorize("group:get", {"project_id": row.project_id})
        return row

    async def list(self, session: AsyncSession, caller: Caller, params: dict[str, list[str]], *,
                   sort: list[tuple[str, str]] | None, limit: int | None, marker: str | None,
                   offset: int) -> list[Group]:
        from mcloud.volume.service_types import listing  # noqa: PLC0415

        caller.authorize("group:get_all")
        query = sa.select(Group).where(Group.deleted.is_(False))
        all_tenants = caller.is_admin and _true(params, "all_tenants")
        if not all_tenants:
            query = query.where(Group.project_id == (caller.project_id or ""))
        query = _filtered(query, Group, params, caller, ("name", "status"))
        return await listing(session, query, Group, GROUP_SORTABLE, sort, limit, marker, offset)

    async def update(self, caller: Caller, group_id: str, *, name: str | None, description: str | None,
                     add_volumes: str | None, remove_volumes: str | None) -> None:
        async with self.db.write() as session:
            group = await group_row(session, caller, group_id, lock=True)
            caller.authorize("group:update", {"project_id": group.project_id})
            if name == group.name:
                name = None
            if description == group.description:
                description = None
            adds = [v for v in (add_volumes or "").strip(",").split(",") if v]
            removes = [v for v in (remove_volumes or "").strip(",").split(",") if v]
            both = [v for v in adds if v in removes]
            if both:
                raise BadRequest(f"Invalid volume: UUIDs {both} are in both add and remove volume list.")
            current = {v.id: v for v in await members(session, group.id)}
            to_remove = self._removable(group, current, removes)
            to_add = await self._addable(session, caller, group, current, adds)
            if name is None and description is None and not to_add and not to_remove:
                raise BadRequest(f"Invalid Group: Cannot update group {group.id} because no valid name, description, "
                                 f"add_volumes, or remove_volumes were provided.")
            if (to_add or to_remove) and group.status != st.AVAILABLE:
                raise BadRequest("Invalid Group: Group status must be available.")
            if name is not None:
                group.name = name
            if description is not None:
                group.description = description
            for row in to_remove:
                row.group_id = None
                row.updated_at = now()
            for row in to_add:
                row.group_id = group.id
                row.updated_at = now()
            if not to_add and not to_remove:
                group.status = st.AVAILABLE
            group.updated_at = now()

    @staticmethod
    def _removable(group: Group, current: dict[str, Volume], removes: list[str]) -> list[Volume]:
        out = []
        for volume_id in removes:
            row = current.get(volume_id)
            if row is None:
                raise BadRequest(f"Invalid volume: Cannot remove volume {volume_id} from group {group.id} because it "
                                 f"is not in the group.")
            if row.status not in VALID_REMOVE_STATUS:
                raise BadRequest(f"Invalid volume: Cannot remove volume {row.id} from group {group.id} because volume "
                                 f"is in an invalid state: {row.status}. Valid states are: {VALID_REMOVE_STATUS}.")
            out.append(row)
        return out

    async def _addable(self, session: AsyncSession, caller: Caller, group: Group, current: dict[str, Volume],
                       adds: list[str]) -> list[Volume]:
        allowed = await volume_type_ids(session, group.id)
        out = []
        for volume_id in dict.fromkeys(adds):
            if volume_id in current:
                continue
            try:
                row = await self.volume.volumes.row(session, caller, volume_id, lock=True)
            except NotFound:
                raise BadRequest(f"Invalid volume: Cannot add volume {volume_id} to group {group.id} because volume "
                                 f"cannot be found.") from None
            if row.group_id:
                raise BadRequest(f"Invalid volume: Cannot add volume {row.id} to group {group.id} because it is "
                                 f"already in group {row.group_id}.")
            if row.project_id != group.project_id:
                raise BadRequest(f"Invalid volume: Cannot add volume {row.id} to group {group.id} as they belong to "
                                 f"different projects.")
            if not row.volume_type_id:
                raise BadRequest(f"Invalid volume: Cannot add volume {row.id} to group {group.id} because it has no "
                                 f"volume type.")
            if row.volume_type_id not in allowed:
                raise BadRequest(f"Invalid volume: Cannot add volume {row.id} to group {group.id} because volume type "
                                 f"{row.volume_type_id} is not supported by the group.")
            if row.status not in VALID_ADD_STATUS:
                raise BadRequest(f"Invalid volume: Cannot add volume {row.id} to group {group.id} because volume is in "
                                 f"an invalid state: {row.status}. Valid states are: {VALID_ADD_STATUS}.")
            out.append(row)
        return out

    async def delete(self, caller: Caller, group_id: str, *, delete_volumes: bool) -> None:
        """Cinder's group delete: an empty group goes at once; with ``delete-volumes`` its volumes
        start deleting and the group follows them (``deleting``, then deleted by the settle task)."""
        async with self.db.write() as session:
            group = await group_row(session, caller, group_id, lock=True)
            caller.authorize("group:delete", {"project_id": group.project_id})
            if not delete_volumes and group.status not in (st.AVAILABLE, st.ERROR):
                raise BadRequest(f"Invalid Group: Group status must be available or error, but current status is: "
                                 f"{group.status}")
            if await self._group_snapshots_of(session, group.id):
                raise BadRequest("Invalid Group: Group has existing snapshots.")
            volumes = await members(session, group.id)
            if volumes and not delete_volumes:
                raise BadRequest(f"Invalid Group: Group {group.id} still contains volumes. The delete-volumes flag is "
                                 f"required to delete it.")
            for row in volumes:
                if row.attach_status == st.ATTACHED:
                    raise BadRequest(f"Invalid Group: Volume in group {group.id} is attached. Need to detach first.")
                if (await session.execute(sa.select(Snapshot.id).where(
                        Snapshot.volume_id == row.id, Snapshot.deleted.is_(False)).limit(1))).scalar():
                    raise BadRequest("Invalid Group: Volume in group still has dependent snapshots.")
            busy = group.status in (st.CREATING, st.DELETING, "updating") or any(
                r.status not in DELETABLE_MEMBER and r.status != st.IN_USE for r in volumes) or await self._a_source(
                session, group_id=group.id)
            if busy:
                reason = ("Group status must be available or error and must not have dependent group snapshots"
                          if delete_volumes else "Group must not have attached volumes, volumes with snapshots, or "
                          "dependent group snapshots")
                raise BadRequest(f"Invalid Group: Cannot delete group {group.id}. {reason}, and it cannot be the source "
                                 f"for an ongoing group or group snapshot creation.")
            group.updated_at = now()
            if not volumes:
                _soft_delete(group)
                return
            group.status = st.DELETING
            for row in volumes:
                row.previous_status = row.status
                row.status = st.DELETING
                row.terminated_at = row.updated_at = now()
                await self.volume.manager.delete_volume(session, row)
            await self._submit(session, SETTLE, {"op": "group_delete", "id": group.id}, group.project_id)

    async def _group_snapshots_of(self, session: AsyncSession, group_id: str) -> list[GroupSnapshot]:
        return list((await session.execute(sa.select(GroupSnapshot).where(
            GroupSnapshot.group_id == group_id, GroupSnapshot.deleted.is_(False)))).scalars())

    async def _a_source(self, session: AsyncSession, *, group_id: str | None = None,
                        group_snapshot_id: str | None = None) -> bool:
        """Whether a group being created takes its volumes from this group (snapshot)."""
        query = sa.select(Group.id).where(Group.deleted.is_(False), Group.status == st.CREATING)
        query = query.where(Group.source_group_id == group_id) if group_id else query.where(
            Group.group_snapshot_id == group_snapshot_id)
        return (await session.execute(query.limit(1))).scalar() is not None

    async def reset_status(self, caller: Caller, group_id: str, status: str) -> None:
        status = status.lower()
        if status not in GROUP_STATUSES:
            raise BadRequest(f"Invalid input for field/attribute status. Value: {status}. Value should be one of "
                             f"{sorted(GROUP_STATUSES)}.")
        async with self.db.write() as session:
            group = await group_row(session, caller, group_id, lock=True)
            caller.authorize("group:reset_status", {"project_id": group.project_id})
            group.status = status
            group.updated_at = now()

    async def replication(self, caller: Caller, group_id: str, action: str) -> None:
        """enable/disable/failover_replication, list_replication_targets: Cinder's checks, then
        400, as no backend here replicates."""
        async with self.db.read() as session:
            group = await group_row(session, caller, group_id)
            caller.authorize(f"group:{action}", {"project_id": group.project_id})
            specs = await self.group_specs(session, group.group_type_id)
            if str(specs.get("group_replication_enabled", "")).strip().lower() != "<is> true":
                raise BadRequest(f"Invalid group type: Group {group.id} is not a replication group type.")
            for type_id in await volume_type_ids(session, group.id):
                vtype = await self.volume.types.get(session, type_id)
                if str(vtype.extra_specs.get("replication_enabled", "")).strip().lower() != "<is> true":
                    raise BadRequest(f"Invalid volume type: Volume type {type_id} does not have 'replication_enabled' "
                                     f"spec key set to '<is> True'.")
        raise BadRequest("Invalid Group: Replication is not supported by the volume backends of this cloud.")

    # ------------------------------------------------------------------ group snapshots (3.14)

    async def snapshot_row(self, session: AsyncSession, caller: Caller, group_snapshot_id: str, *,
                           lock: bool = False) -> GroupSnapshot:
        query = sa.select(GroupSnapshot).where(GroupSnapshot.id == str(group_snapshot_id),
                                               GroupSnapshot.deleted.is_(False))
        if not caller.is_admin:
            query = query.where(GroupSnapshot.project_id == (caller.project_id or ""))
        if lock and not self.db.is_sqlite:
            query = query.with_for_update()
        row = (await session.execute(query)).scalar()
        if row is None:
            raise NotFound(f"GroupSnapshot {group_snapshot_id} could not be found.")
        return row

    async def create_snapshot(self, caller: Caller, group_id: str, *, name: str | None,
                              description: str | None) -> GroupSnapshot:
        """A group snapshot in ``creating`` with a snapshot of each of the group's volumes, each
        made by the manager's snapshot task; the settle task makes the group snapshot available."""
        async with self.db.write() as session:
            group = await group_row(session, caller, group_id, lock=True)
            caller.authorize("group:get", {"project_id": group.project_id})
            caller.authorize("group:create_group_snapshot", {"project_id": group.project_id})
            if group.status != st.AVAILABLE:
                raise BadRequest(f"Invalid Group: Group {group.id} status must be available, but current status is: "
                                 f"{group.status}.")
            volumes = await members(session, group.id)
            deltas: dict[str, int] = {}
            for row in volumes:
                caller.authorize("volume:create_snapshot", {"project_id": row.project_id})
                self._check_snapshot_source(row)
                type_name = await self.volume.volumes._type_name(session, row)
                for key, amount in (("snapshots", 1), ("gigabytes", row.size)):
                    deltas[key] = deltas.get(key, 0) + amount
                    if type_name:
                        deltas[f"{key}_{type_name}"] = deltas.get(f"{key}_{type_name}", 0) + amount
            if deltas:
                await self.volume.quotas.reserve(session, group.project_id, deltas)
            gsnap = GroupSnapshot(id=str(uuid.uuid4()), group_id=group.id, project_id=group.project_id,
                                  user_id=caller.user_id, name=name, description=description,
                                  status=st.CREATING if volumes else st.AVAILABLE, group_type_id=group.group_type_id,
                                  created_at=now())
            session.add(gsnap)
            await session.flush()
            for row in volumes:
                snap = Snapshot(id=str(uuid.uuid4()), volume_id=row.id, project_id=row.project_id,
                                user_id=caller.user_id, volume_size=row.size, status=st.CREATING, progress="0%",
                                display_name=name, display_description=description,
                                volume_type_id=row.volume_type_id, group_snapshot_id=gsnap.id, metadata_={},
                                use_quota=True, created_at=now())
                session.add(snap)
                await session.flush()
                await self.volume.manager.create_snapshot(session, snap)
            if volumes:
                await self._submit(session, SETTLE, {"op": "snapshot_create", "id": gsnap.id}, gsnap.project_id)
            return gsnap

    @staticmethod
    def _check_snapshot_source(row: Volume) -> None:
        """cinder/volume/api.py _create_snapshot_in_db_validate, for each volume of the group."""
        if not row.host:
            raise BadRequest("Invalid volume: The snapshot cannot be created because volume has not been scheduled "
                             "to any host.")
        if row.status == st.MAINTENANCE:
            raise BadRequest("Invalid volume: The snapshot cannot be created when the volume is in maintenance mode.")
        if row.migration_status in ("migrating", "starting"):
            raise BadRequest("Invalid volume: Snapshot cannot be created while volume is migrating.")
        if row.status not in (st.AVAILABLE, st.IN_USE):
            raise BadRequest(f"Invalid volume: Volume {row.id} status must be available or in-use, but current "
                             f"status is: {row.status}.")

    async def list_snapshots(self, session: AsyncSession, caller: Caller, params: dict[str, list[str]], *,
                             sort: list[tuple[str, str]] | None, limit: int | None, marker: str | None,
                             offset: int) -> list[GroupSnapshot]:
        from mcloud.volume.service_types import listing  # noqa: PLC0415

        caller.authorize("group:get_all_group_snapshots")
        query = sa.select(GroupSnapshot).where(GroupSnapshot.deleted.is_(False))
        if not (caller.is_admin and _true(params, "all_tenants")):
            query = query.where(GroupSnapshot.project_id == (caller.project_id or ""))
        query = _filtered(query, GroupSnapshot, params, caller, ("name", "status", "group_id"))
        return await listing(session, query, GroupSnapshot, SNAPSHOT_SORTABLE, sort, limit, marker, offset)

    async def get_snapshot(self, session: AsyncSession, caller: Caller, group_snapshot_id: str) -> GroupSnapshot:
        row = await self.snapshot_row(session, caller, group_snapshot_id)
        caller.authorize("group:get_group_snapshot", {"project_id": row.project_id})
        return row

    async def delete_snapshot(self, caller: Caller, group_snapshot_id: str) -> None:
        async with self.db.write() as session:
            gsnap = await self.snapshot_row(session, caller, group_snapshot_id, lock=True)
            caller.authorize("group:delete_group_snapshot", {"project_id": gsnap.project_id})
            if gsnap.status not in (st.AVAILABLE, st.ERROR) or await self._a_source(
                    session, group_snapshot_id=gsnap.id):
                raise BadRequest("Invalid GroupSnapshot: GroupSnapshot status must be available or error, and no Group "
                                 "can be currently using it as source for its creation.")
            snaps = list((await session.execute(sa.select(Snapshot).where(
                Snapshot.group_snapshot_id == gsnap.id, Snapshot.deleted.is_(False)))).scalars())
            gsnap.updated_at = now()
            if not snaps:
                _soft_delete(gsnap)
                return
            gsnap.status = st.DELETING
            for snap in snaps:
                snap.status = st.DELETING
                snap.updated_at = now()
                await self.volume.manager.delete_snapshot(session, snap)
            await self._submit(session, SETTLE, {"op": "snapshot_delete", "id": gsnap.id}, gsnap.project_id)

    async def reset_snapshot_status(self, caller: Caller, group_snapshot_id: str, status: str) -> None:
        status = status.lower()
        if status not in GROUP_SNAPSHOT_STATUSES:
            raise BadRequest(f"Invalid input for field/attribute status. Value: {status}. Value should be one of "
                             f"{sorted(GROUP_SNAPSHOT_STATUSES)}.")
        async with self.db.write() as session:
            gsnap = await self.snapshot_row(session, caller, group_snapshot_id, lock=True)
            caller.authorize("group:reset_group_snapshot_status", {"project_id": gsnap.project_id})
            gsnap.status = status
            gsnap.updated_at = now()

    # ------------------------------------------------------------------ durable tasks

    async def _run_from_src(self, ctx: Any) -> dict[str, Any]:
        """Make the new group's volumes (once each, across attempts), then wait for them."""
        async with self.db.read() as session:
            group = await session.get(Group, ctx.payload["id"])
            if group is None or group.deleted or group.status != st.CREATING:
                return {"skipped": True}
            made = await members(session, group.id)
            if group.group_snapshot_id:
                sources = [("snapshot_id", s.id, s.volume_size) for s in (await session.execute(
                    sa.select(Snapshot).where(Snapshot.group_snapshot_id == group.group_snapshot_id,
                                              Snapshot.deleted.is_(False)).order_by(Snapshot.created_at,
                                                                                   Snapshot.id))).scalars()]
                done = {v.snapshot_id for v in made}
            else:
                sources = [("source_volid", v.id, v.size) for v in await members(session, group.source_group_id or "")]
                done = {v.source_volid for v in made}
        caller = Caller.internal(group.project_id, group.user_id)
        for field, source_id, size in sources:
            if source_id in done:
                continue
            try:
                await self.volume.volumes.create(caller, size, availability_zone=group.availability_zone,
                                                 group_id=group.id, **{field: source_id})
            except Exception as exc:  # noqa: BLE001 (Cinder's 4xx of one volume puts the group in error)
                await self._finish(Group, group.id, st.CREATING, st.ERROR)
                return {"error": str(exc)}
        await self._settle("group_create", group.id)
        return {}

    async def _run_settle(self, ctx: Any) -> dict[str, Any]:
        await self._settle(ctx.payload["op"], ctx.payload["id"])
        return {}

    async def _settle(self, op: str, resource_id: str) -> None:
        """Wait until the volumes or snapshots ``op`` started have ended, then set the group's or
        group snapshot's end state (unless an admin reset it meanwhile)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            async with self.db.read() as session:
                outcome = await self._outcome(session, op, resource_id)
            if outcome is not None:
                break
            if time.monotonic() > deadline:
                outcome = st.ERROR_DELETING if op.endswith("delete") else st.ERROR
                break
            await asyncio.sleep(POLL_SECONDS)
        model = GroupSnapshot if op.startswith("snapshot") else Group
        expected = st.DELETING if op.endswith("delete") else st.CREATING
        await self._finish(model, resource_id, expected, outcome)

    async def _outcome(self, session: AsyncSession, op: str, resource_id: str) -> str | None:
        """The end state once nothing is in progress any more, else None."""
        if op in ("group_create", "group_delete"):
            rows = [(r.status, r.deleted) for r in (await session.execute(sa.select(Volume).where(
                Volume.group_id == resource_id))).scalars()]
        else:
            rows = [(r.status, r.deleted) for r in (await session.execute(sa.select(Snapshot).where(
                Snapshot.group_snapshot_id == resource_id))).scalars()]
        live = [status for status, deleted in rows if not deleted]
        if op.endswith("delete"):
            if any(s == st.DELETING for s in live):
                return None
            return st.ERROR_DELETING if live else "deleted"
        if any(s == st.CREATING for s in live):
            return None
        return st.AVAILABLE if live and all(s in (st.AVAILABLE, st.IN_USE) for s in live) else st.ERROR

    async def _finish(self, model: Any, resource_id: str, expected: str, status: str) -> None:
        async with self.db.write() as session:
            row = await session.get(model, resource_id)
            if row is None or row.deleted or row.status != expected:
                return
            if status == "deleted":
                _soft_delete(row)
            else:
                row.status = status
                row.updated_at = now()

    async def _given_up(self, session: AsyncSession, task: Any, message: str) -> None:
        payload = task.payload or {}
        op = payload.get("op", "group_create")
        model = GroupSnapshot if op.startswith("snapshot") else Group
        row = await session.get(model, payload.get("id"))
        if row is not None and not row.deleted and row.status in (st.CREATING, st.DELETING):
            row.status = st.ERROR_DELETING if row.status == st.DELETING else st.ERROR
            row.updated_at = now()


def _soft_delete(row: Any) -> None:
    row.status = "deleted"
    row.deleted = True
    row.deleted_at = row.updated_at = now()


def _true(params: dict[str, list[str]], key: str) -> bool:
    from mcloud.volume.schemas import as_bool  # noqa: PLC0415

    values = params.get(key)
    return bool(values) and as_bool(values[-1] or "true", key)


#: what the API takes as list parameters besides the filters
LIST_KEYS = frozenset({"all_tenants", "limit", "marker", "offset", "sort", "sort_key", "sort_dir", "list_volume",
                       "with_count", "project_id"})


def _filtered(query: Any, model: Any, params: dict[str, list[str]], caller: Caller, allowed: tuple[str, ...]) -> Any:
    """Cinder's resource filters (etc/cinder/resource_filters.json): ``allowed`` keys, ``key~``
    (3.34 like) too; any other key is a 400 from 3.33 (before it is ignored, as Cinder)."""
    for key, values in params.items():
        if key in LIST_KEYS:
            continue
        name = key[:-1] if key.endswith("~") and caller.at(3, 34) else key
        if name not in allowed:
            if caller.at(3, 33):
                raise BadRequest(f"Invalid filters {key} are provided.")
            continue
        column = getattr(model, name)
        value = values[-1]
        query = query.where(column.like(f"%{value}%") if name != key else column == value)
    return query

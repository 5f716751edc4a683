"""Volume types with their extra specs and access lists, each project's default type (3.62), and
QoS specs with their associations (``volume.types``), as Cinder's volume_types.py/qos_specs.py.

For the other parts (seam 2): :meth:`Types.resolve` (a name or id as a volume create names it,
None for the caller's default type) and :meth:`Types.get` (by id, no access check).

Group types (3.11) are in ``service_types_groups.py``.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.core.errors import BadRequest, Conflict, NotFound
from mcloud.core.pagination import SortKey, page
from mcloud.volume import models_types as m
from mcloud.volume.models_types import now

#: extra specs every caller sees (cinder/policies/type_extra_specs.py USER_VISIBLE_EXTRA_SPECS)
USER_VISIBLE_EXTRA_SPECS = ("RESKEY:availability_zones", "multiattach", "replication_enabled")
QOS_CONSUMERS = ("front-end", "back-end", "both")
TYPE_SORT_KEYS = ("id", "name", "description", "is_public", "created_at", "updated_at")
MAX_PAGE = 1000


@dataclasses.dataclass(frozen=True)
class TypeView:
    id: str
    name: str
    description: str | None
    is_public: bool
    extra_specs: dict[str, Any]
    qos_specs_id: str | None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclasses.dataclass(frozen=True)
class QosView:
    id: str
    name: str
    consumer: str
    specs: dict[str, Any]
    created_at: datetime | None = None


def is_uuid_like(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


async def listing(session: AsyncSession, query: Any, model: Any, sortable: tuple[str, ...],
                  sort: list[tuple[str, str]] | None, limit: int | None, marker: str | None,
                  offset: int = 0) -> list[Any]:
    """One page of a Cinder list: ``sort`` as (key, "asc"|"desc") pairs over ``sortable`` columns
    (default: newest first), rows after ``marker`` (404 "Marker X could not be found."),
    ``offset`` skipped, at most ``limit``."""
    keys = []
    for key, direction in sort or [("created_at", "desc")]:
        if key not in sortable:
            raise BadRequest(f"Invalid input received: Invalid sort key {key}")
        keys.append(SortKey(getattr(model, key), direction == "desc"))
    rows = await page(session, query.offset(offset) if offset else query, model.id, keys,
                      MAX_PAGE if limit is None else limit, marker)
    return rows


def volume_model() -> Any:
    """VOLUMES' volume table (read to tell whether a type is in use), or None before it exists."""
    from mcloud.volume import models  # noqa: PLC0415

    return getattr(models, "Volume", None)


class Types:
    def __init__(self, volume: Any):
        self.volume = volume

    # ------------------------------------------------------------------ for the other parts

    async def get(self, session: AsyncSession, type_id: str) -> TypeView:
        """A type by id, whoever asks (404 "Volume type X could not be found.")."""
        row = await session.get(m.VolumeType, type_id)
        if row is None:
            raise NotFound(f"Volume type {type_id} could not be found.")
        return await self._view(session, row)

    async def resolve(self, session: AsyncSession, caller: Any, name_or_id: str | None) -> TypeView:
        """The type a volume create names (by id, else by name, as Cinder's get_by_name_or_id),
        visible to the caller; None: the caller's project default, else ``default_volume_type``."""
        if name_or_id is None:
            return await self.default_type(session, caller.project_id)
        row = await self._find(session, caller, str(name_or_id))
        if row is None:
            if is_uuid_like(str(name_or_id)):
                raise NotFound(f"Volume type {name_or_id} could not be found.")
            raise NotFound(f"Volume type with name {name_or_id} could not be found.")
        return await self._view(session, row)

    async def default_type(self, session: AsyncSession, project_id: str | None) -> TypeView:
        if project_id:
            own = await session.get(m.DefaultType, project_id)
            if own is not None:
                return await self.get(session, own.volume_type_id)
        name = self.volume.config.default_volume_type
        row = (await session.execute(sa.select(m.VolumeType).where(m.VolumeType.name == name))).scalar()
        if row is None:
            raise BadRequest(f"The request cannot be fulfilled as the default volume type {name} cannot be found.")
        return await self._view(session, row)

    # ------------------------------------------------------------------ lookups

    def _visible(self, caller: Any) -> Any:
        """The clause a non-admin's types meet: public, or shared with the caller's project."""
        if caller.is_admin:
            return sa.true()
        shared = sa.select(m.VolumeTypeProject.volume_type_id).where(
            m.VolumeTypeProject.project_id == (caller.project_id or ""))
        return m.VolumeType.is_public.is_(True) | m.VolumeType.id.in_(shared)

    async def _find(self, session: AsyncSession, caller: Any, name_or_id: str) -> m.VolumeType | None:
        visible = self._visible(caller)
        if is_uuid_like(name_or_id):
            row = (await session.execute(sa.select(m.VolumeType).where(
                m.VolumeType.id == name_or_id, visible))).scalar()
            if row is not None:
                return row
        return (await session.execute(sa.select(m.VolumeType).where(
            m.VolumeType.name == name_or_id, visible))).scalar()

    async def _row(self, session: AsyncSession, caller: Any, type_id: str) -> m.VolumeType:
        row = (await session.execute(sa.select(m.VolumeType).where(
            m.VolumeType.id == type_id, self._visible(caller)))).scalar()
        if row is None:
            raise NotFound(f"Volume type {type_id} could not be found.")
        return row

    async def _specs(self, session: AsyncSession, type_ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {t: {} for t in type_ids}
        if type_ids:
            rows = await session.execute(sa.select(m.VolumeTypeExtraSpec).where(
                m.VolumeTypeExtraSpec.volume_type_id.in_(type_ids)))
            for spec in rows.scalars():
                out[spec.volume_type_id][spec.key] = spec.value
        return out

    async def _view(self, session: AsyncSession, row: m.VolumeType,
                    specs: dict[str, Any] | None = None) -> TypeView:
        if specs is None:
            specs = (await self._specs(session, [row.id]))[row.id]
        return TypeView(id=row.id, name=row.name, description=row.description, is_public=row.is_public,
                        extra_specs=specs, qos_specs_id=row.qos_specs_id, created_at=row.created_at,
                        updated_at=row.updated_at)

    async def _in_use(self, session: AsyncSession, type_id: str) -> bool:
        volume = volume_model()
        if volume is None:
            return False
        deleted = getattr(volume, "deleted", None)
        query = sa.select(volume.id).where(volume.volume_type_id == type_id).limit(1)
        if deleted is not None:
            query = query.where(deleted.is_(False))
        return (await session.execute(query)).first() is not None

    # ------------------------------------------------------------------ types

    async def list_types(self, session: AsyncSession, caller: Any, *, is_public: bool | None = True,
                         filters: dict[str, Any] | None = None, sort: list[tuple[str, str]] | None = None,
                         limit: int | None = None, marker: str | None = None, offset: int = 0,
                         ) -> list[TypeView]:
        """Cinder's list: admins choose ``is_public`` (True: public and shared with their project;
        None: all); others see public types and those shared with their project. ``filters``: name,
        description, extra_specs (dict, all must match)."""
        t = m.VolumeType
        query = sa.select(t)
        if not caller.is_admin:
            query = query.where(self._visible(caller))
        elif is_public is not None:
            clause = t.is_public.is_(is_public)
            if is_public and caller.project_id:
                shared = sa.select(m.VolumeTypeProject.volume_type_id).where(
                    m.VolumeTypeProject.project_id == caller.project_id)
                clause = clause | t.id.in_(shared)
            query = query.where(clause)
        filters = filters or {}
        for key in ("name", "description", "id"):
            if filters.get(key) is not None:
                query = query.where(getattr(t, key) == filters[key])
        for key, value in (filters.get("extra_specs") or {}).items():
            query = query.where(t.id.in_(sa.select(m.VolumeTypeExtraSpec.volume_type_id).where(
                m.VolumeTypeExtraSpec.key == key, m.VolumeTypeExtraSpec.value == str(value))))
        rows = await listing(session, query, t, TYPE_SORT_KEYS, sort, limit, marker, offset)
        specs = await self._specs(session, [r.id for r in rows])
        return [await self._view(session, r, specs[r.id]) for r in rows]

    async def show_type(self, session: AsyncSession, caller: Any, type_id: str) -> TypeView:
        """``default`` is the caller's default type."""
        if type_id == "default":
            return await self.default_type(session, caller.project_id)
        return await self._view(session, await self._row(session, caller, type_id))

    async def _name_free(self, session: AsyncSession, name: str, type_id: str | None = None) -> None:
        other = (await session.execute(sa.select(m.VolumeType.id).where(m.VolumeType.name == name))).scalar()
        if other is not None and other != type_id:
            raise Conflict(f"Volume Type {name} already exists.")

    async def create_type(self, session: AsyncSession, *, name: str, description: str | None = None,
                          is_public: bool = True, extra_specs: dict[str, Any] | None = None) -> TypeView:
        name = name.strip()
        if not name:
            raise BadRequest("Volume type name can not be empty.")
        await self._name_free(session, name)
        row = m.VolumeType(id=str(uuid.uuid4()), name=name, description=description, is_public=is_public,
                           created_at=now())
        session.add(row)
        await session.flush()
        for key, value in (extra_specs or {}).items():
            session.add(m.VolumeTypeExtraSpec(volume_type_id=row.id, key=key, value=value))
        await session.flush()
        return await self._view(session, row)

    async def update_type(self, session: AsyncSession, caller: Any, type_id: str, *, name: str | None = None,
                          description: str | None = None, is_public: bool | None = None,
                          description_given: bool = False) -> TypeView:
        row = await self._row(session, caller, type_id)
        if name is not None and not name.strip():
            raise BadRequest("Volume type name can not be empty.")
        if name is None and not description_given and is_public is None:
            raise BadRequest("Specify volume type name, description, is_public or a combination thereof.")
        if name is not None and name != row.name:
            if row.name == self.volume.config.default_volume_type:
                raise BadRequest(f"The volume type {row.name} is the default volume type and cannot be renamed.")
            await self._name_free(session, name, row.id)
            await self.volume.quotas.rename_type(session, row.name, name)
            row.name = name
        if description_given:
            row.description = description
        if is_public is not None:
            row.is_public = is_public
        row.updated_at = now()
        await session.flush()
        return await self._view(session, row)

    async def delete_type(self, session: AsyncSession, caller: Any, type_id: str) -> None:
        row = await self._row(session, caller, type_id)
        defaults = (await session.execute(sa.select(m.DefaultType.project_id).where(
            m.DefaultType.volume_type_id == row.id).limit(1))).first()
        if defaults is not None or row.name == self.volume.config.default_volume_type:
            raise BadRequest(f"The volume type {row.id} is a default volume type and cannot be deleted.")
        if await self._in_use(session, row.id):
            raise BadRequest("Target volume type is still in use.")
        await session.delete(row)
        await session.flush()

    # ------------------------------------------------------------------ extra specs

    async def extra_specs(self, session: AsyncSession, caller: Any, type_id: str) -> dict[str, Any]:
        row = await self._row(session, caller, type_id)
        return (await self._specs(session, [row.id]))[row.id]

    async def _check_update(self, session: AsyncSession, type_id: str) -> None:
        if await self._in_use(session, type_id):
            raise BadRequest("Volume Type is currently in use.")

    async def set_extra_specs(self, session: AsyncSession, caller: Any, type_id: str,
                              specs: dict[str, Any]) -> dict[str, Any]:
        """Create or update keys (400 while a volume of the type exists, as Cinder)."""
        row = await self._row(session, caller, type_id)
        await self._check_update(session, row.id)
        current = (await self._specs(session, [row.id]))[row.id]
        merged = {**current, **specs}
        if merged.get("multiattach") == "<is> True" and merged.get("cacheable") == "<is> True" and (
                "multiattach" in specs or "cacheable" in specs):
            raise BadRequest("cacheable cannot be set with multiattach.")
        for key, value in specs.items():
            spec = await session.get(m.VolumeTypeExtraSpec, (row.id, key))
            if spec is None:
                session.add(m.VolumeTypeExtraSpec(volume_type_id=row.id, key=key, value=value))
            else:
                spec.value = value
        row.updated_at = now()
        await session.flush()
        return specs

    async def delete_extra_spec(self, session: AsyncSession, caller: Any, type_id: str, key: str) -> None:
        row = await self._row(session, caller, type_id)
        await self._check_update(session, row.id)
        spec = await session.get(m.VolumeTypeExtraSpec, (row.id, key))
        if spec is None:
            raise NotFound(f"Volume Type {row.id} has no extra specs with key {key}.")
        await session.delete(spec)
        row.updated_at = now()
        await session.flush()

    # ------------------------------------------------------------------ access

    async def access_list(self, session: AsyncSession, caller: Any, type_id: str) -> list[str]:
        row = await self._row(session, caller, type_id)
        if row.is_public:
            raise NotFound("Access list not available for public volume types.")
        rows = await session.execute(sa.select(m.VolumeTypeProject.project_id).where(
            m.VolumeTypeProject.volume_type_id == row.id).order_by(m.VolumeTypeProject.project_id))
        return list(rows.scalars())

    async def add_access(self, session: AsyncSession, caller: Any, type_id: str, project_id: str) -> None:
        row = await self._row(session, caller, type_id)
        if row.is_public:
            raise BadRequest("Invalid volume type: Type access modification is not applicable to public volume "
                             "type.")
        if await session.get(m.VolumeTypeProject, (row.id, project_id)) is not None:
            raise Conflict(f"Volume type access for {row.id} / {project_id} combination already exists.")
        session.add(m.VolumeTypeProject(volume_type_id=row.id, project_id=project_id))
        await session.flush()

    async def remove_access(self, session: AsyncSession, caller: Any, type_id: str, project_id: str) -> None:
        row = await self._row(session, caller, type_id)
        if row.is_public:
            raise BadRequest("Invalid volume type: Type access modification is not applicable to public volume "
                             "type.")
        access = await session.get(m.VolumeTypeProject, (row.id, project_id))
        if access is None:
            raise NotFound(f"Volume type access not found for {row.id} / {project_id} combination.")
        await session.delete(access)
        await session.flush()

    # ------------------------------------------------------------------ default types (3.62)

    async def set_default(self, session: AsyncSession, caller: Any, project_id: str, type_name_or_id: str,
                          ) -> m.DefaultType:
        row = await self._find(session, caller, type_name_or_id)
        if row is None:
            raise NotFound(f"Volume type {type_name_or_id} could not be found.")
        default = await session.get(m.DefaultType, project_id)
        if default is None:
            default = m.DefaultType(project_id=project_id, volume_type_id=row.id)
            session.add(default)
        else:
            default.volume_type_id = row.id
        await session.flush()
        return default

    async def get_default(self, session: AsyncSession, project_id: str) -> m.DefaultType:
        default = await session.get(m.DefaultType, project_id)
        if default is None:
            raise NotFound(f"Default type for project {project_id} not found.")
        return default

    async def list_defaults(self, session: AsyncSession) -> list[m.DefaultType]:
        return list((await session.execute(sa.select(m.DefaultType).order_by(m.DefaultType.project_id))).scalars())

    async def unset_default(self, session: AsyncSession, project_id: str) -> None:
        default = await session.get(m.DefaultType, project_id)
        if default is not None:
            await session.delete(default)
            await session.flush()

    # ------------------------------------------------------------------ QoS specs

    @staticmethod
    def _qos_view(row: m.QosSpecs) -> QosView:
        return QosView(id=row.id, name=row.name, consumer=row.consumer, specs=dict(row.specs or {}),
                       created_at=row.created_at)

    async def _qos_row(self, session: AsyncSession, qos_id: str) -> m.QosSpecs:
        row = await session.get(m.QosSpecs, qos_id)
        if row is None:
            raise NotFound(f"No such QoS spec {qos_id}.")
        return row

    @staticmethod
    def _consumer(value: Any) -> str:
        if value not in QOS_CONSUMERS:
            raise BadRequest(f"Invalid qos specs: Valid consumer of QoS specs are: {list(QOS_CONSUMERS)}")
        return str(value)

    async def list_qos(self, session: AsyncSession, *, filters: dict[str, Any] | None = None,
                       sort: list[tuple[str, str]] | None = None, limit: int | None = None,
                       marker: str | None = None, offset: int = 0) -> list[QosView]:
        q = m.QosSpecs
        query = sa.select(q)
        for key, value in (filters or {}).items():
            if key in ("id", "name", "consumer"):
                query = query.where(getattr(q, key) == value)
        rows = await listing(session, query, q, ("id", "name", "consumer", "created_at"), sort, limit, marker, offset)
        return [self._qos_view(r) for r in rows]

    async def show_qos(self, session: AsyncSession, qos_id: str) -> QosView:
        return self._qos_view(await self._qos_row(session, qos_id))

    async def create_qos(self, session: AsyncSession, name: str, specs: dict[str, Any]) -> QosView:
        name = name.strip()
        specs = dict(specs)
        consumer = self._consumer(specs.pop("consumer")) if "consumer" in specs else "back-end"
        for key, value in specs.items():
            if not isinstance(value, str) or not 0 <= len(value) <= 255 or not 1 <= len(key) <= 255:
                raise BadRequest(f"Invalid qos specs: Value for key {key} must be a string of at most 255 "
                                 f"characters.")
        if (await session.execute(sa.select(m.QosSpecs.id).where(m.QosSpecs.name == name))).scalar():
            raise Conflict(f"QoS Specs {name} already exists.")
        row = m.QosSpecs(id=str(uuid.uuid4()), name=name, consumer=consumer, specs=specs, created_at=now())
        session.add(row)
        await session.flush()
        return self._qos_view(row)

    async def update_qos(self, session: AsyncSession, qos_id: str, specs: dict[str, Any]) -> dict[str, Any]:
        row = await self._qos_row(session, qos_id)
        values = dict(specs)
        if "consumer" in values:
            row.consumer = self._consumer(values.pop("consumer"))
        row.specs = {**(row.specs or {}), **values}
        await session.flush()
        return specs

    async def delete_qos_keys(self, session: AsyncSession, qos_id: str, keys: list[str]) -> None:
        row = await self._qos_row(session, qos_id)
        specs = dict(row.specs or {})
        for key in keys:
            if key not in specs:
                raise NotFound(f"QoS spec {qos_id} has no spec with key {key}.")
            del specs[key]
        row.specs = specs
        await session.flush()

    async def qos_associations(self, session: AsyncSession, qos_id: str) -> list[dict[str, str]]:
        await self._qos_row(session, qos_id)
        rows = await session.execute(sa.select(m.VolumeType).where(
            m.VolumeType.qos_specs_id == qos_id).order_by(m.VolumeType.name))
        return [{"association_type": "volume_type", "name": r.name, "id": r.id} for r in rows.scalars()]

    async def delete_qos(self, session: AsyncSession, qos_id: str, force: bool = False) -> None:
        row = await self._qos_row(session, qos_id)
        if await self.qos_associations(session, qos_id):
            if not force:
                raise BadRequest("Qos specs still in use.")
            await self.disassociate_all(session, qos_id)
        await session.delete(row)
        await session.flush()

    async def associate(self, session: AsyncSession, qos_id: str, type_id: str | None) -> None:
        await self._qos_row(session, qos_id)
        vtype = await self._type_for_qos(session, type_id)
        if vtype.qos_specs_id and vtype.qos_specs_id != qos_id:
            raise BadRequest(f"Invalid volume type: Type {vtype.id} is already associated with another qos specs: "
                             f"{vtype.qos_specs_id}")
        vtype.qos_specs_id = qos_id
        await session.flush()

    async def disassociate(self, session: AsyncSession, qos_id: str, type_id: str | None) -> None:
        await self._qos_row(session, qos_id)
        vtype = await self._type_for_qos(session, type_id)
        if vtype.qos_specs_id == qos_id:
            vtype.qos_specs_id = None
            await session.flush()

    async def disassociate_all(self, session: AsyncSession, qos_id: str) -> None:
        await self._qos_row(session, qos_id)
        await session.execute(sa.update(m.VolumeType).where(m.VolumeType.qos_specs_id == qos_id).values(
            qos_specs_id=None))

    async def _type_for_qos(self, session: AsyncSession, type_id: str | None) -> m.VolumeType:
        if not type_id:
            raise BadRequest("Volume Type id must not be None.")
        vtype = await session.get(m.VolumeType, type_id)
        if vtype is None:
            raise NotFound(f"Volume type {type_id} could not be found.")
        return vtype

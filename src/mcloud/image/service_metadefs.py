"""Metadata definitions (Glance's metadefs catalog): namespaces and their objects, properties,
tags and resource type associations. Namespaces are tables; their items are JSON bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.core.errors import BadRequest, Conflict, Forbidden, NotFound
from mcloud.image import models as m

#: the resource types Glance loads with its metadefs (glance-manage db_load_metadefs)
RESOURCE_TYPES = ("OS::Glance::Image", "OS::Cinder::Volume", "OS::Nova::Flavor", "OS::Nova::Aggregate",
                  "OS::Nova::Server", "OS::Trove::Instance", "OS::Glance::Metadef")
KINDS = {"object": "object", "property": "property", "tag": "tag", "resource_type": "resource type association"}
NAMESPACE_FIELDS = ("namespace", "display_name", "description", "visibility", "protected", "owner")
VISIBILITIES = ("public", "private")


def utcnow() -> datetime:
    return datetime.utcnow()


def _visible(project_id: str | None, is_admin: bool) -> sa.ColumnElement[bool]:
    if is_admin:
        return sa.true()
    return sa.or_(m.MetadefNamespace.visibility == "public", m.MetadefNamespace.owner == project_id)


async def get_namespace(session: AsyncSession, name: str, project_id: str | None, is_admin: bool) -> m.MetadefNamespace:
    row = (await session.execute(sa.select(m.MetadefNamespace).where(
        m.MetadefNamespace.namespace == name, _visible(project_id, is_admin)))).scalar()
    if row is None:
        raise NotFound(f"Metadata definition namespace={name} was not found.")
    return row


async def list_namespaces(session: AsyncSession, project_id: str | None, is_admin: bool, *,
                          visibility: str | None = None, resource_types: list[str] | None = None,
                          limit: int = 1000, marker: str | None = None) -> list[m.MetadefNamespace]:
    query = sa.select(m.MetadefNamespace).where(_visible(project_id, is_admin))
    if visibility:
        query = query.where(m.MetadefNamespace.visibility == visibility)
    if resource_types:
        query = query.where(m.MetadefNamespace.namespace.in_(sa.select(m.MetadefItem.namespace).where(
            m.MetadefItem.kind == "resource_type", m.MetadefItem.name.in_(resource_types))))
    if marker:
        query = query.where(m.MetadefNamespace.namespace > marker)
    query = query.order_by(m.MetadefNamespace.namespace).limit(limit)
    return list((await session.execute(query)).scalars())


def _check_namespace_fields(body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key in NAMESPACE_FIELDS:
        if key not in body:
            continue
        value = body[key]
        if key == "protected":
            if not isinstance(value, bool):
                raise BadRequest(f"Invalid input for field 'protected': {value!r} is not of type 'boolean'")
        elif key == "visibility":
            if value not in VISIBILITIES:
                raise BadRequest(f"Invalid input for field 'visibility': {value!r} is not one of {list(VISIBILITIES)}")
        elif value is not None and not isinstance(value, str):
            raise BadRequest(f"Invalid input for field '{key}': {value!r} is not of type 'string'")
        elif key in ("namespace", "display_name") and isinstance(value, str) and len(value) > 80:
            raise BadRequest(f"Invalid input for field '{key}': {value!r} is too long")
        fields[key] = value
    if creating and not fields.get("namespace"):
        raise BadRequest("Invalid input for field 'namespace': it is a required property.")
    return fields


async def create_namespace(session: AsyncSession, body: dict[str, Any], owner: str | None) -> m.MetadefNamespace:
    fields = _check_namespace_fields(body, creating=True)
    if await session.get(m.MetadefNamespace, fields["namespace"]) is not None:
        raise Conflict(f"A metadata definition namespace with name={fields['namespace']} already exists.")
    now = utcnow()
    ns = m.MetadefNamespace(owner=fields.pop("owner", None) or owner, created_at=now, updated_at=now, **fields)
    session.add(ns)
    await session.flush()
    for assoc in body.get("resource_type_associations") or []:
        await add_item(session, ns, "resource_type", _check_body(assoc, "resource_type"))
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise BadRequest("Invalid input for field 'properties': it must be an object")
    for name, prop in props.items():
        await add_item(session, ns, "property", {**_check_body(prop, "property", named=False), "name": name})
    for obj in body.get("objects") or []:
        await add_item(session, ns, "object", _check_body(obj, "object"))
    for tag in body.get("tags") or []:
        await add_item(session, ns, "tag", _check_body(tag, "tag"))
    return ns


async def update_namespace(session: AsyncSession, ns: m.MetadefNamespace, body: dict[str, Any]) -> m.MetadefNamespace:
    fields = _check_namespace_fields(body, creating=False)
    new_name = fields.pop("namespace", None)
    if new_name and new_name != ns.namespace:
        if await session.get(m.MetadefNamespace, new_name) is not None:
            raise Conflict(f"A metadata definition namespace with name={new_name} already exists.")
        old = ns.namespace
        await session.execute(sa.update(m.MetadefNamespace).where(m.MetadefNamespace.namespace == old)
                              .values(namespace=new_name))
        await session.execute(sa.update(m.MetadefItem).where(m.MetadefItem.namespace == old)
                              .values(namespace=new_name))
        session.expunge(ns)
        ns = await session.get(m.MetadefNamespace, new_name)  # type: ignore[assignment]
    for key, value in fields.items():
        setattr(ns, key, value)
    ns.updated_at = utcnow()
    await session.flush()
    return ns


async def delete_namespace(session: AsyncSession, ns: m.MetadefNamespace) -> None:
    if ns.protected:
        raise Forbidden(f"Namespace {ns.namespace} is protected and cannot be deleted.")
    await session.execute(sa.delete(m.MetadefItem).where(m.MetadefItem.namespace == ns.namespace))
    await session.delete(ns)


def _check_body(body: Any, kind: str, named: bool = True) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest(f"Invalid input for the {KINDS[kind]}: it must be a JSON object")
    if named:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise BadRequest(f"Invalid input for field 'name' of the {KINDS[kind]}: it is a required string.")
        if len(name) > 255:
            raise BadRequest(f"Invalid input for field 'name': {name!r} is too long")
    if kind == "property":
        for key in ("title", "type"):
            if key in body and not isinstance(body[key], str):
                raise BadRequest(f"Invalid input for field '{key}' of the property: it must be a string")
    return dict(body)


async def items(session: AsyncSession, ns: m.MetadefNamespace, kind: str) -> list[m.MetadefItem]:
    rows = await session.execute(sa.select(m.MetadefItem).where(m.MetadefItem.namespace == ns.namespace,
                                                                m.MetadefItem.kind == kind)
                                 .order_by(m.MetadefItem.created_at, m.MetadefItem.name))
    return list(rows.scalars())


async def get_item(session: AsyncSession, ns: m.MetadefNamespace, kind: str, name: str) -> m.MetadefItem:
    item = await session.get(m.MetadefItem, (ns.namespace, kind, name))
    if item is None:
        what = {"object": "Metadata definition object", "property": "Metadata definition property",
                "tag": "Metadata definition tag",
                "resource_type": "Metadata definition resource-type-association"}[kind]
        raise NotFound(f"{what} not found for namespace={ns.namespace}: name={name}")
    return item


async def add_item(session: AsyncSession, ns: m.MetadefNamespace, kind: str, body: dict[str, Any]) -> m.MetadefItem:
    name = body["name"]
    if await session.get(m.MetadefItem, (ns.namespace, kind, name)) is not None:
        raise Conflict(f"A metadata definition {KINDS[kind]} with name={name} already exists in "
                       f"namespace={ns.namespace}.")
    now = utcnow()
    item = m.MetadefItem(namespace=ns.namespace, kind=kind, name=name, body=body, created_at=now, updated_at=now)
    session.add(item)
    ns.updated_at = now
    await session.flush()
    return item


async def update_item(session: AsyncSession, ns: m.MetadefNamespace, kind: str, name: str,
                      body: dict[str, Any]) -> m.MetadefItem:
    item = await get_item(session, ns, kind, name)
    new_name = body.get("name", name)
    if new_name != name:
        if await session.get(m.MetadefItem, (ns.namespace, kind, new_name)) is not None:
            raise Conflict(f"A metadata definition {KINDS[kind]} with name={new_name} already exists in "
                           f"namespace={ns.namespace}.")
        created = item.created_at
        await session.delete(item)
        await session.flush()
        item = m.MetadefItem(namespace=ns.namespace, kind=kind, name=new_name, created_at=created)
        session.add(item)
    merged = dict(body) if kind != "tag" else {"name": new_name}
    merged["name"] = new_name
    item.body = merged
    item.updated_at = utcnow()
    await session.flush()
    return item


async def delete_item(session: AsyncSession, ns: m.MetadefNamespace, kind: str, name: str) -> None:
    item = await get_item(session, ns, kind, name)
    await session.delete(item)


async def delete_items(session: AsyncSession, ns: m.MetadefNamespace, kind: str) -> None:
    await session.execute(sa.delete(m.MetadefItem).where(m.MetadefItem.namespace == ns.namespace,
                                                         m.MetadefItem.kind == kind))


async def resource_types(session: AsyncSession) -> list[str]:
    used = (await session.execute(sa.select(m.MetadefItem.name).where(m.MetadefItem.kind == "resource_type")
                                  .distinct())).scalars()
    return list(dict.fromkeys([*RESOURCE_TYPES, *used]))

"""Cinder's routes for generic volume groups: group types and their specs (3.11), groups (3.13;
create from a source 3.14, reset status 3.20, replication actions 3.38) and group snapshots
(3.14; reset status 3.19). Thin: check the body, call the groups part (service_groups.py),
render Cinder's views (cinder/api/v3/views/{groups,group_snapshots,group_types}.py)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from mcloud.core.errors import BadRequest, NotFound
from mcloud.volume import schemas as s
from mcloud.volume.api import V3, body_of, caller_of, query, respond, volume_of
from mcloud.volume.api_types import collection_links, list_params
from mcloud.volume.models_groups import Group, GroupSnapshot
from mcloud.volume.service import Caller
from mcloud.volume.service_groups import GroupTypeView, groups_of, members, volume_type_ids
from mcloud.volume.views import timestamp

NAME = {"type": "string", "minLength": 1, "maxLength": 255}
NAME_OR_EMPTY = {"type": ["string", "null"], "minLength": 0, "maxLength": 255}
SPEC_KEY = "^[a-zA-Z0-9-_:. /]{1,255}$"
GROUP_SPECS = {"type": ["object", "null"], "patternProperties": {SPEC_KEY: {"type": ["string", "null"],
                                                                            "maxLength": 255}},
               "additionalProperties": False}
GROUP_TYPE_CREATE = {"type": "object", "properties": {"group_type": {"type": "object", "properties": {
    "name": NAME, "description": s.DESCRIPTION, "is_public": s.BOOLEAN, "group_specs": GROUP_SPECS},
    "required": ["name"], "additionalProperties": False}}, "required": ["group_type"], "additionalProperties": False}
GROUP_TYPE_UPDATE = {"type": "object", "properties": {"group_type": {"type": "object", "properties": {
    "name": NAME_OR_EMPTY, "description": s.DESCRIPTION, "is_public": s.BOOLEAN}, "additionalProperties": False}},
    "required": ["group_type"], "additionalProperties": False}
SPECS_CREATE = {"type": "object", "properties": {"group_specs": {**GROUP_SPECS, "type": "object"}},
                "required": ["group_specs"], "additionalProperties": False}
SPEC_UPDATE = {"type": "object", "minProperties": 1, "maxProperties": 1, "patternProperties": {
    SPEC_KEY: {"type": ["string", "null"], "maxLength": 255}}, "additionalProperties": False}
GROUP_CREATE = {"type": "object", "properties": {"group": {"type": "object", "properties": {
    "description": s.DESCRIPTION, "group_type": {"type": "string", "minLength": 1, "maxLength": 255},
    "name": NAME_OR_EMPTY,
    "volume_types": {"type": "array", "minItems": 1, "uniqueItems": True,
                     "items": {"type": "string", "maxLength": 255}},
    "availability_zone": {"type": ["string", "null"], "maxLength": 255}},
    "required": ["group_type", "volume_types"], "additionalProperties": False}},
    "required": ["group"], "additionalProperties": False}
GROUP_FROM_SRC = {"type": "object", "properties": {"create-from-src": {"type": "object", "properties": {
    "description": s.DESCRIPTION, "name": NAME_OR_EMPTY, "source_group_id": s.UUID, "group_snapshot_id": s.UUID},
    "oneOf": [{"required": ["group_snapshot_id"]}, {"required": ["source_group_id"]}],
    "additionalProperties": False}}, "required": ["create-from-src"], "additionalProperties": False}
GROUP_UPDATE = {"type": "object", "properties": {"group": {"type": "object", "properties": {
    "description": s.DESCRIPTION, "name": NAME_OR_EMPTY, "add_volumes": s.DESCRIPTION,
    "remove_volumes": s.DESCRIPTION},
    "anyOf": [{"required": ["name"]}, {"required": ["description"]}, {"required": ["add_volumes"]},
              {"required": ["remove_volumes"]}], "additionalProperties": False}},
    "required": ["group"], "additionalProperties": False}
GROUP_SNAPSHOT_CREATE = {"type": "object", "properties": {"group_snapshot": {"type": "object", "properties": {
    "description": s.DESCRIPTION, "name": NAME_OR_EMPTY, "group_id": s.UUID},
    "required": ["group_id"], "additionalProperties": False}}, "required": ["group_snapshot"],
    "additionalProperties": False}
RESET_STATUS = s.action("reset_status", {"status": {"type": "string"}}, ("status",))
GROUP_DELETE = s.action("delete", {"delete-volumes": s.BOOLEAN})
REPLICATION_ACTIONS = ("enable_replication", "disable_replication", "failover_replication",
                       "list_replication_targets")


def _strip(value: str | None) -> str | None:
    return value.strip() if value else value


# ---------------------------------------------------------------------- views


def group_type_view(caller: Caller, gtype: GroupTypeView) -> dict[str, Any]:
    out: dict[str, Any] = {"id": gtype.id, "name": gtype.name, "description": gtype.description,
                           "is_public": gtype.is_public}
    if caller.can("group:access_group_types_specs"):
        out["group_specs"] = dict(gtype.group_specs)
    return out


async def group_view(session: AsyncSession, caller: Caller, row: Group, *, list_volume: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id, "status": row.status, "availability_zone": row.availability_zone,
        "created_at": timestamp(row.created_at), "name": row.name, "description": row.description,
        "group_type": row.group_type_id, "volume_types": await volume_type_ids(session, row.id)}
    if caller.at(3, 14):
        out["group_snapshot_id"] = row.group_snapshot_id
        out["source_group_id"] = row.source_group_id
    if caller.at(3, 25) and list_volume:
        out["volumes"] = [v.id for v in await members(session, row.id)]
    if caller.at(3, 38):
        out["replication_status"] = row.replication_status
    if caller.at(3, 58) and caller.can("group:group_project_attribute"):
        out["project_id"] = row.project_id
    return out


def group_snapshot_summary(row: GroupSnapshot) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "group_type_id": row.group_type_id}


def group_snapshot_view(caller: Caller, row: GroupSnapshot) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row.id, "group_id": row.group_id, "group_type_id": row.group_type_id,
                           "status": row.status, "created_at": timestamp(row.created_at), "name": row.name,
                           "description": row.description}
    if caller.at(3, 58) and caller.can("group:group_snapshot_project_attribute"):
        out["project_id"] = row.project_id
    return out


def _list_volume(request: Request) -> bool:
    value = request.query_params.get("list_volume")
    return value is not None and s.as_bool(value, "list_volume")


# ---------------------------------------------------------------------- group types


def _is_public_filter(value: str | None) -> bool | None:
    if value is None:
        return True
    if value.lower() == "none":
        return None
    try:
        return s.as_bool(value, "is_public")
    except BadRequest:
        raise BadRequest(f"Invalid is_public filter [{value}]") from None


async def list_group_types(request: Request) -> Response:
    caller = await caller_of(request, since=(3, 11))
    params = query(request)
    sort, limit, marker, offset = list_params(params)
    is_public = _is_public_filter(request.query_params.get("is_public")) if caller.is_admin else True
    volume = volume_of(request)
    async with volume.db.read() as session:
        types = await groups_of(volume).list_group_types(session, caller, is_public=is_public, sort=sort,
                                                         limit=limit, marker=marker, offset=offset)
    body: dict[str, Any] = {"group_types": [group_type_view(caller, t) for t in types]}
    more = collection_links(request, "group_types", types, limit)
    if more:
        body["group_type_links"] = more
    return respond(body)


async def show_group_type(request: Request, type_id: str) -> Response:
    caller = await caller_of(request, since=(3, 11))
    volume = volume_of(request)
    async with volume.db.read() as session:
        if type_id == "default":
            gtype = await groups_of(volume).default_group_type(session)
        else:
            gtype = await groups_of(volume).group_type(session, caller, type_id)
    return respond({"group_type": group_type_view(caller, gtype)})


async def create_group_type(request: Request) -> Response:
    caller = await caller_of(request, "group:group_types:create", since=(3, 11))
    body = (await body_of(request, GROUP_TYPE_CREATE))["group_type"]
    if not body["name"].strip():
        raise BadRequest("Invalid input received: Name cannot be empty or only spaces.")
    volume = volume_of(request)
    async with volume.db.write() as session:
        gtype = await groups_of(volume).create_group_type(
            session, name=body["name"], description=body.get("description"),
            is_public=s.as_bool(body.get("is_public", True), "is_public"), group_specs=body.get("group_specs"))
    return respond({"group_type": group_type_view(caller, gtype)}, status=202)


async def update_group_type(request: Request, type_id: str) -> Response:
    caller = await caller_of(request, "group:group_types:update", since=(3, 11))
    body = (await body_of(request, GROUP_TYPE_UPDATE))["group_type"]
    name, description, is_public = body.get("name"), body.get("description"), body.get("is_public")
    if name is not None and not name.strip():
        raise BadRequest("Group type name can not be empty.")
    if name is None and description is None and is_public is None:
        raise BadRequest("Specify group type name, description or a combination thereof.")
    volume = volume_of(request)
    async with volume.db.write() as session:
        gtype = await groups_of(volume).update_group_type(
            session, caller, type_id, name=name, description=description,
            is_public=None if is_public is None else s.as_bool(is_public, "is_public"))
    return respond({"group_type": group_type_view(caller, gtype)})


async def delete_group_type(request: Request, type_id: str) -> Response:
    caller = await caller_of(request, "group:group_types:delete", since=(3, 11))
    volume = volume_of(request)
    async with volume.db.write() as session:
        await groups_of(volume).delete_group_type(session, caller, type_id)
    return Response(status_code=202)


async def list_group_specs(request: Request, type_id: str) -> Response:
    caller = await caller_of(request, "group:group_types_specs:get_all", since=(3, 11))
    volume = volume_of(request)
    async with volume.db.read() as session:
        gtype = await groups_of(volume).group_type(session, caller, type_id)
    return respond({"group_specs": gtype.group_specs})


async def create_group_specs(request: Request, type_id: str) -> Response:
    caller = await caller_of(request, "group:group_types_specs:create", since=(3, 11))
    body = await body_of(request, SPECS_CREATE)
    volume = volume_of(request)
    async with volume.db.write() as session:
        await groups_of(volume).set_group_specs(session, caller, type_id, body["group_specs"])
    return respond(body, status=202)


async def show_group_spec(request: Request, type_id: str, key: str) -> Response:
    caller = await caller_of(request, "group:group_types_specs:get", since=(3, 11))
    volume = volume_of(request)
    async with volume.db.read() as session:
        gtype = await groups_of(volume).group_type(session, caller, type_id)
    if key not in gtype.group_specs:
        raise NotFound(f"Group Type {type_id} has no extra spec with key {key}.")
    return respond({key: gtype.group_specs[key]})


async def update_group_spec(request: Request, type_id: str, key: str) -> Response:
    caller = await caller_of(request, "group:group_types_specs:update", since=(3, 11))
    body = await body_of(request)
    volume = volume_of(request)
    async with volume.db.read() as session:
        await groups_of(volume).group_type(session, caller, type_id)
    if not isinstance(body, dict) or key not in body:
        raise BadRequest("Request body and URI mismatch")
    from mcloud.core.validation import validate  # noqa: PLC0415

    validate(body, SPEC_UPDATE)
    async with volume.db.write() as session:
        await groups_of(volume).set_group_specs(session, caller, type_id, body)
    return respond(body)


async def delete_group_spec(request: Request, type_id: str, key: str) -> Response:
    caller = await caller_of(request, "group:group_types_specs:delete", since=(3, 11))
    volume = volume_of(request)
    async with volume.db.write() as session:
        await groups_of(volume).delete_group_spec(session, caller, type_id, key)
    return Response(status_code=202)


# ---------------------------------------------------------------------- groups


async def _listed(request: Request, collection: str, since: tuple[int, int], detail: bool) -> Response:
    """GET /groups[/detail] and /group_snapshots[/detail]: one page, Cinder's next link."""
    caller = await caller_of(request, since=since)
    params = query(request)
    sort, limit, marker, offset = list_params(params)
    volume = volume_of(request)
    groups = groups_of(volume)
    async with volume.db.read() as session:
        if collection == "groups":
            rows: list[Any] = await groups.list(session, caller, params, sort=sort, limit=limit, marker=marker,
                                                offset=offset)
            items = ([await group_view(session, caller, r, list_volume=_list_volume(request)) for r in rows]
                     if detail else [{"id": r.id, "name": r.name} for r in rows])
        else:
            rows = await groups.list_snapshots(session, caller, params, sort=sort, limit=limit, marker=marker,
                                               offset=offset)
            items = [group_snapshot_view(caller, r) if detail else group_snapshot_summary(r) for r in rows]
    body: dict[str, Any] = {collection: items}
    more = collection_links(request, collection, rows, limit)
    if more:
        body[collection[:-1] + "_links"] = more
    return respond(body)


async def list_groups(request: Request) -> Response:
    return await _listed(request, "groups", (3, 13), False)


async def list_groups_detail(request: Request) -> Response:
    return await _listed(request, "groups", (3, 13), True)


async def create_group(request: Request) -> Response:
    caller = await caller_of(request, since=(3, 13))
    body = (await body_of(request, GROUP_CREATE))["group"]
    row = await groups_of(volume_of(request)).create(
        caller, group_type=body["group_type"], volume_types=body["volume_types"], name=_strip(body.get("name")),
        description=_strip(body.get("description")), availability_zone=body.get("availability_zone"))
    return respond({"group": {"id": row.id, "name": row.name}}, status=202)


async def show_group(request: Request, group_id: str) -> Response:
    caller = await caller_of(request, since=(3, 13))
    volume = volume_of(request)
    async with volume.db.read() as session:
        row = await groups_of(volume).get(session, caller, group_id)
        return respond({"group": await group_view(session, caller, row, list_volume=_list_volume(request))})


async def update_group(request: Request, group_id: str) -> Response:
    caller = await caller_of(request, since=(3, 13))
    body = (await body_of(request, GROUP_UPDATE))["group"]
    await groups_of(volume_of(request)).update(
        caller, group_id, name=_strip(body.get("name")), description=_strip(body.get("description")),
        add_volumes=body.get("add_volumes"), remove_volumes=body.get("remove_volumes"))
    return Response(status_code=202)


async def group_action(request: Request, group_id: str) -> Response:
    caller = await caller_of(request, since=(3, 13))
    body = await body_of(request)
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid request body: one action expected.")
    name = next(iter(body))
    groups = groups_of(volume_of(request))
    if name == "delete":
        _validate(body, GROUP_DELETE)
        delete_volumes = s.as_bool((body["delete"] or {}).get("delete-volumes", False), "delete-volumes")
        await groups.delete(caller, group_id, delete_volumes=delete_volumes)
        return Response(status_code=202)
    if name == "reset_status" and caller.at(3, 20):
        _validate(body, RESET_STATUS)
        await groups.reset_status(caller, group_id, body["reset_status"]["status"])
        return Response(status_code=202)
    if name in REPLICATION_ACTIONS and caller.at(3, 38):
        await groups.replication(caller, group_id, name)
    raise BadRequest(f"There is no such action: {name}")


def _validate(body: Any, schema: dict[str, Any]) -> None:
    from mcloud.core.validation import validate  # noqa: PLC0415

    validate(body, schema)


async def create_group_from_src(request: Request) -> Response:
    caller = await caller_of(request, since=(3, 14))
    body = await body_of(request)
    if not isinstance(body, dict) or "create-from-src" not in body:
        raise BadRequest("There is no such action: " + (next(iter(body), "") if isinstance(body, dict) else ""))
    _validate(body, GROUP_FROM_SRC)
    src = body["create-from-src"]
    row = await groups_of(volume_of(request)).create_from_src(
        caller, name=_strip(src.get("name")), description=_strip(src.get("description")),
        group_snapshot_id=src.get("group_snapshot_id"), source_group_id=src.get("source_group_id"))
    return respond({"group": {"id": row.id, "name": row.name}}, status=202)


# ---------------------------------------------------------------------- group snapshots


async def list_group_snapshots(request: Request) -> Response:
    return await _listed(request, "group_snapshots", (3, 14), False)


async def list_group_snapshots_detail(request: Request) -> Response:
    return await _listed(request, "group_snapshots", (3, 14), True)


async def create_group_snapshot(request: Request) -> Response:
    caller = await caller_of(request, since=(3, 14))
    body = (await body_of(request, GROUP_SNAPSHOT_CREATE))["group_snapshot"]
    row = await groups_of(volume_of(request)).create_snapshot(
        caller, body["group_id"], name=_strip(body.get("name")), description=_strip(body.get("description")))
    return respond({"group_snapshot": group_snapshot_summary(row)}, status=202)


async def show_group_snapshot(request: Request, group_snapshot_id: str) -> Response:
    caller = await caller_of(request, since=(3, 14))
    volume = volume_of(request)
    async with volume.db.read() as session:
        row = await groups_of(volume).get_snapshot(session, caller, group_snapshot_id)
    return respond({"group_snapshot": group_snapshot_view(caller, row)})


async def delete_group_snapshot(request: Request, group_snapshot_id: str) -> Response:
    caller = await caller_of(request, since=(3, 14))
    await groups_of(volume_of(request)).delete_snapshot(caller, group_snapshot_id)
    return Response(status_code=202)


async def group_snapshot_action(request: Request, group_snapshot_id: str) -> Response:
    caller = await caller_of(request, since=(3, 19))
    body = await body_of(request)
    if not isinstance(body, dict) or "reset_status" not in body:
        raise BadRequest("There is no such action: " + (next(iter(body), "") if isinstance(body, dict) else ""))
    _validate(body, RESET_STATUS)
    await groups_of(volume_of(request)).reset_snapshot_status(caller, group_snapshot_id,
                                                              body["reset_status"]["status"])
    return Response(status_code=202)


# ---------------------------------------------------------------------- routes


def add_routes(app: FastAPI) -> None:
    r = app.add_api_route
    r(V3 + "/group_types", list_group_types, methods=["GET"])
    r(V3 + "/group_types", create_group_type, methods=["POST"])
    r(V3 + "/group_types/{type_id}", show_group_type, methods=["GET"])
    r(V3 + "/group_types/{type_id}", update_group_type, methods=["PUT"])
    r(V3 + "/group_types/{type_id}", delete_group_type, methods=["DELETE"])
    r(V3 + "/group_types/{type_id}/group_specs", list_group_specs, methods=["GET"])
    r(V3 + "/group_types/{type_id}/group_specs", create_group_specs, methods=["POST"])
    r(V3 + "/group_types/{type_id}/group_specs/{key}", show_group_spec, methods=["GET"])
    r(V3 + "/group_types/{type_id}/group_specs/{key}", update_group_spec, methods=["PUT"])
    r(V3 + "/group_types/{type_id}/group_specs/{key}", delete_group_spec, methods=["DELETE"])
    r(V3 + "/groups", list_groups, methods=["GET"])
    r(V3 + "/groups", create_group, methods=["POST"])
    r(V3 + "/groups/detail", list_groups_detail, methods=["GET"])
    r(V3 + "/groups/action", create_group_from_src, methods=["POST"])
    r(V3 + "/groups/{group_id}", show_group, methods=["GET"])
    r(V3 + "/groups/{group_id}", update_group, methods=["PUT"])
    r(V3 + "/groups/{group_id}/action", group_action, methods=["POST"])
    r(V3 + "/group_snapshots", list_group_snapshots, methods=["GET"])
    r(V3 + "/group_snapshots", create_group_snapshot, methods=["POST"])
    r(V3 + "/group_snapshots/detail", list_group_snapshots_detail, methods=["GET"])
    r(V3 + "/group_snapshots/{group_snapshot_id}", show_group_snapshot, methods=["GET"])
    r(V3 + "/group_snapshots/{group_snapshot_id}", delete_group_snapshot, methods=["DELETE"])
    r(V3 + "/group_snapshots/{group_snapshot_id}/action", group_snapshot_action, methods=["POST"])

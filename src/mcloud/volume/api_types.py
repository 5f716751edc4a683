"""Cinder's routes for volume types (with extra specs, access and ``types/default``), project
default types (3.62) and QoS specs. Thin: check the body, call ``volume.types``, render Cinder's
views (cinder/api/v3/views/types.py, api/views/qos_specs.py)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.core.errors import BadRequest
from mcloud.volume import schemas as s
from mcloud.volume.api import V3, api_url, body_of, caller_of, links, query, respond, volume_of
from mcloud.volume.service import Caller
from mcloud.volume.service_types import USER_VISIBLE_EXTRA_SPECS, QosView, TypeView

EXTRA_SPECS = {"type": "object", "patternProperties": {"^[a-zA-Z0-9-_:. /]{1,255}$": {
    "type": ["string", "null"], "maxLength": 255}}, "additionalProperties": False}
TYPE_CREATE = {"type": "object", "properties": {"volume_type": {"type": "object", "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 255}, "description": s.DESCRIPTION,
    "extra_specs": EXTRA_SPECS, "os-volume-type-access:is_public": s.BOOLEAN},
    "required": ["name"], "additionalProperties": False}}, "required": ["volume_type"], "additionalProperties": False}
TYPE_UPDATE = {"type": "object", "properties": {"volume_type": {"type": "object", "properties": {
    "name": {"type": ["string", "null"], "minLength": 1, "maxLength": 255}, "description": s.DESCRIPTION,
    "is_public": s.BOOLEAN}, "additionalProperties": False}}, "required": ["volume_type"],
    "additionalProperties": False}
SPECS_CREATE = {"type": "object", "properties": {"extra_specs": {**EXTRA_SPECS, "patternProperties": {
    "^[a-zA-Z0-9-_:. /]{1,255}$": {"type": "string", "maxLength": 255}}}}, "required": ["extra_specs"],
    "additionalProperties": False}
SPEC_UPDATE = {"type": "object", "minProperties": 1, "maxProperties": 1, "patternProperties": {
    "^[a-zA-Z0-9-_:. /]{1,255}$": {"type": "string", "maxLength": 255}}, "additionalProperties": False}
PROJECT = {"type": "object", "properties": {"project": {"type": "string", "minLength": 1, "maxLength": 255}},
           "required": ["project"], "additionalProperties": False}
DEFAULT_TYPE = {"type": "object", "properties": {"default_type": {"type": "object", "properties": {
    "volume_type": {"type": "string", "minLength": 1, "maxLength": 255}}, "required": ["volume_type"],
    "additionalProperties": False}}, "required": ["default_type"], "additionalProperties": False}
QOS_CREATE = {"type": "object", "properties": {"qos_specs": {"type": "object", "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^\S(.*\S)?$"}},
    "required": ["name"], "additionalProperties": True}}, "required": ["qos_specs"], "additionalProperties": False}
QOS_SET = {"type": "object", "properties": {"qos_specs": EXTRA_SPECS}, "required": ["qos_specs"],
           "additionalProperties": False}
QOS_UNSET = {"type": "object", "properties": {"keys": {"type": "array", "items": {
    "type": "string", "minLength": 1, "maxLength": 255}, "uniqueItems": True}}, "required": ["keys"],
    "additionalProperties": False}


# ---------------------------------------------------------------------- list parameters


def list_params(params: dict[str, list[str]]) -> tuple[list[tuple[str, str]] | None, int | None, str | None, int]:
    """Cinder's get_sort_params and get_pagination_params: ``sort=k1:d1,k2`` or
    ``sort_key``/``sort_dir``; ``limit``, ``marker``, ``offset``."""
    sort: list[tuple[str, str]] | None = None
    if params.get("sort"):
        if params.get("sort_key") or params.get("sort_dir"):
            raise BadRequest("The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the "
                             "'sort' parameter.")
        sort = []
        for item in params["sort"][-1].split(","):
            key, _, direction = item.strip().partition(":")
            sort.append((key.strip(), (direction or "desc").strip().lower()))
    elif params.get("sort_key") or params.get("sort_dir"):
        direction = (params.get("sort_dir") or ["desc"])[-1].lower()
        sort = [((params.get("sort_key") or ["created_at"])[-1], direction)]
    for _, direction in sort or []:
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid input received: Unknown sort direction, must be 'desc' or 'asc'")
    marker = params["marker"][-1] if params.get("marker") else None
    return sort, s.int_param(params, "limit"), marker, s.int_param(params, "offset") or 0


def collection_links(request: Request, collection: str, items: list[Any], limit: int | None) -> list[dict[str, str]]:
    """A ``next`` link when the page is full (Cinder's _get_collection_links)."""
    if limit is None or not items or len(items) < limit:
        return []
    params = [(k, v) for k, vs in query(request).items() if k != "marker" for v in vs]
    params.append(("marker", items[-1].id))
    from urllib.parse import urlencode  # noqa: PLC0415

    return [{"rel": "next", "href": f"{api_url(request)}/{collection}?{urlencode(params)}"}]


# ---------------------------------------------------------------------- views


def type_view(caller: Caller, vtype: TypeView) -> dict[str, Any]:
    out: dict[str, Any] = {"id": vtype.id, "name": vtype.name, "is_public": vtype.is_public,
                           "description": vtype.description}
    if caller.can("volume_extension:access_types_extra_specs"):
        if caller.can("volume_extension:types_extra_specs:read_sensitive"):
            out["extra_specs"] = dict(vtype.extra_specs)
        else:
            out["extra_specs"] = {k: v for k, v in vtype.extra_specs.items() if k in USER_VISIBLE_EXTRA_SPECS}
    if caller.can("volume_extension:access_types_qos_specs_id"):
        out["qos_specs_id"] = vtype.qos_specs_id
    if caller.can("volume_extension:volume_type_access"):
        out["os-volume-type-access:is_public"] = vtype.is_public
    return out


def managed_type_view(caller: Caller, vtype: TypeView, *, created: bool) -> dict[str, Any]:
    """The create and update response (Cinder's types_manage view: every extra spec, no
    qos_specs_id; the access extension adds its is_public to the create response only)."""
    out: dict[str, Any] = {"id": vtype.id, "name": vtype.name, "is_public": vtype.is_public,
                           "extra_specs": dict(vtype.extra_specs), "description": vtype.description}
    if created and caller.can("volume_extension:volume_type_access"):
        out["os-volume-type-access:is_public"] = vtype.is_public
    return out


def qos_view(qos: QosView) -> dict[str, Any]:
    return {"id": qos.id, "name": qos.name, "consumer": qos.consumer, "specs": qos.specs}


def _bool_param(value: str | None, name: str) -> bool | None:
    if value is None or value.lower() == "none":
        return None
    if value.lower() in s.TRUE:
        return True
    if value.lower() in s.FALSE:
        return False
    raise BadRequest(f"Invalid is_public filter [{value}]")


# ---------------------------------------------------------------------- types


async def list_types(request: Request) -> Response:
    caller = await caller_of(request, "volume_extension:type_get_all")
    params = query(request)
    sort, limit, marker, offset = list_params(params)
    filters: dict[str, Any] = {}
    is_public: bool | None = True
    if caller.is_admin:
        is_public = _bool_param((params.get("is_public") or [None])[-1], "is_public") if "is_public" in params \
            else True
        for key in ("name", "description", "id"):
            if params.get(key):
                filters[key] = params[key][-1]
    if caller.at(3, 52) and params.get("extra_specs"):
        import ast  # noqa: PLC0415

        raw = params["extra_specs"][-1]
        try:
            specs = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            specs = None
        if not isinstance(specs, dict):
            raise BadRequest(f"Invalid input received: Invalid filter extra_specs {raw}")
        if not caller.can("volume_extension:types_extra_specs:read_sensitive") and any(
                k not in USER_VISIBLE_EXTRA_SPECS for k in specs):
            return respond({"volume_types": []})
        filters["extra_specs"] = specs
    volume = volume_of(request)
    async with volume.db.read() as session:
        types = await volume.types.list_types(session, caller, is_public=is_public, filters=filters, sort=sort,
                                              limit=limit, marker=marker, offset=offset)
    body: dict[str, Any] = {"volume_types": [type_view(caller, t) for t in types]}
    more = collection_links(request, "types", types, limit)
    if more:
        body["volume_type_links"] = more
    return respond(body)


async def show_type(request: Request, type_id: str) -> Response:
    caller = await caller_of(request)
    volume = volume_of(request)
    async with volume.db.read() as session:
        vtype = await volume.types.show_type(session, caller, type_id)
    caller.authorize("volume_extension:type_get")
    return respond({"volume_type": type_view(caller, vtype)})


async def create_type(request: Request) -> Response:
    caller = await caller_of(request, "volume_extension:type_create")
    body = (await body_of(request, TYPE_CREATE))["volume_type"]
    volume = volume_of(request)
    async with volume.db.write() as session:
        vtype = await volume.types.create_type(
            session, name=body["name"], description=body.get("description"),
            is_public=s.as_bool(body.get("os-volume-type-access:is_public", True)),
            extra_specs=body.get("extra_specs"))
    return respond({"volume_type": managed_type_view(caller, vtype, created=True)})


async def update_type(request: Request, type_id: str) -> Response:
    caller = await caller_of(request, "volume_extension:type_update")
    body = (await body_of(request, TYPE_UPDATE))["volume_type"]
    volume = volume_of(request)
    async with volume.db.write() as session:
        vtype = await volume.types.update_type(
            session, caller, type_id, name=body.get("name"), description=body.get("description"),
            description_given=body.get("description") is not None,
            is_public=s.as_bool(body["is_public"]) if body.get("is_public") is not None else None)
    return respond({"volume_type": managed_type_view(caller, vtype, created=False)})


async def delete_type(request: Request, type_id: str) -> Response:
    caller = await caller_of(request, "volume_extension:type_delete")
    volume = volume_of(request)
    async with volume.db.write() as session:
        await volume.types.delete_type(session, caller, type_id)
    return Response(status_code=202)


# ---------------------------------------------------------------------- extra specs


def _visible_specs(caller: Caller, specs: dict[str, Any]) -> dict[str, Any]:
    if caller.can("volume_extension:types_extra_specs:read_sensitive"):
        return specs
    return {k: v for k, v in specs.items() if k in USER_VISIBLE_EXTRA_SPECS}


async def list_specs(request: Request, type_id: str) -> Response:
    caller = await caller_of(request, "volume_extension:types_extra_specs:index")
    volume = volume_of(request)
    async with volume.db.read() as session:
        specs = await volume.types.extra_specs(session, caller, type_id)
    return respond({"extra_specs": _visible_specs(caller, specs)})


async def create_specs(request: Request, type_id: str) -> Response:
    caller = await caller_of(request, "volume_extension:types_extra_specs:create")
    body = await body_of(request, SPECS_CREATE)
    volume = volume_of(request)
    async with volume.db.write() as session:
        await volume.types.set_extra_specs(session, caller, type_id, body["extra_specs"])
    return respond(body)


async def show_spec(request: Request, type_id: str, key: str) -> Response:
    caller = await caller_of(request, "volume_extension:types_extra_specs:show")
    volume = volume_of(request)
    async with volume.db.read() as session:
        specs = _visible_specs(caller, await volume.types.extra_specs(session, caller, type_id))
    if key not in specs:
        from mcloud.core.errors import NotFound  # noqa: PLC0415

        raise NotFound(f"Volume Type {type_id} has no extra specs with key {key}.")
    return respond({key: specs[key]})


async def update_spec(request: Request, type_id: str, key: str) -> Response:
    caller = await caller_of(request, "volume_extension:types_extra_specs:update")
    body = await body_of(request)
    if not isinstance(body, dict) or key not in body:
        raise BadRequest("Request body and URI mismatch")
    if len(body) > 1:
        raise BadRequest("Request body contains too many items")
    await body_of(request, SPEC_UPDATE)
    volume = volume_of(request)
    async with volume.db.write() as session:
        await volume.types.set_extra_specs(session, caller, type_id, body)
    return respond(body)


async def delete_spec(request: Request, type_id: str, key: str) -> Response:
    caller = await caller_of(request, "volume_extension:types_extra_specs:delete")
    volume = volume_of(request)
    async with volume.db.write() as session:
        await volume.types.delete_extra_spec(session, caller, type_id, key)
    return Response(status_code=202)


# ---------------------------------------------------------------------- access


async def list_access(request: Request, type_id: str) -> Response:
    caller = await caller_of(request, "volume_extension:volume_type_access:get_all_for_type")
    volume = volume_of(request)
    async with volume.db.read() as session:
        projects = await volume.types.access_list(session, caller, type_id)
    return respond({"volume_type_access": [{"volume_type_id": type_id, "project_id": p} for p in projects]})


async def type_action(request: Request, type_id: str) -> Response:
    caller = await caller_of(request)
    body = await body_of(request)
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("There is no such action: None")
    name, args = next(iter(body.items()))
    if name not in ("addProjectAccess", "removeProjectAccess"):
        raise BadRequest(f"There is no such action: {name}")
    caller.authorize(f"volume_extension:volume_type_access:{name}")
    await body_of(request, {"type": "object", "properties": {name: PROJECT}, "required": [name],
                            "additionalProperties": False})
    volume = volume_of(request)
    async with volume.db.write() as session:
        if name == "addProjectAccess":
            await volume.types.add_access(session, caller, type_id, args["project"])
        else:
            await volume.types.remove_access(session, caller, type_id, args["project"])
    return Response(status_code=202)


# ---------------------------------------------------------------------- default types (3.62)


def _default_view(row: Any) -> dict[str, str]:
    return {"project_id": row.project_id, "volume_type_id": row.volume_type_id}


async def _project_exists(request: Request, project_id: str) -> None:
    identity = volume_of(request).identity
    if identity is None:
        return
    async with volume_of(request).db.read() as session:
        try:
            await identity.get_project(session, project_id)
        except Exception:  # noqa: BLE001 - identity's NotFound or any lookup failure
            from mcloud.core.errors import NotFound  # noqa: PLC0415

            raise NotFound(f"Project {project_id} could not be found.") from None


async def set_default_type(request: Request, project_id: str) -> Response:
    caller = await caller_of(request, "volume_extension:default_set_or_update", {"project_id": project_id},
                             since=(3, 62))
    body = (await body_of(request, DEFAULT_TYPE))["default_type"]
    await _project_exists(request, project_id)
    volume = volume_of(request)
    async with volume.db.write() as session:
        row = await volume.types.set_default(session, caller, project_id, body["volume_type"])
        view = _default_view(row)
    return respond({"default_type": view})


async def get_default_type(request: Request, project_id: str) -> Response:
    await caller_of(request, "volume_extension:default_get", {"project_id": project_id}, since=(3, 62))
    await _project_exists(request, project_id)
    volume = volume_of(request)
    async with volume.db.read() as session:
        view = _default_view(await volume.types.get_default(session, project_id))
    return respond({"default_type": view})


async def list_default_types(request: Request) -> Response:
    await caller_of(request, "volume_extension:default_get_all", since=(3, 62))
    volume = volume_of(request)
    async with volume.db.read() as session:
        rows = [_default_view(r) for r in await volume.types.list_defaults(session)]
    return respond({"default_types": rows})


async def unset_default_type(request: Request, project_id: str) -> Response:
    await caller_of(request, "volume_extension:default_unset", {"project_id": project_id}, since=(3, 62))
    await _project_exists(request, project_id)
    volume = volume_of(request)
    async with volume.db.write() as session:
        await volume.types.unset_default(session, project_id)
    return Response(status_code=204)


# ---------------------------------------------------------------------- QoS specs


async def list_qos(request: Request) -> Response:
    await caller_of(request, "volume_extension:qos_specs_manage:get_all")
    params = query(request)
    sort, limit, marker, offset = list_params(params)
    filters = {k: v[-1] for k, v in params.items() if k in ("id", "name", "consumer") and v}
    volume = volume_of(request)
    async with volume.db.read() as session:
        specs = await volume.types.list_qos(session, filters=filters, sort=sort, limit=limit, marker=marker,
                                            offset=offset)
    body: dict[str, Any] = {"qos_specs": [qos_view(q) for q in specs]}
    more = collection_links(request, "qos-specs", specs, limit)
    if more:
        body["qos_specs_links"] = more
    return respond(body)


async def show_qos(request: Request, qos_id: str) -> Response:
    await caller_of(request, "volume_extension:qos_specs_manage:get")
    volume = volume_of(request)
    async with volume.db.read() as session:
        qos = await volume.types.show_qos(session, qos_id)
    return respond({"qos_specs": qos_view(qos), "links": links(request, "qos-specs", qos.id)})


async def create_qos(request: Request) -> Response:
    await caller_of(request, "volume_extension:qos_specs_manage:create")
    specs = dict((await body_of(request, QOS_CREATE))["qos_specs"])
    name = specs.pop("name")
    volume = volume_of(request)
    async with volume.db.write() as session:
        qos = await volume.types.create_qos(session, name, specs)
    return respond({"qos_specs": qos_view(qos), "links": links(request, "qos-specs", qos.id)})


async def update_qos(request: Request, qos_id: str) -> Response:
    await caller_of(request, "volume_extension:qos_specs_manage:update")
    body = await body_of(request, QOS_SET)
    volume = volume_of(request)
    async with volume.db.write() as session:
        await volume.types.update_qos(session, qos_id, body["qos_specs"])
    return respond(body)


async def delete_qos(request: Request, qos_id: str) -> Response:
    await caller_of(request, "volume_extension:qos_specs_manage:delete")
    force = (query(request).get("force") or ["false"])[-1].lower() in s.TRUE
    volume = volume_of(request)
    async with volume.db.write() as session:
        await volume.types.delete_qos(session, qos_id, force)
    return Response(status_code=202)


async def delete_qos_keys(request: Request, qos_id: str) -> Response:
    await caller_of(request, "volume_extension:qos_specs_manage:delete")
    body = await body_of(request, QOS_UNSET)
    volume = volume_of(request)
    async with volume.db.write() as session:
        await volume.types.delete_qos_keys(session, qos_id, body["keys"])
    return Response(status_code=202)


async def qos_associations(request: Request, qos_id: str) -> Response:
    await caller_of(request, "volume_extension:qos_specs_manage:get_all")
    volume = volume_of(request)
    async with volume.db.read() as session:
        found = await volume.types.qos_associations(session, qos_id)
    return respond({"qos_associations": found})


async def qos_associate(request: Request, qos_id: str) -> Response:
    await caller_of(request, "volume_extension:qos_specs_manage:update")
    type_id = (query(request).get("vol_type_id") or [None])[-1]
    volume = volume_of(request)
    async with volume.db.write() as session:
        await volume.types.associate(session, qos_id, type_id)
    return Response(status_code=202)


async def qos_disassociate(request: Request, qos_id: str) -> Response:
    await caller_of(request, "volume_extension:qos_specs_manage:update")
    type_id = (query(request).get("vol_type_id") or [None])[-1]
    volume = volume_of(request)
    async with volume.db.write() as session:
        await volume.types.disassociate(session, qos_id, type_id)
    return Response(status_code=202)


async def qos_disassociate_all(request: Request, qos_id: str) -> Response:
    await caller_of(request, "volume_extension:qos_specs_manage:update")
    volume = volume_of(request)
    async with volume.db.write() as session:
        await volume.types.disassociate_all(session, qos_id)
    return Response(status_code=202)


def add_routes(app: FastAPI) -> None:
    route = app.add_api_route
    t = V3 + "/types"
    route(t, list_types, methods=["GET"])
    route(t, create_type, methods=["POST"])
    route(t + "/{type_id}", show_type, methods=["GET"])
    route(t + "/{type_id}", update_type, methods=["PUT"])
    route(t + "/{type_id}", delete_type, methods=["DELETE"])
    route(t + "/{type_id}/action", type_action, methods=["POST"])
    route(t + "/{type_id}/os-volume-type-access", list_access, methods=["GET"])
    route(t + "/{type_id}/extra_specs", list_specs, methods=["GET"])
    route(t + "/{type_id}/extra_specs", create_specs, methods=["POST"])
    route(t + "/{type_id}/extra_specs/{key}", show_spec, methods=["GET"])
    route(t + "/{type_id}/extra_specs/{key}", update_spec, methods=["PUT"])
    route(t + "/{type_id}/extra_specs/{key}", delete_spec, methods=["DELETE"])
    d = V3 + "/default-types"
    route(d, list_default_types, methods=["GET"])
    route(d + "/{project_id}", get_default_type, methods=["GET"])
    route(d + "/{project_id}", set_default_type, methods=["PUT"])
    route(d + "/{project_id}", unset_default_type, methods=["DELETE"])
    q = V3 + "/qos-specs"
    route(q, list_qos, methods=["GET"])
    route(q, create_qos, methods=["POST"])
    route(q + "/{qos_id}", show_qos, methods=["GET"])
    route(q + "/{qos_id}", update_qos, methods=["PUT"])
    route(q + "/{qos_id}", delete_qos, methods=["DELETE"])
    route(q + "/{qos_id}/delete_keys", delete_qos_keys, methods=["PUT"])
    route(q + "/{qos_id}/associations", qos_associations, methods=["GET"])
    route(q + "/{qos_id}/associate", qos_associate, methods=["GET"])
    route(q + "/{qos_id}/disassociate", qos_disassociate, methods=["GET"])
    route(q + "/{qos_id}/disassociate_all", qos_disassociate_all, methods=["GET"])

"""Glance v2 metadefs routes (/v2/metadefs/...) and their schemas (/v2/schemas/metadefs/...)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from mcloud.core.auth import AuthContext, authenticate
from mcloud.core.errors import BadRequest, NotFound
from mcloud.core.http import json_response
from mcloud.image import models as m
from mcloud.image import service_metadefs as md
from mcloud.image.api import authorize, iso, json_body, svc, who

router = APIRouter()
BASE = "/v2/metadefs/namespaces"


def target(ctx: AuthContext, ns: m.MetadefNamespace | None = None) -> dict[str, Any]:
    if ns is None:
        return {"project_id": ctx.project_id}
    return {"project_id": ns.owner, "owner": ns.owner, "visibility": ns.visibility, "namespace": ns.namespace}


def r_item(ns: str, item: m.MetadefItem) -> dict[str, Any]:
    body = dict(item.body or {})
    if item.kind == "object":
        body.setdefault("required", [])
        body.setdefault("properties", {})
        body.update(schema="/v2/schemas/metadefs/object", self=f"{BASE}/{ns}/objects/{item.name}")
    if item.kind in ("object", "tag", "resource_type"):
        body.update(created_at=iso(item.created_at), updated_at=iso(item.updated_at))
    body["name"] = item.name
    return body


async def r_namespace(session: Any, ns: m.MetadefNamespace, *, full: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"namespace": ns.namespace, "display_name": ns.display_name, "description": ns.description,
                           "visibility": ns.visibility, "protected": ns.protected, "owner": ns.owner,
                           "created_at": iso(ns.created_at), "updated_at": iso(ns.updated_at),
                           "schema": "/v2/schemas/metadefs/namespace", "self": f"{BASE}/{ns.namespace}"}
    out = {k: v for k, v in out.items() if v is not None}
    assocs = await md.items(session, ns, "resource_type")
    if assocs:
        out["resource_type_associations"] = [r_item(ns.namespace, a) for a in assocs]
    if full:
        props = await md.items(session, ns, "property")
        if props:
            out["properties"] = {p.name: {k: v for k, v in r_item(ns.namespace, p).items() if k != "name"}
                                 for p in props}
        objects = await md.items(session, ns, "object")
        if objects:
            out["objects"] = [r_item(ns.namespace, o) for o in objects]
        tags = await md.items(session, ns, "tag")
        if tags:
            out["tags"] = [{"name": t.name} for t in tags]
    return out


async def _body(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


@router.get("/v2/metadefs/resource_types")
async def list_resource_types(request: Request) -> Response:
    ctx, _caller = await who(request)
    authorize(request, ctx, "list_metadef_resource_types", target(ctx))
    async with svc(request).db.read() as session:
        names = await md.resource_types(session)
    return json_response({"resource_types": [{"name": n, "created_at": "2014-08-28T17:13:04Z",
                                              "updated_at": "2014-08-28T17:13:04Z"} for n in names]})


@router.get("/v2/metadefs/namespaces")
async def list_namespaces(request: Request) -> Response:
    ctx, caller = await who(request)
    authorize(request, ctx, "get_metadef_namespaces", target(ctx))
    params = request.query_params
    try:
        limit = int(params.get("limit", "1000"))
    except ValueError:
        raise BadRequest("limit param must be an integer") from None
    if limit < 0:
        raise BadRequest("limit param must be positive")
    types = [t for t in (params.get("resource_types") or "").split(",") if t]
    async with svc(request).db.read() as session:
        rows = await md.list_namespaces(session, caller.project_id, caller.is_admin,
                                        visibility=params.get("visibility"), resource_types=types,
                                        limit=limit + 1, marker=params.get("marker"))
        more = len(rows) > limit
        rows = rows[:limit]
        body: dict[str, Any] = {"namespaces": [await r_namespace(session, ns, full=False) for ns in rows],
                                "first": "/v2/metadefs/namespaces", "schema": "/v2/schemas/metadefs/namespaces"}
    if more and rows:
        body["next"] = f"/v2/metadefs/namespaces?marker={rows[-1].namespace}&limit={limit}"
    return json_response(body)


@router.post("/v2/metadefs/namespaces")
async def create_namespace(request: Request) -> Response:
    ctx, caller = await who(request)
    authorize(request, ctx, "add_metadef_namespace", target(ctx))
    body = await _body(request)
    async with svc(request).db.write() as session:
        ns = await md.create_namespace(session, body, caller.project_id)
        out = await r_namespace(session, ns, full=True)
    return json_response(out, status=201)


async def _namespace(request: Request, name: str, rule: str, session: Any) -> m.MetadefNamespace:
    ctx, caller = await who(request)
    ns = await md.get_namespace(session, name, caller.project_id, caller.is_admin)
    authorize(request, ctx, rule, target(ctx, ns))
    return ns


@router.get("/v2/metadefs/namespaces/{name}")
async def show_namespace(request: Request, name: str) -> Response:
    async with svc(request).db.read() as session:
        ns = await _namespace(request, name, "get_metadef_namespace", session)
        out = await r_namespace(session, ns, full=True)
    return json_response(out)


@router.put("/v2/metadefs/namespaces/{name}")
async def update_namespace(request: Request, name: str) -> Response:
    body = await _body(request)
    async with svc(request).db.write() as session:
        ns = await _namespace(request, name, "modify_metadef_namespace", session)
        ns = await md.update_namespace(session, ns, body)
        out = await r_namespace(session, ns, full=True)
    return json_response(out)


@router.delete("/v2/metadefs/namespaces/{name}")
async def delete_namespace(request: Request, name: str) -> Response:
    async with svc(request).db.write() as session:
        ns = await _namespace(request, name, "delete_metadef_namespace", session)
        await md.delete_namespace(session, ns)
    return Response(status_code=204)


# objects, properties, tags, resource type associations: one shape each
_KINDS = {"objects": ("object", "metadef_object", "objects"), "properties": ("property", "metadef_property",
                                                                             "properties"),
          "tags": ("tag", "metadef_tag", "tags"),
          "resource_types": ("resource_type", "metadef_resource_type_association", "resource_type_associations")}
_RULES = {"object": ("get_metadef_objects", "get_metadef_object", "add_metadef_object", "modify_metadef_object",
                     "delete_metadef_object"),
          "property": ("get_metadef_properties", "get_metadef_property", "add_metadef_property",
                       "modify_metadef_property", "remove_metadef_property"),
          "tag": ("get_metadef_tags", "get_metadef_tag", "add_metadef_tag", "modify_metadef_tag",
                  "delete_metadef_tag"),
          "resource_type": ("get_metadef_resource_type", "get_metadef_resource_type",
                            "add_metadef_resource_type_association", "add_metadef_resource_type_association",
                            "remove_metadef_resource_type_association")}


def _kind(collection: str) -> str:
    if collection not in _KINDS:
        raise NotFound("The resource could not be found.")
    return _KINDS[collection][0]


@router.get("/v2/metadefs/namespaces/{name}/{collection}")
async def list_items(request: Request, name: str, collection: str) -> Response:
    kind = _kind(collection)
    async with svc(request).db.read() as session:
        ns = await _namespace(request, name, _RULES[kind][0], session)
        rows = await md.items(session, ns, kind)
    if kind == "property":
        return json_response({"properties": {r.name: {k: v for k, v in r_item(name, r).items() if k != "name"}
                                             for r in rows}})
    out: dict[str, Any] = {_KINDS[collection][2]: [r_item(ns.namespace, r) for r in rows]}
    if kind == "object":
        out["schema"] = "/v2/schemas/metadefs/objects"
    return json_response(out)


@router.post("/v2/metadefs/namespaces/{name}/{collection}")
async def create_item(request: Request, name: str, collection: str) -> Response:
    kind = _kind(collection)
    body = await _body(request)
    async with svc(request).db.write() as session:
        if kind == "tag":
            ns = await _namespace(request, name, "add_metadef_tags", session)
            tags = body.get("tags")
            if not isinstance(tags, list):
                raise BadRequest("Invalid input for field 'tags': it must be a list of tags")
            if request.headers.get("x-openstack-append", "").lower() != "true":
                await md.delete_items(session, ns, "tag")
            created = [await md.add_item(session, ns, "tag", md._check_body(t, "tag")) for t in tags]
            return json_response({"tags": [{"name": t.name} for t in created]}, status=201)
        ns = await _namespace(request, name, _RULES[kind][2], session)
        item = await md.add_item(session, ns, kind, md._check_body(body, kind))
        return json_response(r_item(ns.namespace, item), status=201)


@router.delete("/v2/metadefs/namespaces/{name}/{collection}")
async def delete_all_items(request: Request, name: str, collection: str) -> Response:
    kind = _kind(collection)
    rule = {"tag": "delete_metadef_tags", "object": "delete_metadef_object", "property": "remove_metadef_property",
            "resource_type": "remove_metadef_resource_type_association"}[kind]
    async with svc(request).db.write() as session:
        ns = await _namespace(request, name, rule, session)
        await md.delete_items(session, ns, kind)
    return Response(status_code=204)


@router.get("/v2/metadefs/namespaces/{name}/{collection}/{item}")
async def show_item(request: Request, name: str, collection: str, item: str) -> Response:
    kind = _kind(collection)
    async with svc(request).db.read() as session:
        ns = await _namespace(request, name, _RULES[kind][1], session)
        row = await md.get_item(session, ns, kind, item)
    return json_response(r_item(ns.namespace, row))


@router.post("/v2/metadefs/namespaces/{name}/tags/{item}")
async def create_tag(request: Request, name: str, item: str) -> Response:
    if len(item) > 255:
        raise BadRequest(f"Invalid input for field 'name': {item!r} is too long")
    async with svc(request).db.write() as session:
        ns = await _namespace(request, name, "add_metadef_tag", session)
        row = await md.add_item(session, ns, "tag", {"name": item})
    return json_response(r_item(ns.namespace, row), status=201)


@router.put("/v2/metadefs/namespaces/{name}/{collection}/{item}")
async def update_item(request: Request, name: str, collection: str, item: str) -> Response:
    kind = _kind(collection)
    body = md._check_body(await _body(request), kind)
    async with svc(request).db.write() as session:
        ns = await _namespace(request, name, _RULES[kind][3], session)
        row = await md.update_item(session, ns, kind, item, body)
    return json_response(r_item(ns.namespace, row))


@router.delete("/v2/metadefs/namespaces/{name}/{collection}/{item}")
async def delete_item(request: Request, name: str, collection: str, item: str) -> Response:
    kind = _kind(collection)
    async with svc(request).db.write() as session:
        ns = await _namespace(request, name, _RULES[kind][4], session)
        await md.delete_item(session, ns, kind, item)
    return Response(status_code=204)


_SCHEMAS = {"namespace": "namespace", "namespaces": "namespaces", "resource_type": "resource_type_association",
            "resource_types": "resource_type_associations", "object": "object", "objects": "objects",
            "property": "property", "properties": "properties", "tag": "tag", "tags": "tags"}


@router.get("/v2/schemas/metadefs/{kind}")
async def metadef_schema(request: Request, kind: str) -> Response:
    await authenticate(request)
    if kind not in _SCHEMAS:
        raise NotFound("The resource could not be found.")
    name = _SCHEMAS[kind]
    if kind in ("namespaces", "resource_types", "objects", "properties", "tags"):
        item = _SCHEMAS[{"namespaces": "namespace", "resource_types": "resource_type", "objects": "object",
                         "properties": "property", "tags": "tag"}[kind]]
        body = {"name": name, "properties": {
            kind if kind != "resource_types" else "resource_type_associations": {
                "type": "array", "items": {"name": item, "type": "object"}},
            "first": {"type": "string"}, "next": {"type": "string"}, "schema": {"type": "string"}},
            "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                      {"rel": "describedby", "href": "{schema}"}]}
    else:
        props = {"name": {"type": "string", "maxLength": 255}, "created_at": {"type": "string", "readOnly": True},
                 "updated_at": {"type": "string", "readOnly": True}}
        if kind == "namespace":
            props = {"namespace": {"type": "string", "maxLength": 80}, "display_name": {"type": "string"},
                     "description": {"type": "string"}, "visibility": {"type": "string", "enum": ["public", "private"]},
                     "protected": {"type": "boolean"}, "owner": {"type": "string"},
                     "created_at": props["created_at"], "updated_at": props["updated_at"],
                     "schema": {"type": "string", "readOnly": True}, "self": {"type": "string", "readOnly": True}}
        elif kind == "resource_type":
            props.update(prefix={"type": "string"}, properties_target={"type": "string"})
        elif kind == "object":
            props.update(description={"type": "string"}, required={"type": "array"},
                         properties={"type": "object"})
        elif kind == "property":
            props.update(title={"type": "string"}, description={"type": "string"}, type={"type": "string"},
                         enum={"type": "array"}, default={}, readonly={"type": "boolean"})
        body = {"name": name, "properties": props, "additionalProperties": False}
        if kind == "property":
            body.pop("additionalProperties")
    return json_response(body)

"""Cinder's routes for quotas (os-quota-sets, os-quota-class-sets), /limits, availability zones,
os-services, os-hosts, scheduler-stats/get_pools, capabilities and user messages (3.3). Thin:
call ``volume.quotas``, ``volume.messages`` and ``service_types_admin``, render Cinder's views."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.core.errors import BadRequest, NotFound
from mcloud.volume import schemas as s
from mcloud.volume import service_types_admin as admin
from mcloud.volume.api import V3, body_of, caller_of, links, query, respond, volume_of
from mcloud.volume.api_types import collection_links, list_params
from mcloud.volume.service_messages import user_message

QUOTA_SET = {"type": "object", "properties": {"quota_set": {"type": "object", "minProperties": 1}},
             "required": ["quota_set"], "additionalProperties": False}
QUOTA_CLASS_SET = {"type": "object", "properties": {"quota_class_set": {"type": "object"}},
                   "required": ["quota_class_set"], "additionalProperties": False}
HOST_BINARY = {"type": "object", "properties": {"host": {"type": "string", "minLength": 1, "maxLength": 255},
                                                "binary": {"type": "string", "minLength": 1, "maxLength": 255},
                                                "disabled_reason": {"type": ["string", "null"]},
                                                "cluster": {"type": ["string", "null"]},
                                                "backend_id": {"type": ["string", "null"]}},
               "additionalProperties": True}


def _time(dt: datetime | None) -> str | None:
    return dt.isoformat(timespec="microseconds") if dt is not None else None


def _flag(request: Request, key: str) -> bool:
    values = query(request).get(key)
    return bool(values) and values[-1].strip().lower() in s.TRUE


# ---------------------------------------------------------------------- quotas


async def show_quotas(request: Request, project_id: str) -> Response:
    caller = await caller_of(request)
    volume = volume_of(request)
    async with volume.db.read() as session:
        values = await volume.quotas.show(session, caller, project_id, usage=_flag(request, "usage"))
    return respond({"quota_set": {"id": project_id, **values}})


async def quota_defaults(request: Request, project_id: str) -> Response:
    caller = await caller_of(request)
    volume = volume_of(request)
    async with volume.db.read() as session:
        values = await volume.quotas.defaults(session, caller, project_id)
    return respond({"quota_set": {"id": project_id, **values}})


async def update_quotas(request: Request, project_id: str) -> Response:
    caller = await caller_of(request)
    body = (await body_of(request, QUOTA_SET))["quota_set"]
    volume = volume_of(request)
    async with volume.db.write() as session:
        values = await volume.quotas.update(session, caller, project_id, body)
    return respond({"quota_set": values})


async def delete_quotas(request: Request, project_id: str) -> Response:
    caller = await caller_of(request)
    volume = volume_of(request)
    async with volume.db.write() as session:
        await volume.quotas.delete(session, caller, project_id)
    return Response(status_code=200)


async def show_quota_class(request: Request, class_name: str) -> Response:
    caller = await caller_of(request)
    volume = volume_of(request)
    async with volume.db.read() as session:
        values = await volume.quotas.show_class(session, caller, class_name)
    return respond({"quota_class_set": {"id": class_name, **values}})


async def update_quota_class(request: Request, class_name: str) -> Response:
    caller = await caller_of(request)
    body = (await body_of(request, QUOTA_CLASS_SET))["quota_class_set"]
    volume = volume_of(request)
    async with volume.db.write() as session:
        values = await volume.quotas.update_class(session, caller, class_name, body)
    return respond({"quota_class_set": values})


async def limits(request: Request) -> Response:
    caller = await caller_of(request)
    project_id = caller.project_id or ""
    wanted = (query(request).get("project_id") or [None])[-1]
    if wanted and caller.is_admin:  # Cinder 3.39: an admin asks for another project's usage
        project_id = wanted
    volume = volume_of(request)
    async with volume.db.read() as session:
        absolute = await volume.quotas.absolute_limits(session, caller, project_id)
    return respond({"limits": {"rate": [], "absolute": absolute}})


# ---------------------------------------------------------------------- zones, services, hosts, pools


async def availability_zones(request: Request) -> Response:
    await caller_of(request)
    found = [{"zoneName": z, "zoneState": {"available": True}} for z in admin.zones(volume_of(request))]
    return respond({"availabilityZoneInfo": found})


def _service_view(caller: Any, view: admin.ServiceView) -> dict[str, Any]:
    out: dict[str, Any] = {"binary": view.binary, "host": view.host, "zone": view.zone,
                           "status": "disabled" if view.disabled else "enabled",
                           "state": "up" if view.up else "down", "updated_at": _time(view.updated_at),
                           "disabled_reason": view.disabled_reason}
    if caller.at(3, 7):
        out["cluster"] = None
    if view.binary == admin.VOLUME:
        out.update({"replication_status": "disabled", "active_backend_id": None, "frozen": view.frozen})
        if caller.at(3, 49):
            out["backend_state"] = "up" if view.up else "down"
    return out


async def list_services(request: Request) -> Response:
    caller = await caller_of(request, "volume_extension:services:index")
    params = query(request)
    volume = volume_of(request)
    async with volume.db.read() as session:
        found = await admin.services(volume, session, host=(params.get("host") or [None])[-1],
                                     binary=(params.get("binary") or [None])[-1])
    return respond({"services": [_service_view(caller, v) for v in found]})


async def update_service(request: Request, action: str) -> Response:
    caller = await caller_of(request)
    body = await body_of(request, HOST_BINARY)
    host = body.get("host")
    volume = volume_of(request)
    if action in ("freeze", "thaw"):
        caller.authorize(f"volume:{action}_host")
        if not host:
            raise BadRequest("Missing required element 'host' in request body.")
        async with volume.db.write() as session:
            try:
                await admin.set_state(volume, session, host, admin.VOLUME, frozen=action == "freeze")
            except NotFound:
                # Cinder's services API turns ServiceNotFound into InvalidInput for freeze and thaw
                raise BadRequest(f"Invalid input received: No service found with host={host}") from None
        return Response(status_code=200)
    caller.authorize("volume_extension:services:update")
    if action not in ("enable", "disable", "disable-log-reason"):
        if action in ("failover_host", "failover", "set-log", "get-log"):
            raise BadRequest(f"Invalid input received: {action} is not supported by mCloud's volume service")
        raise NotFound("Unknown action")
    if not host:
        raise BadRequest("Missing required element 'host' in request body.")
    binary = body.get("binary") or body.get("service")
    reason = admin.check_reason(body.get("disabled_reason")) if action == "disable-log-reason" else None
    disabled = action != "enable"
    async with volume.db.write() as session:
        await admin.set_state(volume, session, host, binary, disabled=disabled, reason=reason)
    out: dict[str, Any] = {"host": host, "service": binary, "disabled": disabled,
                           "status": "disabled" if disabled else "enabled"}
    if binary:
        out["binary"] = binary
    if reason is not None:
        out["disabled_reason"] = reason
    return respond(out)


async def list_hosts(request: Request) -> Response:
    await caller_of(request, "volume_extension:hosts")
    params = query(request)
    zone = (params.get("zone") or [None])[-1]
    volume = volume_of(request)
    async with volume.db.read() as session:
        found = await admin.services(volume, session)
    hosts = [{"host_name": v.host, "service": v.binary, "zone": v.zone,
              "service-status": "unavailable" if v.disabled or not v.up else "available",
              "service-state": "disabled" if v.disabled else "enabled", "last-update": _time(v.updated_at)}
             for v in found if v.binary != admin.SCHEDULER and (zone is None or v.zone == zone)]
    return respond({"hosts": hosts})


async def show_host(request: Request, host: str) -> Response:
    await caller_of(request, "volume_extension:hosts")
    volume = volume_of(request)
    async with volume.db.read() as session:
        resources = await admin.host_usage(volume, session, host)
    return respond({"host": resources})


async def get_pools(request: Request) -> Response:
    caller = await caller_of(request, "scheduler_extension:scheduler_stats:get_pools")
    params = query(request)
    name = (params.get("name") or [None])[-1] if caller.at(3, 28) else None
    backend_names = None
    volume = volume_of(request)
    type_ref = (params.get("volume_type") or [None])[-1] if caller.at(3, 28) else None
    if type_ref:
        async with volume.db.read() as session:
            vtype = await volume.types.resolve(session, caller, type_ref)
        wanted = vtype.extra_specs.get("volume_backend_name")
        backend_names = {wanted} if wanted else None
    found = await admin.pools(volume, name=name, backend_names=backend_names)
    if not _flag(request, "detail"):
        found = [{"name": p["name"]} for p in found]
    return respond({"pools": found})


async def get_capabilities(request: Request, host: str) -> Response:
    await caller_of(request, "volume_extension:capabilities")
    return respond(await admin.capabilities(volume_of(request), host))


# ---------------------------------------------------------------------- user messages (3.3)


def _message_view(request: Request, row: Any) -> dict[str, Any]:
    out = {"id": row.id, "event_id": row.event_id, "user_message": user_message(row),
           "message_level": row.message_level, "created_at": _time(row.created_at),
           "guaranteed_until": _time(row.expires_at), "request_id": row.request_id,
           "links": links(request, "messages", row.id)}
    if row.resource_type:
        out["resource_type"] = row.resource_type
    if row.resource_uuid:
        out["resource_uuid"] = row.resource_uuid
    return out


async def list_messages(request: Request) -> Response:
    caller = await caller_of(request, since=(3, 3))
    params = query(request)
    sort, limit, marker, offset = list_params(params) if caller.at(3, 5) else (None, None, None, 0)
    filters = {k: v[-1] for k, v in params.items() if v and k not in ("sort", "sort_key", "sort_dir", "limit",
                                                                       "marker", "offset")}
    volume = volume_of(request)
    async with volume.db.read() as session:
        rows = await volume.messages.list(session, caller, filters=filters, sort=sort, limit=limit, marker=marker,
                                          offset=offset)
    body: dict[str, Any] = {"messages": [_message_view(request, r) for r in rows]}
    more = collection_links(request, "messages", rows, limit)
    if more:
        body["messages_links"] = more
    return respond(body)


async def show_message(request: Request, message_id: str) -> Response:
    caller = await caller_of(request, since=(3, 3))
    volume = volume_of(request)
    async with volume.db.read() as session:
        row = await volume.messages.get(session, caller, message_id)
    return respond({"message": _message_view(request, row)})


async def delete_message(request: Request, message_id: str) -> Response:
    caller = await caller_of(request, since=(3, 3))
    volume = volume_of(request)
    async with volume.db.write() as session:
        await volume.messages.delete(session, caller, message_id)
    return Response(status_code=204)


def add_routes(app: FastAPI) -> None:
    route = app.add_api_route
    q = V3 + "/os-quota-sets/{project_id}"
    route(q, show_quotas, methods=["GET"])
    route(q, update_quotas, methods=["PUT"])
    route(q, delete_quotas, methods=["DELETE"])
    route(q + "/defaults", quota_defaults, methods=["GET"])
    route(V3 + "/os-quota-class-sets/{class_name}", show_quota_class, methods=["GET"])
    route(V3 + "/os-quota-class-sets/{class_name}", update_quota_class, methods=["PUT"])
    route(V3 + "/limits", limits, methods=["GET"])
    route(V3 + "/os-availability-zone", availability_zones, methods=["GET"])
    route(V3 + "/os-services", list_services, methods=["GET"])
    route(V3 + "/os-services/{action}", update_service, methods=["PUT"])
    route(V3 + "/os-hosts", list_hosts, methods=["GET"])
    route(V3 + "/os-hosts/{host}", show_host, methods=["GET"])
    route(V3 + "/scheduler-stats/get_pools", get_pools, methods=["GET"])
    route(V3 + "/capabilities/{host}", get_capabilities, methods=["GET"])
    route(V3 + "/messages", list_messages, methods=["GET"])
    route(V3 + "/messages/{message_id}", show_message, methods=["GET"])
    route(V3 + "/messages/{message_id}", delete_message, methods=["DELETE"])

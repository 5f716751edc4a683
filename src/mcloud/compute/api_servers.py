"""Nova's server routes: /servers, /servers/detail, /servers/{id}, its ips, metadata and tags
(actions and the per-server sub-resources are in api_servers_actions.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.compute import schemas as sc
from mcloud.compute.api import V21, base_url, body_of, caller_of, compute_of, query, respond
from mcloud.compute.service_servers_create import create_servers
from mcloud.core.errors import BadRequest, NotFound
from mcloud.core.pagination import next_link


def _servers(request: Request) -> Any:
    return compute_of(request).servers


async def list_servers(request: Request) -> Response:
    return await _list(request, detail=False)


async def list_servers_detail(request: Request) -> Response:
    return await _list(request, detail=True)


async def _list(request: Request, detail: bool) -> Response:
    caller = await caller_of(request, "os_compute_api:servers:detail" if detail else "os_compute_api:servers:index")
    params = query(request)
    result = await _servers(request).list(caller, base_url(request), params, detail)
    body: dict[str, Any] = {"servers": result.items}
    if result.next_marker:
        limit = len(result.items)
        path = f"{base_url(request)}{V21}/servers" + ("/detail" if detail else "")
        keep = {k: v for k, v in params.items() if k not in ("marker", "limit")}
        body["servers_links"] = [next_link(path, keep, result.next_marker, limit)]
    return respond(body)


UPDATE = {"type": "object", "properties": {"server": {
    "type": "object", "properties": {
        "name": sc.NAME, "description": sc.DESCRIPTION, "accessIPv4": {"oneOf": [sc.ACCESS_IPV4,
                                                                                  {"type": "string", "maxLength": 0}]},
        "accessIPv6": {"oneOf": [sc.ACCESS_IPV6, {"type": "string", "maxLength": 0}]},
        "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]}, "hostname": sc.FQDN,
        "pinned_availability_zone": {"oneOf": [sc.NAME, {"type": "null"}]}},
    "additionalProperties": False}}, "required": ["server"], "additionalProperties": False}


async def create_server(request: Request) -> Response:
    caller = await caller_of(request)
    body = await body_of(request)
    created = await create_servers(_servers(request), caller, body)
    base = base_url(request)
    server = body["server"]
    if server.get("return_reservation_id") is not None and sc.as_bool(server["return_reservation_id"]):
        return respond({"reservation_id": created.reservation_id}, 202)
    first = created.instances[0]
    out: dict[str, Any] = {"id": first.uuid, "links": [
        {"rel": "self", "href": f"{base}{V21}/servers/{first.uuid}"},
        {"rel": "bookmark", "href": f"{base}/servers/{first.uuid}"}],
        "OS-DCF:diskConfig": server.get("OS-DCF:diskConfig", "MANUAL")}
    if server.get("networks") != "none":
        out["security_groups"] = [{"name": g} for g in (first.security_groups or ["default"])]
    if created.admin_pass:
        out["adminPass"] = created.admin_pass
    return respond({"server": out}, 202, headers={"Location": f"{base}{V21}/servers/{first.uuid}"})


async def show_server(request: Request, server_id: str) -> Response:
    caller = await caller_of(request)
    return respond({"server": await _servers(request).show(caller, base_url(request), server_id)})


async def update_server(request: Request, server_id: str) -> Response:
    caller = await caller_of(request)
    body = await body_of(request)
    if isinstance(body, dict) and isinstance(body.get("server"), dict):
        server = body["server"]
        gated = [k for k, since in (("description", (2, 19)), ("hostname", (2, 90)),
                                    ("pinned_availability_zone", (2, 104))) if k in server and not caller.at(*since)]
        if gated:
            key = gated[0]
            raise BadRequest(f"Invalid input for field/attribute server. Value: {server}. "
                             f"Additional properties are not allowed ('{key}' was unexpected)")
    sc.validate(body, UPDATE)
    return respond({"server": await _servers(request).update(caller, base_url(request), server_id, body["server"])})


async def delete_server(request: Request, server_id: str) -> Response:
    caller = await caller_of(request)
    await _servers(request).delete(caller, server_id)
    return respond(None, 204)


# ---------------------------------------------------------------------- ips


async def list_ips(request: Request, server_id: str) -> Response:
    caller = await caller_of(request)
    servers = _servers(request)
    async with servers.db.read() as session:
        inst = await servers.get(session, caller, server_id)
    caller.authorize("os_compute_api:ips:index", {"project_id": inst.project_id})
    addrs, _ = await servers.addresses_of([inst.uuid])
    return respond({"addresses": _plain(addrs[inst.uuid])})


async def show_ips(request: Request, server_id: str, network: str) -> Response:
    caller = await caller_of(request)
    servers = _servers(request)
    async with servers.db.read() as session:
        inst = await servers.get(session, caller, server_id)
    caller.authorize("os_compute_api:ips:show", {"project_id": inst.project_id})
    addrs, _ = await servers.addresses_of([inst.uuid])
    plain = _plain(addrs[inst.uuid])
    if network not in plain:
        raise NotFound("Instance is not a member of specified network")
    return respond({network: plain[network]})


def _plain(addresses: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {net: [{"version": a["version"], "addr": a["addr"]} for a in entries]
            for net, entries in addresses.items()}


# ---------------------------------------------------------------------- metadata

META_ALL = {"type": "object", "properties": {"metadata": sc.METADATA}, "required": ["metadata"],
            "additionalProperties": False}
META_ONE = {"type": "object", "properties": {"meta": {**sc.METADATA, "minProperties": 1, "maxProperties": 1}},
            "required": ["meta"], "additionalProperties": False}


async def _meta_target(request: Request, server_id: str, rule: str, write: bool = False) -> tuple[Any, Any]:
    caller = await caller_of(request)
    servers = _servers(request)
    return caller, servers


async def list_metadata(request: Request, server_id: str) -> Response:
    caller, servers = await _meta_target(request, server_id, "index")
    async with servers.db.read() as session:
        inst = await servers.get(session, caller, server_id)
        caller.authorize("os_compute_api:server-metadata:index", {"project_id": inst.project_id})
        return respond({"metadata": await servers.metadata(session, inst.uuid)})


async def show_metadata(request: Request, server_id: str, key: str) -> Response:
    caller, servers = await _meta_target(request, server_id, "show")
    async with servers.db.read() as session:
        inst = await servers.get(session, caller, server_id)
        caller.authorize("os_compute_api:server-metadata:show", {"project_id": inst.project_id})
        meta = await servers.metadata(session, inst.uuid)
    if key not in meta:
        raise NotFound("Metadata item was not found")
    return respond({"meta": {key: meta[key]}})


async def _write_metadata(request: Request, server_id: str, rule: str, items: dict[str, str],
                          replace: bool) -> dict[str, str]:
    caller, servers = await _meta_target(request, server_id, rule)
    async with servers.db.write() as session:
        inst = await servers.get(session, caller, server_id, for_update=True)
        caller.authorize(f"os_compute_api:server-metadata:{rule}", {"project_id": inst.project_id})
        servers.check_lock(caller, inst)
        _check_state_for_metadata(inst)
        return await servers.set_metadata(session, inst, items, replace)


def _check_state_for_metadata(inst: Any) -> None:
    from mcloud.compute.service_servers_actions import state_conflict  # noqa: PLC0415

    if inst.vm_state not in ("active", "paused", "suspended", "stopped", "shelved", "shelved_offloaded",
                             "building", "rescued", "resized", "error"):
        raise state_conflict(inst, "update_meta")


async def create_metadata(request: Request, server_id: str) -> Response:
    body = sc.validate(await body_of(request), META_ALL)
    return respond({"metadata": await _write_metadata(request, server_id, "create", body["metadata"], False)})


async def replace_metadata(request: Request, server_id: str) -> Response:
    body = sc.validate(await body_of(request), META_ALL)
    return respond({"metadata": await _write_metadata(request, server_id, "update_all", body["metadata"], True)})


async def update_metadata_item(request: Request, server_id: str, key: str) -> Response:
    body = sc.validate(await body_of(request), META_ONE)
    if key not in body["meta"]:
        raise BadRequest("Request body and URI mismatch")
    await _write_metadata(request, server_id, "update", {key: body["meta"][key]}, False)
    return respond({"meta": {key: body["meta"][key]}})


async def delete_metadata_item(request: Request, server_id: str, key: str) -> Response:
    caller, servers = await _meta_target(request, server_id, "delete")
    async with servers.db.write() as session:
        inst = await servers.get(session, caller, server_id, for_update=True)
        caller.authorize("os_compute_api:server-metadata:delete", {"project_id": inst.project_id})
        servers.check_lock(caller, inst)
        meta = await servers.metadata(session, inst.uuid)
        if key not in meta:
            raise NotFound("Metadata item was not found")
        meta.pop(key)
        await servers.set_metadata(session, inst, meta, True)
    return respond(None, 204)


# ---------------------------------------------------------------------- tags (2.26+)

# Nova's server_tags: tags change only in these states, and its action names in the 409
TAG_STATES = ("active", "paused", "suspended", "stopped", "shelved", "shelved_offloaded")
TAG_ACTIONS = {"update_all": "update tags", "update": "update tag", "delete_all": "delete tags", "delete": "delete tag"}
TAGS_BODY = {"type": "object", "properties": {"tags": sc.TAGS}, "required": ["tags"], "additionalProperties": False}


async def _tag_caller(request: Request) -> Any:
    return await caller_of(request, since=(2, 26))


async def list_tags(request: Request, server_id: str) -> Response:
    caller = await _tag_caller(request)
    servers = _servers(request)
    async with servers.db.read() as session:
        inst = await servers.get(session, caller, server_id)
        caller.authorize("os_compute_api:os-server-tags:index", {"project_id": inst.project_id})
        return respond({"tags": await servers.tags(session, inst.uuid)})


async def check_tag(request: Request, server_id: str, tag: str) -> Response:
    caller = await _tag_caller(request)
    servers = _servers(request)
    async with servers.db.read() as session:
        inst = await servers.get(session, caller, server_id)
        caller.authorize("os_compute_api:os-server-tags:show", {"project_id": inst.project_id})
        if tag not in await servers.tags(session, inst.uuid):
            raise NotFound(f"Tag {tag} could not be found.")
    return respond(None, 204)


async def _write_tags(request: Request, server_id: str, rule: str, change: Any) -> list[str]:
    caller = await _tag_caller(request)
    servers = _servers(request)
    async with servers.db.write() as session:
        inst = await servers.get(session, caller, server_id, for_update=True)
        caller.authorize(f"os_compute_api:os-server-tags:{rule}", {"project_id": inst.project_id})
        if inst.vm_state not in TAG_STATES:
            from mcloud.compute.service_servers_actions import state_conflict  # noqa: PLC0415

            raise state_conflict(inst, TAG_ACTIONS[rule])
        current = await servers.tags(session, inst.uuid)
        wanted = change(current)
        return await servers.set_tags(session, inst, wanted)


async def replace_tags(request: Request, server_id: str) -> Response:
    await _tag_caller(request)
    body = sc.validate(await body_of(request), TAGS_BODY)
    tags = await _write_tags(request, server_id, "update_all", lambda _cur: body["tags"])
    return respond({"tags": tags})


async def add_tag(request: Request, server_id: str, tag: str) -> Response:
    await _tag_caller(request)
    sc.validate(tag, sc.TAG)
    existed: list[bool] = []

    def change(current: list[str]) -> list[str]:
        existed.append(tag in current)
        return [*current, tag]

    await _write_tags(request, server_id, "update", change)
    if existed and existed[0]:
        return respond(None, 204)
    loc = f"{base_url(request)}{V21}/servers/{quote(server_id, safe='')}/tags/{quote(tag, safe='')}"
    return respond(None, 201, headers={"Location": loc})


async def delete_tags(request: Request, server_id: str) -> Response:
    await _write_tags(request, server_id, "delete_all", lambda _cur: [])
    return respond(None, 204)


async def delete_tag(request: Request, server_id: str, tag: str) -> Response:
    def change(current: list[str]) -> list[str]:
        if tag not in current:
            raise NotFound(f"Tag {tag} could not be found.")
        return [t for t in current if t != tag]

    await _write_tags(request, server_id, "delete", change)
    return respond(None, 204)


def add_routes(app: FastAPI) -> None:
    from mcloud.compute import (api_servers_actions, api_servers_extras, api_servers_legacy,  # noqa: PLC0415
                                api_servers_network, api_servers_proxies, api_servers_secgroups)

    s = V21 + "/servers"
    route = app.add_api_route
    route(s, list_servers, methods=["GET"])
    route(s, create_server, methods=["POST"], status_code=202)
    route(s + "/detail", list_servers_detail, methods=["GET"])
    route(s + "/{server_id}", show_server, methods=["GET"])
    route(s + "/{server_id}", update_server, methods=["PUT"])
    route(s + "/{server_id}", delete_server, methods=["DELETE"], status_code=204)
    route(s + "/{server_id}/ips", list_ips, methods=["GET"])
    route(s + "/{server_id}/ips/{network}", show_ips, methods=["GET"])
    route(s + "/{server_id}/metadata", list_metadata, methods=["GET"])
    route(s + "/{server_id}/metadata", create_metadata, methods=["POST"])
    route(s + "/{server_id}/metadata", replace_metadata, methods=["PUT"])
    route(s + "/{server_id}/metadata/{key}", show_metadata, methods=["GET"])
    route(s + "/{server_id}/metadata/{key}", update_metadata_item, methods=["PUT"])
    route(s + "/{server_id}/metadata/{key}", delete_metadata_item, methods=["DELETE"], status_code=204)
    route(s + "/{server_id}/tags", list_tags, methods=["GET"])
    route(s + "/{server_id}/tags", replace_tags, methods=["PUT"])
    route(s + "/{server_id}/tags", delete_tags, methods=["DELETE"], status_code=204)
    route(s + "/{server_id}/tags/{tag}", check_tag, methods=["GET"])
    route(s + "/{server_id}/tags/{tag}", add_tag, methods=["PUT"])
    route(s + "/{server_id}/tags/{tag}", delete_tag, methods=["DELETE"], status_code=204)
    api_servers_actions.add_routes(app)
    api_servers_proxies.add_routes(app)
    api_servers_secgroups.add_routes(app)
    api_servers_extras.add_routes(app)
    api_servers_network.add_routes(app)
    api_servers_legacy.add_routes(app)

"""Nova's routes for flavors (with extra specs and access), keypairs, server groups, availability
zones, aggregates, quota sets, quota class sets and limits. Thin: parse and check the body at the
request's microversion, call ``compute.resources``, render Nova's view."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.compute import schemas_resources as s
from mcloud.compute.api import V21, base_url, body_of, caller_of, compute_of, query, respond
from mcloud.compute.schemas import as_bool, check_query, validate
from mcloud.compute.service import Caller
from mcloud.compute.service_resources import FlavorView
from mcloud.compute.service_resources_groups import AggregateView, GroupView
from mcloud.compute.service_resources_quotas import shown_quotas
from mcloud.compute.views import links
from mcloud.core.errors import BadRequest

_TRUE = {"1", "t", "true", "on", "y", "yes"}
_FALSE = {"0", "f", "false", "off", "n", "no"}


def _last(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    return values[-1] if values else None


def _int(params: dict[str, list[str]], key: str, message: str | None = None) -> int | None:
    value = _last(params, key)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(message.format(value) if message else
                         f"Invalid input for query parameters {key}. Value: {value}. "
                         f"'{value}' is not a 'non-negative integer'") from None
    if message is None and number < 0:
        raise BadRequest(f"Invalid input for query parameters {key}. Value: {value}. "
                         f"'{value}' is not a 'non-negative integer'")
    return number


def _time(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def _next_link(request: Request, params: dict[str, list[str]], collection: str, marker: str) -> dict[str, str]:
    items = sorted((k, v[-1]) for k, v in params.items() if k != "marker")
    items.append(("marker", marker))
    return {"rel": "next", "href": f"{base_url(request)}/v2.1/{collection}?{urlencode(items)}"}


def _links_of(request: Request, params: dict[str, list[str]], collection: str,
              ids: list[str], limit: int) -> list[dict[str, str]]:
    """Nova's collection links: a next link when the page is as long as it could be."""
    if limit and len(ids) == limit:
        return [_next_link(request, params, collection, ids[-1])]
    return []


# ---------------------------------------------------------------------- flavors


def flavor_view(request: Request, caller: Caller, view: FlavorView, *, detail: bool = True,
                extra_specs: bool | None = None) -> dict[str, Any]:
    f = view.flavor
    base = base_url(request)
    if not detail:
        out: dict[str, Any] = {"id": f.flavorid, "name": f.name, "links": links(base, "flavors", f.flavorid)}
        if caller.at(2, 55):
            out["description"] = f.description
        return out
    out = {"id": f.flavorid, "name": f.name, "ram": f.memory_mb, "disk": f.root_gb,
           "swap": f.swap if caller.at(2, 75) else (f.swap or ""), "OS-FLV-EXT-DATA:ephemeral": f.ephemeral_gb,
           "vcpus": f.vcpus, "os-flavor-access:is_public": f.is_public, "links": links(base, "flavors", f.flavorid)}
    if not caller.at(2, 102):
        out["OS-FLV-DISABLED:disabled"] = f.disabled
        out["rxtx_factor"] = f.rxtx_factor or ""
    if caller.at(2, 55):
        out["description"] = f.description
    if extra_specs is None:
        extra_specs = caller.at(2, 61) and caller.can("os_compute_api:os-flavor-extra-specs:index")
    if extra_specs:
        out["extra_specs"] = dict(view.extra_specs)
    return out


def _is_public(value: str | None) -> bool | None:
    if value is None:
        return True
    if value.strip().lower() == "none":
        return None
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise BadRequest(f"Invalid is_public filter [{value}]")


async def _list_flavors(request: Request, detail: bool) -> Response:
    caller = await caller_of(request)
    params = query(request)
    allowed = {"limit", "marker", "is_public", "minRam", "minDisk", "sort_key", "sort_dir"}
    if caller.at(2, 102):
        allowed.add("name")
    check_query(params, allowed, caller.at(2, 75))
    sort_key = _last(params, "sort_key") or "flavorid"
    sort_dir = _last(params, "sort_dir") or "asc"
    keys = [k for k in s.FLAVOR_SORT_KEYS if not (caller.at(2, 102) and k == "rxtx_factor")]
    if sort_key not in keys:
        raise BadRequest(f"Invalid input for query parameters sort_key. Value: {sort_key}. "
                         f"'{sort_key}' is not one of {keys}")
    if sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid input for query parameters sort_dir. Value: {sort_dir}. "
                         f"'{sort_dir}' is not one of ['asc', 'desc']")
    min_ram = _int(params, "minRam", "Invalid minRam filter [{}]")
    min_disk = _int(params, "minDisk", "Invalid minDisk filter [{}]")
    limit = _int(params, "limit")
    async with compute_of(request).db.read() as session:
        page = await compute_of(request).resources.list_flavors(
            session, caller, is_public=_is_public(_last(params, "is_public")) if caller.is_admin else True,
            min_ram=min_ram, min_disk=min_disk, name=_last(params, "name") if caller.at(2, 102) else None,
            sort_key=sort_key, sort_dir=sort_dir, limit=limit or None, marker=_last(params, "marker"))
    body: dict[str, Any] = {"flavors": [flavor_view(request, caller, v, detail=detail) for v in page.flavors]}
    flavor_links = _links_of(request, params, "flavors/detail" if detail else "flavors",
                             [v.flavor.flavorid for v in page.flavors], page.limit)
    if flavor_links:
        body["flavors_links"] = flavor_links
    return respond(body)


async def list_flavors(request: Request) -> Response:
    return await _list_flavors(request, False)


async def list_flavors_detail(request: Request) -> Response:
    return await _list_flavors(request, True)


async def show_flavor(request: Request, flavor_id: str) -> Response:
    caller = await caller_of(request)
    check_query(query(request), set(), caller.at(2, 102))
    async with compute_of(request).db.read() as session:
        view = await compute_of(request).resources.get_flavor(session, caller, flavor_id)
    return respond({"flavor": flavor_view(request, caller, view)})


async def create_flavor(request: Request) -> Response:
    caller = await caller_of(request)
    schema = s.FLAVOR_CREATE_V2102 if caller.at(2, 102) else \
        s.FLAVOR_CREATE_V255 if caller.at(2, 55) else s.FLAVOR_CREATE
    body = (await body_of(request, schema))["flavor"]
    public = body.get("os-flavor-access:is_public", True)
    async with compute_of(request).db.write() as session:
        view = await compute_of(request).resources.create_flavor(
            session, caller, name=body["name"], ram=int(body["ram"]), vcpus=int(body["vcpus"]),
            disk=int(body["disk"]), flavorid=body.get("id"), ephemeral=int(body.get("OS-FLV-EXT-DATA:ephemeral", 0)),
            swap=int(body.get("swap", 0)), rxtx_factor=float(body.get("rxtx_factor", 1.0)),
            is_public=public if isinstance(public, bool) else as_bool(public),
            description=body.get("description") if caller.at(2, 55) else None)
    return respond({"flavor": flavor_view(request, caller, view)})


async def update_flavor(request: Request, flavor_id: str) -> Response:
    caller = await caller_of(request, since=(2, 55))
    body = (await body_of(request, s.FLAVOR_UPDATE))["flavor"]
    async with compute_of(request).db.write() as session:
        view = await compute_of(request).resources.update_flavor(session, caller, flavor_id, body["description"])
    return respond({"flavor": flavor_view(request, caller, view)})


async def delete_flavor(request: Request, flavor_id: str) -> Response:
    caller = await caller_of(request)
    async with compute_of(request).db.write() as session:
        await compute_of(request).resources.delete_flavor(session, caller, flavor_id)
    return respond(None, 202)


def _access(flavor_id: str, projects: list[str]) -> dict[str, Any]:
    return {"flavor_access": [{"flavor_id": flavor_id, "tenant_id": p} for p in projects]}


async def flavor_access(request: Request, flavor_id: str) -> Response:
    caller = await caller_of(request)
    check_query(query(request), set(), caller.at(2, 102))
    async with compute_of(request).db.read() as session:
        projects = await compute_of(request).resources.flavor_access(session, caller, flavor_id)
    return respond(_access(flavor_id, projects))


async def flavor_action(request: Request, flavor_id: str) -> Response:
    caller = await caller_of(request)
    body = await body_of(request)
    if not isinstance(body, dict) or not ({"addTenantAccess", "removeTenantAccess"} & set(body)):
        raise BadRequest("There is no such action: %s" % (", ".join(body) if isinstance(body, dict) else body))
    validate(body, s.FLAVOR_ACTION)
    resources = compute_of(request).resources
    async with compute_of(request).db.write() as session:
        if "addTenantAccess" in body:
            projects = await resources.add_flavor_access(session, caller, flavor_id, body["addTenantAccess"]["tenant"])
        else:
            projects = await resources.remove_flavor_access(session, caller, flavor_id,
                                                            body["removeTenantAccess"]["tenant"])
    return respond(_access(flavor_id, projects))


async def list_extra_specs(request: Request, flavor_id: str) -> Response:
    caller = await caller_of(request)
    check_query(query(request), set(), caller.at(2, 102))
    async with compute_of(request).db.read() as session:
        specs = await compute_of(request).resources.extra_specs(session, caller, flavor_id)
    return respond({"extra_specs": specs})


async def create_extra_specs(request: Request, flavor_id: str) -> Response:
    caller = await caller_of(request)
    body = await body_of(request, s.EXTRA_SPECS_CREATE)
    async with compute_of(request).db.write() as session:
        await compute_of(request).resources.set_extra_specs(session, caller, flavor_id, body["extra_specs"])
    return respond(body)


async def show_extra_spec(request: Request, flavor_id: str, key: str) -> Response:
    caller = await caller_of(request)
    check_query(query(request), set(), caller.at(2, 102))
    async with compute_of(request).db.read() as session:
        value = await compute_of(request).resources.extra_spec(session, caller, flavor_id, key)
    return respond({key: value})


async def update_extra_spec(request: Request, flavor_id: str, key: str) -> Response:
    caller = await caller_of(request)
    body = await body_of(request, s.EXTRA_SPEC_UPDATE)
    if key not in body:
        raise BadRequest("Request body and URI mismatch")
    async with compute_of(request).db.write() as session:
        await compute_of(request).resources.set_extra_specs(session, caller, flavor_id, body, rule="update")
    return respond(body)


async def delete_extra_spec(request: Request, flavor_id: str, key: str) -> Response:
    caller = await caller_of(request)
    async with compute_of(request).db.write() as session:
        await compute_of(request).resources.delete_extra_spec(session, caller, flavor_id, key)
    return respond(None, 200)


# ---------------------------------------------------------------------- keypairs


def keypair_view(caller: Caller, keypair: Any, *, kind: str, private_key: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": keypair.name, "public_key": keypair.public_key, "fingerprint": keypair.fingerprint}
    if kind in ("create", "show"):
        out["user_id"] = keypair.user_id
    if kind == "show":
        out.update(created_at=_time(keypair.created_at), deleted=False, deleted_at=None, id=keypair.id,
                   updated_at=None)
    if private_key is not None:
        out["private_key"] = private_key
    if caller.at(2, 2):
        out["type"] = keypair.type
    return out


def _keypair_user(caller: Caller, params: dict[str, list[str]], allowed: set[str]) -> str | None:
    check_query(params, allowed | ({"user_id"} if caller.at(2, 10) else set()), caller.at(2, 75))
    return _last(params, "user_id") if caller.at(2, 10) else None


async def list_keypairs(request: Request) -> Response:
    caller = await caller_of(request)
    params = query(request)
    paging = caller.at(2, 35)
    user_id = _keypair_user(caller, params, {"limit", "marker"} if paging else set())
    limit = _int(params, "limit") if paging else None
    async with compute_of(request).db.read() as session:
        keypairs = await compute_of(request).resources.list_keypairs(
            session, caller, user_id, limit=limit or None, marker=_last(params, "marker") if paging else None)
    body: dict[str, Any] = {"keypairs": [{"keypair": keypair_view(caller, k, kind="index")} for k in keypairs]}
    if paging:
        page_links = _links_of(request, params, "os-keypairs", [k.name for k in keypairs],
                               min(limit or compute_of(request).config.max_limit, compute_of(request).config.max_limit))
        if page_links:
            body["keypairs_links"] = page_links
    return respond(body)


async def show_keypair(request: Request, name: str) -> Response:
    caller = await caller_of(request)
    user_id = _keypair_user(caller, query(request), set())
    async with compute_of(request).db.read() as session:
        keypair = await compute_of(request).resources.show_keypair(session, caller, name, user_id)
    return respond({"keypair": keypair_view(caller, keypair, kind="show")})


async def create_keypair(request: Request) -> Response:
    caller = await caller_of(request)
    schema = s.KEYPAIR_CREATE_V292 if caller.at(2, 92) else s.KEYPAIR_CREATE_V210 if caller.at(2, 10) else \
        s.KEYPAIR_CREATE_V22 if caller.at(2, 2) else s.KEYPAIR_CREATE
    body = (await body_of(request, schema))["keypair"]
    async with compute_of(request).db.write() as session:
        keypair, private_key = await compute_of(request).resources.create_keypair(
            session, caller, body["name"], public_key=body.get("public_key"), key_type=body.get("type", "ssh"),
            user_id=body.get("user_id"))
    return respond({"keypair": keypair_view(caller, keypair, kind="create", private_key=private_key)},
                   201 if caller.at(2, 2) else 200)


async def delete_keypair(request: Request, name: str) -> Response:
    caller = await caller_of(request)
    user_id = _keypair_user(caller, query(request), set())
    async with compute_of(request).db.write() as session:
        await compute_of(request).resources.delete_keypair(session, caller, name, user_id)
    return respond(None, 204 if caller.at(2, 2) else 202)


# ---------------------------------------------------------------------- server groups


def group_view(caller: Caller, group: GroupView) -> dict[str, Any]:
    out: dict[str, Any] = {"id": group.id, "name": group.name}
    if caller.at(2, 64):
        out.update(policy=group.policy, rules=group.rules)
    else:
        out.update(policies=[group.policy], metadata={})
    out["members"] = group.members
    if caller.at(2, 13):
        out.update(project_id=group.project_id, user_id=group.user_id)
    return out


async def list_server_groups(request: Request) -> Response:
    caller = await caller_of(request)
    params = query(request)
    check_query(params, {"all_projects", "limit", "offset"}, caller.at(2, 75))
    async with compute_of(request).db.read() as session:
        groups = await compute_of(request).resources.list_server_groups(
            session, caller, all_projects="all_projects" in params, limit=_int(params, "limit"),
            offset=_int(params, "offset") or 0)
    return respond({"server_groups": [group_view(caller, g) for g in groups]})


async def show_server_group(request: Request, group_id: str) -> Response:
    caller = await caller_of(request)
    check_query(query(request), set(), caller.at(2, 102))
    async with compute_of(request).db.read() as session:
        group = await compute_of(request).resources.show_server_group(session, caller, group_id)
    return respond({"server_group": group_view(caller, group)})


async def create_server_group(request: Request) -> Response:
    caller = await caller_of(request)
    schema = s.SERVER_GROUP_CREATE_V264 if caller.at(2, 64) else \
        s.SERVER_GROUP_CREATE_V215 if caller.at(2, 15) else s.SERVER_GROUP_CREATE
    body = (await body_of(request, schema))["server_group"]
    policy = body["policy"] if caller.at(2, 64) else body["policies"][0]
    async with compute_of(request).db.write() as session:
        group = await compute_of(request).resources.create_server_group(
            session, caller, body["name"], policy, body.get("rules") if caller.at(2, 64) else None)
    return respond({"server_group": group_view(caller, group)})


async def delete_server_group(request: Request, group_id: str) -> Response:
    caller = await caller_of(request)
    async with compute_of(request).db.write() as session:
        await compute_of(request).resources.delete_server_group(session, caller, group_id)
    return respond(None, 204)


# ---------------------------------------------------------------------- availability zones


async def _zones(request: Request, detail: bool) -> Response:
    caller = await caller_of(request)
    check_query(query(request), set(), caller.at(2, 102))
    async with compute_of(request).db.read() as session:
        zones = await compute_of(request).resources.availability_zones(session, caller, detail)
    for zone in zones:
        for services in (zone["hosts"] or {}).values():
            for service in services.values():
                if isinstance(service.get("updated_at"), datetime):
                    service["updated_at"] = _time(service["updated_at"])
    return respond({"availabilityZoneInfo": zones})


async def list_zones(request: Request) -> Response:
    return await _zones(request, False)


async def list_zones_detail(request: Request) -> Response:
    return await _zones(request, True)


# ---------------------------------------------------------------------- aggregates


def aggregate_view(caller: Caller, agg: AggregateView, *, brief: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"availability_zone": agg.availability_zone, "created_at": _time(agg.created_at),
                           "deleted": False, "deleted_at": None, "id": agg.id, "name": agg.name,
                           "updated_at": _time(agg.updated_at)}
    if not brief:
        out.update(hosts=agg.hosts, metadata=agg.metadata)
    if caller.at(2, 41):
        out["uuid"] = agg.uuid
    return out


async def list_aggregates(request: Request) -> Response:
    caller = await caller_of(request)
    check_query(query(request), set(), caller.at(2, 102))
    async with compute_of(request).db.read() as session:
        aggregates = await compute_of(request).resources.list_aggregates(session, caller)
    return respond({"aggregates": [aggregate_view(caller, a) for a in aggregates]})


async def show_aggregate(request: Request, aggregate_id: str) -> Response:
    caller = await caller_of(request)
    check_query(query(request), set(), caller.at(2, 102))
    async with compute_of(request).db.read() as session:
        agg = await compute_of(request).resources.show_aggregate(session, caller, aggregate_id)
    return respond({"aggregate": aggregate_view(caller, agg)})


async def create_aggregate(request: Request) -> Response:
    caller = await caller_of(request)
    body = (await body_of(request, s.AGGREGATE_CREATE))["aggregate"]
    async with compute_of(request).db.write() as session:
        agg = await compute_of(request).resources.create_aggregate(session, caller, body["name"],
                                                                   body.get("availability_zone"))
    return respond({"aggregate": aggregate_view(caller, agg, brief=True)})


async def update_aggregate(request: Request, aggregate_id: str) -> Response:
    caller = await caller_of(request)
    body = (await body_of(request, s.AGGREGATE_UPDATE))["aggregate"]
    async with compute_of(request).db.write() as session:
        agg = await compute_of(request).resources.update_aggregate(
            session, caller, aggregate_id, name=body.get("name"),
            availability_zone=body["availability_zone"] if "availability_zone" in body else ...)
    return respond({"aggregate": aggregate_view(caller, agg)})


async def delete_aggregate(request: Request, aggregate_id: str) -> Response:
    caller = await caller_of(request)
    async with compute_of(request).db.write() as session:
        await compute_of(request).resources.delete_aggregate(session, caller, aggregate_id)
    return respond(None, 200)


async def aggregate_action(request: Request, aggregate_id: str) -> Response:
    caller = await caller_of(request)
    body = await body_of(request)
    if not isinstance(body, dict) or not ({"add_host", "remove_host", "set_metadata"} & set(body)):
        raise BadRequest("There is no such action: %s" % (", ".join(body) if isinstance(body, dict) else body))
    validate(body, s.AGGREGATE_ACTION)
    resources = compute_of(request).resources
    host = None
    async with compute_of(request).db.write() as session:
        if "add_host" in body:
            host = body["add_host"]["host"]
            agg = await resources.add_aggregate_host(session, caller, aggregate_id, host)
        elif "remove_host" in body:
            host = body["remove_host"]["host"]
            agg = await resources.remove_aggregate_host(session, caller, aggregate_id, host)
        else:
            agg = await resources.set_aggregate_metadata(session, caller, aggregate_id,
                                                         body["set_metadata"]["metadata"])
    if host is not None:
        await resources.sync_placement_aggregates(host)
    return respond({"aggregate": aggregate_view(caller, agg)})


# ---------------------------------------------------------------------- quotas and limits


def _user_param(caller: Caller, params: dict[str, list[str]]) -> str | None:
    check_query(params, {"user_id"}, caller.at(2, 75))
    return _last(params, "user_id")


async def show_quotas(request: Request, project_id: str) -> Response:
    caller = await caller_of(request)
    user_id = _user_param(caller, query(request))
    async with compute_of(request).db.read() as session:
        limits = await compute_of(request).resources.show_quotas(session, caller, project_id, user_id=user_id)
    return respond({"quota_set": {"id": project_id, **{k: limits[k] for k in shown_quotas(caller)}}})


async def show_quotas_detail(request: Request, project_id: str) -> Response:
    caller = await caller_of(request)
    user_id = _user_param(caller, query(request))
    async with compute_of(request).db.read() as session:
        limits = await compute_of(request).resources.show_quotas(session, caller, project_id, user_id=user_id,
                                                                 detail=True)
    return respond({"quota_set": {"id": project_id, **{k: limits[k] for k in shown_quotas(caller)}}})


async def quota_defaults(request: Request, project_id: str) -> Response:
    caller = await caller_of(request)
    async with compute_of(request).db.read() as session:
        limits = await compute_of(request).resources.quota_defaults(session, caller, project_id)
    return respond({"quota_set": {"id": project_id, **{k: limits[k] for k in shown_quotas(caller)}}})


async def update_quotas(request: Request, project_id: str) -> Response:
    caller = await caller_of(request)
    user_id = _user_param(caller, query(request))
    names = shown_quotas(caller)
    body = (await body_of(request, s.quota_update(names)))["quota_set"]
    async with compute_of(request).db.write() as session:
        limits = await compute_of(request).resources.update_quotas(session, caller, project_id, body,
                                                                   user_id=user_id)
    return respond({"quota_set": {k: limits[k] for k in names}})


async def delete_quotas(request: Request, project_id: str) -> Response:
    caller = await caller_of(request)
    _user_param(caller, query(request))
    async with compute_of(request).db.write() as session:
        await compute_of(request).resources.delete_quotas(session, caller, project_id)
    return respond(None, 202)


async def show_quota_class(request: Request, class_name: str) -> Response:
    caller = await caller_of(request)
    check_query(query(request), set(), caller.at(2, 102))
    async with compute_of(request).db.read() as session:
        limits = await compute_of(request).resources.show_quota_class(session, caller, class_name)
    return respond({"quota_class_set": {"id": class_name,
                                        **{k: limits[k] for k in shown_quotas(caller, classes=True)}}})


async def update_quota_class(request: Request, class_name: str) -> Response:
    caller = await caller_of(request)
    names = shown_quotas(caller, classes=True)
    body = (await body_of(request, s.quota_update(names, "quota_class_set", force=False)))["quota_class_set"]
    async with compute_of(request).db.write() as session:
        limits = await compute_of(request).resources.update_quota_class(session, caller, class_name, body)
    return respond({"quota_class_set": {k: limits[k] for k in names}})


async def show_limits(request: Request) -> Response:
    caller = await caller_of(request)
    params = query(request)
    check_query(params, {"tenant_id"}, caller.at(2, 75))
    async with compute_of(request).db.read() as session:
        absolute = await compute_of(request).resources.absolute_limits(session, caller, _last(params, "tenant_id"))
    return respond({"limits": {"rate": [], "absolute": absolute}})


def add_routes(app: FastAPI) -> None:
    route = app.add_api_route
    f = V21 + "/flavors"
    route(f, list_flavors, methods=["GET"])
    route(f, create_flavor, methods=["POST"])
    route(f + "/detail", list_flavors_detail, methods=["GET"])
    route(f + "/{flavor_id}", show_flavor, methods=["GET"])
    route(f + "/{flavor_id}", update_flavor, methods=["PUT"])
    route(f + "/{flavor_id}", delete_flavor, methods=["DELETE"], status_code=202)
    route(f + "/{flavor_id}/action", flavor_action, methods=["POST"])
    route(f + "/{flavor_id}/os-flavor-access", flavor_access, methods=["GET"])
    route(f + "/{flavor_id}/os-extra_specs", list_extra_specs, methods=["GET"])
    route(f + "/{flavor_id}/os-extra_specs", create_extra_specs, methods=["POST"])
    route(f + "/{flavor_id}/os-extra_specs/{key}", show_extra_spec, methods=["GET"])
    route(f + "/{flavor_id}/os-extra_specs/{key}", update_extra_spec, methods=["PUT"])
    route(f + "/{flavor_id}/os-extra_specs/{key}", delete_extra_spec, methods=["DELETE"])
    k = V21 + "/os-keypairs"
    route(k, list_keypairs, methods=["GET"])
    route(k, create_keypair, methods=["POST"])
    route(k + "/{name}", show_keypair, methods=["GET"])
    route(k + "/{name}", delete_keypair, methods=["DELETE"])
    g = V21 + "/os-server-groups"
    route(g, list_server_groups, methods=["GET"])
    route(g, create_server_group, methods=["POST"])
    route(g + "/{group_id}", show_server_group, methods=["GET"])
    route(g + "/{group_id}", delete_server_group, methods=["DELETE"], status_code=204)
    route(V21 + "/os-availability-zone", list_zones, methods=["GET"])
    route(V21 + "/os-availability-zone/detail", list_zones_detail, methods=["GET"])
    a = V21 + "/os-aggregates"
    route(a, list_aggregates, methods=["GET"])
    route(a, create_aggregate, methods=["POST"])
    route(a + "/{aggregate_id}", show_aggregate, methods=["GET"])
    route(a + "/{aggregate_id}", update_aggregate, methods=["PUT"])
    route(a + "/{aggregate_id}", delete_aggregate, methods=["DELETE"])
    route(a + "/{aggregate_id}/action", aggregate_action, methods=["POST"])
    q = V21 + "/os-quota-sets/{project_id}"
    route(q, show_quotas, methods=["GET"])
    route(q, update_quotas, methods=["PUT"])
    route(q, delete_quotas, methods=["DELETE"], status_code=202)
    route(q + "/defaults", quota_defaults, methods=["GET"])
    route(q + "/detail", show_quotas_detail, methods=["GET"])
    route(V21 + "/os-quota-class-sets/{class_name}", show_quota_class, methods=["GET"])
    route(V21 + "/os-quota-class-sets/{class_name}", update_quota_class, methods=["PUT"])
    route(V21 + "/limits", show_limits, methods=["GET"])

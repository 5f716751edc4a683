"""Neutron v2.0 routes for routers, floating IPs and port forwardings, security groups and rules,
QoS policies and rules, and trunks. CORE's ``api.build`` calls :func:`add_routes`; the routes
render faults through CORE's NeutronError renderer (installed on the app).

Every collection has Neutron's shape: ``GET`` lists (``fields``, attribute filters, tag
filters, ``sort_key``/``sort_dir``, ``limit``/``marker``/``page_reverse`` with
``<collection>_links``), ``POST`` creates (201; bulk where Neutron allows it), ``GET``/``PUT``
(``If-Match: revision_number=N``)/``DELETE`` (204) on one, and the actions as ``PUT``s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.core.http import json_response
from mcloud.network import schemas_l3 as sl
from mcloud.network.api import body_of, caller_of, collection_routes, fields_of, links, paging, query, shape, svc
from mcloud.network.errors_core import NeutronError
from mcloud.network.service import Caller, NetworkService
from mcloud.network.service_qos import RULE_COLLECTIONS

V2 = "/v2.0"


def one(resource: str, item: dict[str, Any], params: dict[str, list[str]] | None = None,
        status: int = 200) -> Response:
    return json_response({resource: shape([item], fields_of(params or {}), [])[0]}, status=status)


def no_content() -> Response:
    return Response(status_code=204)


async def listed(request: Request, collection: str, lister: Callable[..., Awaitable[Any]]) -> Response:
    """A list answer: the page ``lister(caller, params, limit, marker, reverse)`` gives, shaped
    by ``fields`` and with ``<collection>_links``."""
    caller = await caller_of(request)
    params = query(request)
    limit, marker, reverse = paging(request, params)
    page = await lister(caller, params, limit, marker, reverse)
    return json_response({collection: shape(page.items, fields_of(params), []),
                          **links(request, collection, page, limit, marker, reverse)})


# ---------------------------------------------------------------------- collections


@dataclasses.dataclass
class Collection:
    """A top-level L3 collection and the L3Service methods behind it."""

    resource: str
    collection: str
    list: str
    show: str
    create: str
    update: str
    delete: str
    bulk: bool = False


COLLECTIONS = (
    Collection("router", "routers", "list_routers", "get_router", "create_router", "update_router", "delete_router"),
    Collection("floatingip", "floatingips", "list_floatingips", "get_floatingip", "create_floatingip",
               "update_floatingip", "delete_floatingip"),
    Collection("security_group", "security-groups", "list_security_groups", "get_security_group",
               "create_security_group", "update_security_group", "delete_security_group", bulk=True),
    Collection("trunk", "trunks", "list_trunks", "get_trunk", "create_trunk", "update_trunk", "delete_trunk"),
)


def _collection_routes(app: FastAPI, c: Collection) -> None:
    async def lister(network: NetworkService, caller: Caller, params: dict[str, list[str]], limit: int | None,
                     marker: str | None, reverse: bool) -> Any:
        return await getattr(network.l3, c.list)(caller, params, limit, marker, reverse)

    async def shower(network: NetworkService, caller: Caller, item_id: str) -> dict[str, Any]:
        async with network.db.read() as session:
            return await getattr(network.l3, c.show)(session, caller, item_id)

    async def creator(network: NetworkService, caller: Caller, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        bodies = [sl.convert(c.resource, b, True, caller.project_id, caller.is_admin) for b in bodies]
        async with network.write() as session:
            ids = []
            for body in bodies:
                new = await getattr(network.l3, c.create)(session, caller, body)
                if "tags" in body:
                    await network.set_tags(session, c.collection.replace("-", "_"), new, body["tags"])
                ids.append(new)
            return [await getattr(network.l3, c.show)(session, caller, i) for i in ids]

    async def updater(network: NetworkService, caller: Caller, item_id: str, body: dict[str, Any],
                      if_match: str | None) -> dict[str, Any]:
        body = sl.convert(c.resource, body, False)
        async with network.write() as session:
            await getattr(network.l3, c.update)(session, caller, item_id, body, if_match)
            return await getattr(network.l3, c.show)(session, caller, item_id)

    async def deleter(network: NetworkService, caller: Caller, item_id: str) -> None:
        async with network.write() as session:
            await getattr(network.l3, c.delete)(session, caller, item_id)

    collection_routes(app, c.resource, c.collection, lister=lister, shower=shower, creator=creator, updater=updater,
                      deleter=deleter, bulk=c.bulk)


def _qos_policy_routes(app: FastAPI) -> None:
    base = V2 + "/qos/policies"

    async def list_(request: Request) -> Response:
        return await listed(request, "policies", svc(request).l3.list_qos_policies)

    async def create(request: Request) -> Response:
        caller = await caller_of(request)
        body = sl.parse(await body_of(request), "policy", True, caller.project_id, caller.is_admin)
        network = svc(request)
        async with network.write() as session:
            policy_id = await network.l3.create_qos_policy(session, caller, body)
            if "tags" in body:
                await network.set_tags(session, "policies", policy_id, body["tags"])
            item = await network.l3.get_qos_policy(session, caller, policy_id)
        return one("policy", item, status=201)

    async def show(request: Request, policy_id: str) -> Response:
        caller = await caller_of(request)
        network = svc(request)
        async with network.db.read() as session:
            item = await network.l3.get_qos_policy(session, caller, policy_id)
        return one("policy", item, query(request))

    async def update(request: Request, policy_id: str) -> Response:
        caller = await caller_of(request)
        body = sl.parse(await body_of(request), "policy", False)
        network = svc(request)
        async with network.write() as session:
            await network.l3.update_qos_policy(session, caller, policy_id, body, request.headers.get("if-match"))
            item = await network.l3.get_qos_policy(session, caller, policy_id)
        return one("policy", item)

    async def delete(request: Request, policy_id: str) -> Response:
        caller = await caller_of(request)
        network = svc(request)
        async with network.write() as session:
            await network.l3.delete_qos_policy(session, caller, policy_id)
        return no_content()

    app.add_api_route(base, list_, methods=["GET"])
    app.add_api_route(base, create, methods=["POST"])
    app.add_api_route(base + "/{policy_id}", show, methods=["GET"])
    app.add_api_route(base + "/{policy_id}", update, methods=["PUT"])
    app.add_api_route(base + "/{policy_id}", delete, methods=["DELETE"])


# ---------------------------------------------------------------------- security group rules


def _rule_routes(app: FastAPI) -> None:
    base = V2 + "/security-group-rules"

    async def list_(request: Request) -> Response:
        return await listed(request, "security_group_rules", svc(request).l3.list_security_group_rules)

    async def create(request: Request) -> Response:
        caller = await caller_of(request)
        bodies, bulk = sl.parse_many(await body_of(request), "security_group_rule", "security_group_rules",
                                     caller.project_id, caller.is_admin)
        service = svc(request).l3
        async with svc(request).write() as session:
            ids = await service.create_security_group_rules(session, caller, bodies)
            items = [await service.get_security_group_rule(session, caller, i) for i in ids]
        if bulk:
            return json_response({"security_group_rules": items}, status=201)
        return one("security_group_rule", items[0], status=201)

    async def show(request: Request, rule_id: str) -> Response:
        caller = await caller_of(request)
        async with svc(request).db.read() as session:
            item = await svc(request).l3.get_security_group_rule(session, caller, rule_id)
        return one("security_group_rule", item, query(request))

    async def delete(request: Request, rule_id: str) -> Response:
        caller = await caller_of(request)
        async with svc(request).write() as session:
            await svc(request).l3.delete_security_group_rule(session, caller, rule_id)
        return no_content()

    app.add_api_route(base, list_, methods=["GET"])
    app.add_api_route(base, create, methods=["POST"])
    app.add_api_route(base + "/{rule_id}", show, methods=["GET"])
    app.add_api_route(base + "/{rule_id}", delete, methods=["DELETE"])


# ---------------------------------------------------------------------- router and trunk actions


def _action_routes(app: FastAPI) -> None:
    async def add_interface(request: Request, router_id: str) -> Response:
        caller = await caller_of(request)
        body = await body_of(request)
        async with svc(request).write() as session:
            out = await svc(request).l3.add_router_interface(session, caller, router_id, body)
        return json_response(out)

    async def remove_interface(request: Request, router_id: str) -> Response:
        caller = await caller_of(request)
        body = await body_of(request)
        async with svc(request).write() as session:
            out = await svc(request).l3.remove_router_interface(session, caller, router_id, body)
        return json_response(out)

    def extraroutes(add: bool) -> Callable[[Request, str], Awaitable[Response]]:
        async def handler(request: Request, router_id: str) -> Response:
            caller = await caller_of(request)
            body = await body_of(request)
            service = svc(request).l3
            async with svc(request).write() as session:
                await service.change_extraroutes(session, caller, router_id, body, add)
                item = await service.get_router(session, caller, router_id)
            return one("router", item)
        return handler

    def subports(add: bool) -> Callable[[Request, str], Awaitable[Response]]:
        async def handler(request: Request, trunk_id: str) -> Response:
            caller = await caller_of(request)
            body = await body_of(request)
            service = svc(request).l3
            async with svc(request).write() as session:
                await service.change_subports(session, caller, trunk_id, body, add)
                item = await service.get_trunk(session, caller, trunk_id)
            return json_response(item)
        return handler

    async def get_subports(request: Request, trunk_id: str) -> Response:
        caller = await caller_of(request)
        async with svc(request).db.read() as session:
            items = await svc(request).l3.get_subports(session, caller, trunk_id)
        return json_response({"sub_ports": items})

    routers = V2 + "/routers/{router_id}"
    app.add_api_route(routers + "/add_router_interface", add_interface, methods=["PUT"])
    app.add_api_route(routers + "/remove_router_interface", remove_interface, methods=["PUT"])
    app.add_api_route(routers + "/add_extraroutes", extraroutes(True), methods=["PUT"])
    app.add_api_route(routers + "/remove_extraroutes", extraroutes(False), methods=["PUT"])
    trunks = V2 + "/trunks/{trunk_id}"
    app.add_api_route(trunks + "/add_subports", subports(True), methods=["PUT"])
    app.add_api_route(trunks + "/remove_subports", subports(False), methods=["PUT"])
    app.add_api_route(trunks + "/get_subports", get_subports, methods=["GET"])


# ---------------------------------------------------------------------- port forwardings


def _forwarding_routes(app: FastAPI) -> None:
    base = V2 + "/floatingips/{fip_id}/port_forwardings"

    async def list_(request: Request, fip_id: str) -> Response:
        async def lister(*args: Any) -> Any:
            return await svc(request).l3.list_port_forwardings(args[0], fip_id, *args[1:])

        return await listed(request, "port_forwardings", lister)

    async def create(request: Request, fip_id: str) -> Response:
        caller = await caller_of(request)
        body = sl.parse(await body_of(request), "port_forwarding", True, caller.project_id, caller.is_admin)
        service = svc(request).l3
        async with svc(request).write() as session:
            pf_id = await service.create_port_forwarding(session, caller, fip_id, body)
            item = await service.get_port_forwarding(session, caller, fip_id, pf_id)
        return one("port_forwarding", item, status=201)

    async def show(request: Request, fip_id: str, pf_id: str) -> Response:
        caller = await caller_of(request)
        async with svc(request).db.read() as session:
            item = await svc(request).l3.get_port_forwarding(session, caller, fip_id, pf_id)
        return one("port_forwarding", item, query(request))

    async def update(request: Request, fip_id: str, pf_id: str) -> Response:
        caller = await caller_of(request)
        body = sl.parse(await body_of(request), "port_forwarding", False)
        service = svc(request).l3
        async with svc(request).write() as session:
            await service.update_port_forwarding(session, caller, fip_id, pf_id, body)
            item = await service.get_port_forwarding(session, caller, fip_id, pf_id)
        return one("port_forwarding", item)

    async def delete(request: Request, fip_id: str, pf_id: str) -> Response:
        caller = await caller_of(request)
        async with svc(request).write() as session:
            await svc(request).l3.delete_port_forwarding(session, caller, fip_id, pf_id)
        return no_content()

    app.add_api_route(base, list_, methods=["GET"])
    app.add_api_route(base, create, methods=["POST"])
    app.add_api_route(base + "/{pf_id}", show, methods=["GET"])
    app.add_api_route(base + "/{pf_id}", update, methods=["PUT"])
    app.add_api_route(base + "/{pf_id}", delete, methods=["DELETE"])


# ---------------------------------------------------------------------- QoS rules and rule types


def _qos_rule_routes(app: FastAPI, collection: str, kind: str) -> None:
    base = V2 + "/qos/policies/{policy_id}/" + collection
    resource = collection[:-1]

    async def list_(request: Request, policy_id: str) -> Response:
        caller = await caller_of(request)
        params = query(request)
        async with svc(request).db.read() as session:
            items = await svc(request).l3.list_qos_rules(session, caller, policy_id, kind)
        for key, values in params.items():
            if key in ("fields", "limit", "marker", "page_reverse", "sort_key", "sort_dir"):
                continue
            items = [i for i in items if str(i.get(key)) in values]
        return json_response({collection: shape([_rule_body(i) for i in items], fields_of(params), [])})

    async def create(request: Request, policy_id: str) -> Response:
        caller = await caller_of(request)
        body = sl.parse(await body_of(request), resource, True, caller.project_id, caller.is_admin)
        service = svc(request).l3
        async with svc(request).write() as session:
            rule_id = await service.create_qos_rule(session, caller, policy_id, kind, body)
            item = await service.get_qos_rule(session, caller, policy_id, kind, rule_id)
        return one(resource, _rule_body(item), status=201)

    async def show(request: Request, policy_id: str, rule_id: str) -> Response:
        caller = await caller_of(request)
        async with svc(request).db.read() as session:
            item = await svc(request).l3.get_qos_rule(session, caller, policy_id, kind, rule_id)
        return one(resource, _rule_body(item), query(request))

    async def update(request: Request, policy_id: str, rule_id: str) -> Response:
        caller = await caller_of(request)
        body = sl.parse(await body_of(request), resource, False)
        service = svc(request).l3
        async with svc(request).write() as session:
            await service.update_qos_rule(session, caller, policy_id, kind, rule_id, body)
            item = await service.get_qos_rule(session, caller, policy_id, kind, rule_id)
        return one(resource, _rule_body(item))

    async def delete(request: Request, policy_id: str, rule_id: str) -> Response:
        caller = await caller_of(request)
        async with svc(request).write() as session:
            await svc(request).l3.delete_qos_rule(session, caller, policy_id, kind, rule_id)
        return no_content()

    app.add_api_route(base, list_, methods=["GET"])
    app.add_api_route(base, create, methods=["POST"])
    app.add_api_route(base + "/{rule_id}", show, methods=["GET"])
    app.add_api_route(base + "/{rule_id}", update, methods=["PUT"])
    app.add_api_route(base + "/{rule_id}", delete, methods=["DELETE"])


def _rule_body(item: dict[str, Any]) -> dict[str, Any]:
    """A rule as its own collection renders it (Neutron leaves out ``type`` there)."""
    return {k: v for k, v in item.items() if k != "type"}


def _rule_type_routes(app: FastAPI) -> None:
    async def list_(request: Request) -> Response:
        caller = await caller_of(request)
        caller.enforce("get_rule_type", {"project_id": caller.project_id})
        return json_response({"rule_types": [{"type": t} for t in svc(request).l3.rule_types()]})

    async def show(request: Request, rule_type: str) -> Response:
        caller = await caller_of(request)
        caller.enforce("get_rule_type", {"project_id": caller.project_id})
        service = svc(request).l3
        if rule_type not in service.rule_types():
            raise NeutronError(404, "HTTPNotFound", f"Rule type {rule_type} could not be found.")
        driver = svc(request).driver
        parameters = service.rule_type_parameters(rule_type)
        return json_response({"rule_type": {"type": rule_type, "drivers": [
            {"name": driver.name, "supported_parameters": parameters}]}})

    app.add_api_route(V2 + "/qos/rule-types", list_, methods=["GET"])
    app.add_api_route(V2 + "/qos/rule-types/{rule_type}", show, methods=["GET"])


# ---------------------------------------------------------------------- wiring


def add_routes(app: FastAPI) -> None:
    """Add the L3 routes to CORE's app (its fault handlers render ours as NeutronError)."""
    _action_routes(app)
    _forwarding_routes(app)
    _rule_type_routes(app)
    for collection, kind in RULE_COLLECTIONS.items():
        _qos_rule_routes(app, collection, kind)
    _rule_routes(app)
    _qos_policy_routes(app)
    for c in COLLECTIONS:
        _collection_routes(app, c)

"""Neutron v2.0 routes: parse, authorize, call service.py, render Neutron's JSON.

Faults are Neutron's ``{"NeutronError": {"type", "message", "detail"}}`` (``render_fault``, which
the L3 routes share). Lists take Neutron's query string: any attribute as a filter (repeated
= any of), ``fields``, ``sort_key``/``sort_dir``, ``limit``/``marker``/``page_reverse`` (with
``<collection>_links``), and the tag filters; a path may end in ``.json`` as Neutron allows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from pydantic import TypeAdapter
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mcloud.core.auth import authenticate, runtime_of
from mcloud.core.errors import APIError, Forbidden, install_fault_handlers, json_body
from mcloud.core.http import json_response, service_app
from mcloud.core.policy import flatten
from mcloud.core.runtime import Runtime
from mcloud.network import schemas as s
from mcloud.network.errors_core import bad_request, fault_type
from mcloud.network.service import Caller, NetworkService, Page, gc_paused

ANY = TypeAdapter(Any)
MAX_BODY = 10 << 20

#: {alias: (name, description)} of the extensions CORE implements (the data-plane ones only
#: when the driver lists them in ``driver.extensions``)
CORE_EXTENSIONS: dict[str, tuple[str, str]] = {
    "external-net": ("Neutron external network", "Adds external network attribute to network resource."),
    "provider": ("Provider Network", "Expose mapping of virtual networks to physical networks"),
    "binding": ("Port Binding", "Expose port bindings of a virtual port to external application"),
    "quotas": ("Quota management support", "Expose functions for quotas management per project"),
    "quota_details": ("Quota details management support", "Expose functions for quotas usage statistics per "
                                                           "project"),
    "project-id": ("project_id field enabled", "Extension that indicates that project_id field is enabled."),
    "pagination": ("Pagination support", "Extension that indicates that pagination is enabled."),
    "sorting": ("Sorting support", "Extension that indicates that sorting is enabled."),
    "filter-validation": ("Filter parameters validation", "Provides validation on filter parameters."),
    "empty-string-filtering": ("Empty String Filtering Extension", "Allow filtering by attributes with empty string "
                                                                   "value"),
    "ip-substring-filtering": ("IP address substring filtering", "Provides IP address substring filtering when "
                                                                  "listing ports"),
    "standard-attr-description": ("standard-attr-description", "Extension to add descriptions to standard "
                                                               "attributes"),
    "standard-attr-revisions": ("Resource revision numbers", "This extension will display the revision number of "
                                                             "neutron resources."),
    "standard-attr-timestamp": ("Resource timestamps", "Adds created_at and updated_at fields to all Neutron "
                                                       "resources that have Neutron standard attributes."),
    "standard-attr-tag": ("Tag support for resources with standard attribute: subnet, trunk, network_segment_range, "
                          "router, network, policy, subnetpool, port, security_group, floatingip",
                          "Enables to set tag on resources with standard attribute."),
    "tag": ("Tag support", "Enables to set tag on resources."),
    "tag-ext": ("Tag support for resources: subnet, subnetpool, port, router", "Extends tag support to more L2 and "
                                                                               "L3 resources."),
    "revision-if-match": ("If-Match constraints based on revision_number", "Extension indicating that If-Match "
                                                                           "based on revision_number is supported."),
    "net-mtu": ("Network MTU", "Provides MTU attribute for a network resource."),
    "net-mtu-writable": ("Network MTU (writable)", "Provides a writable MTU attribute for a network resource."),
    "availability_zone": ("Availability Zone", "The availability zone extension."),
    "network_availability_zone": ("Network Availability Zone", "Availability zone support for network."),
    "dns-integration": ("DNS Integration", "Provides integration with DNS."),
    "subnet_allocation": ("Subnet Allocation", "Enables allocation of subnets from a subnet pool"),
    "default-subnetpools": ("Default Subnetpools", "Provides ability to mark and use a subnetpool as the default."),
    "subnetpool-prefix-ops": ("Subnet Pool Prefix Operations", "Provides support for adjusting the prefix list of "
                                                               "subnet pools"),
    "address-scope": ("Address scope", "Address scopes extension."),
    "rbac-policies": ("RBAC Policies", "Allows creation and modification of policies that control tenant access to "
                                       "resources."),
    "rbac-subnetpool": ("RBAC Subnet Pool", "Add subnetpool RBAC support."),
    "rbac-address-scope": ("RBAC Address Scope", "Add address_scope RBAC support."),
    "segment": ("Segment", "Segments extension."),
    "standard-attr-segment": ("Standard Attribute Segment Extension", "Add standard attributes to Segment "
                                                                      "resource"),
    "subnet-segmentid-writable": ("Subnet SegmentID (writable)", "Provides a writable segment_id attribute for a "
                                                                  "subnet resource."),
    "subnet-service-types": ("Subnet service types", "Provides ability to set the subnet service_types field"),
    "subnet-dns-publish-fixed-ip": ("Subnet DNS publish fixed IP", "Extension to allow the publication of fixed IPs "
                                                                   "in DNS"),
    "service-type": ("Neutron Service Type Management", "API for retrieving service providers for Neutron "
                                                        "advanced services"),
    "port-security": ("Port Security", "Provides port security"),
    "allowed-address-pairs": ("Allowed Address Pairs", "Provides allowed address pairs"),
    "extra_dhcp_opt": ("Neutron Extra DHCP options", "Extra options configuration for DHCP. For example PXE boot "
                                                     "options to DHCP clients can be specified (e.g. tftp-server, "
                                                     "server-ip-address, bootfile-name)"),
}
#: CORE aliases that depend on the data plane: advertised only when ``driver.extensions`` has them
DATA_PLANE = {"port-security", "allowed-address-pairs", "extra_dhcp_opt"}
#: names and descriptions for the L3 part's aliases (the alias itself where unknown)
L3_EXTENSION_NAMES: dict[str, tuple[str, str]] = {
    "router": ("Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and "
                                    "access to external networks via a NAT gateway."),
    "ext-gw-mode": ("Neutron L3 Configurable external gateway mode", "Extension of the router abstraction for "
                                                                     "specifying whether SNAT should occur on the "
                                                                     "external gateway"),
    "extraroute": ("Neutron Extra Route", "Extra routes configuration for L3 router"),
    "extraroute-atomic": ("Atomically add/remove extra routes", "Edit extra routes of a router on server side by "
                                                                "atomically adding/removing extra routes"),
    "security-group": ("security-group", "The security groups extension."),
    "qos": ("Quality of Service", "The Quality of Service extension."),
    "trunk": ("Trunk Extension", "Provides support for trunk ports"),
    "floating-ip-port-forwarding": ("Floating IP Port Forwarding", "Allow port forwarding from floating IP port to an "
                                                                   "internal port"),
    # the names and descriptions of neutron-lib's api definitions
    "fip-port-details": ("Floating IP Port Details Extension", "Add port_details attribute to Floating IP resource"),
    "qos-default": ("QoS default policy", "Expose the QoS default policy per project"),
    "qos-rule-type-details": ("Details of QoS rule types", "Expose details about QoS rule types supported by loaded "
                                                           "backend drivers"),
    "qos-port-network-policy": ("QoS port network policy ID", "Adds a the QoS network ID to the port definition"),
    "qos-bw-limit-direction": ("Direction for QoS bandwidth limit rule", "Allow to configure QoS bandwidth limit rule "
                                                                         "with specific direction: ingress or egress"),
    "trunk-details": ("Trunk port details", "Expose trunk port details"),
    "expose-port-forwarding-in-fip": ("Expose Floating IP port forwardings", "Expose port forwarding fields in "
                                                                             "floating IP response"),
    "floating-ip-port-forwarding-description": ("Floating IP Port Forwarding new attribute description",
                                                "Add a description field to Port Forwarding rules"),
    "stateful-security-group": ("Stateful security group", "Indicates if the security group is stateful or not"),
    "security-groups-normalized-cidr": ("Normalized CIDR field for security group rules", "Add new field with "
                                                                                          "normalized "
                                                                                          "remote_ip_prefix cidr in "
                                                                                          "SG rule"),
    "security-groups-rules-belongs-to-default-sg": ("Security group rule belongs to the project's default security "
                                                    "group", "Flag to determine if the security group rule belongs "
                                                             "to the project's default security group"),
}
#: the resources GET /v2.0/ names
RESOURCES = [("subnet", "subnets"), ("network", "networks"), ("port", "ports"), ("subnetpool", "subnetpools"),
             ("address_scope", "address-scopes"), ("rbac_policy", "rbac-policies"), ("segment", "segments"),
             ("quota", "quotas")]
#: per-attribute read rules: {resource: [(attribute, rule)]}
READ_RULES = {
    "network": ["provider:network_type", "provider:physical_network", "provider:segmentation_id"],
    "port": ["binding:vif_type", "binding:vif_details", "binding:host_id", "binding:profile", "resource_request"],
    "subnet": ["segment_id"],
}


# ---------------------------------------------------------------------- faults


def render_fault(error: APIError, request: Request) -> dict[str, Any]:
    type_ = getattr(error, "type", None) or error.details.get("type") or fault_type(error)
    return {"NeutronError": {"type": type_, "message": error.message, "detail": ""}}


class StripJson:
    """``/v2.0/networks.json`` is ``/v2.0/networks``, as in Neutron."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith(".json"):
            scope = dict(scope)
            scope["path"] = scope["path"][:-5]
            scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


# ---------------------------------------------------------------------- helpers


def svc(request: Request) -> NetworkService:
    return request.app.state.network


async def caller_of(request: Request) -> Caller:
    ctx = await authenticate(request)
    policy = runtime_of(request).policy
    creds = ctx.credentials()
    await svc(request).start()

    def check(rule: str, target: dict[str, Any]) -> bool:
        if policy.rule(rule) is None:
            return policy.check("network_admin_or_owner", creds, flatten(target))
        try:
            policy.authorize(rule, creds, target)
        except Forbidden:
            return False
        return True

    return Caller(ctx.project_id, policy.check("context_is_admin", creds, {}), check)


def query(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        out.setdefault(key, []).append(value)
    return out


def paging(request: Request, params: dict[str, list[str]]) -> tuple[int | None, str | None, bool]:
    maximum = svc(request).config.pagination_max_limit
    limit: int | None = None
    if "limit" in params:
        raw = params["limit"][-1]
        try:
            limit = int(raw)
        except ValueError:
            raise bad_request(f"Bad limit request: Limit must be an integer 0 or greater and not '{raw}'.",
                              "BadRequest") from None
        if limit < 0:
            raise bad_request(f"Bad limit request: Limit must be an integer 0 or greater and not '{raw}'.",
                              "BadRequest")
        if limit == 0:
            limit = None
    if maximum > 0:
        limit = min(limit or maximum, maximum)
    marker = params.get("marker", [None])[-1]
    reverse = False
    if "page_reverse" in params:
        reverse = s.to_bool(params["page_reverse"][-1], "page_reverse")
    return limit, marker, reverse


def fields_of(params: dict[str, list[str]]) -> list[str]:
    return [f for v in params.get("fields", []) for f in v.split(",") if f]


def hidden_attrs(caller: Caller, resource: str) -> list[str]:
    """The attributes the caller may not read (Neutron's get_<resource>:<attr> rules)."""
    if caller.is_admin:
        return []
    target = {"project_id": caller.project_id, "tenant_id": caller.project_id}
    return [a for a in READ_RULES.get(resource, []) if not caller.allowed(f"get_{resource}:{a}", target)]


def shape(items: list[dict[str, Any]], fields: list[str], hidden: list[str]) -> list[dict[str, Any]]:
    """The bodies without what the caller may not read (``hidden``), cut to ``fields`` when
    asked (decided once for the request: each body is then a few lookups)."""
    if fields:
        wanted = [f for f in dict.fromkeys(fields) if f not in hidden]
        return [{f: item[f] for f in wanted if f in item} for item in items]
    if hidden:
        for item in items:
            for a in hidden:
                item.pop(a, None)
    return items


def links(request: Request, collection: str, page: Page, limit: int | None, marker: str | None,
          reverse: bool) -> dict[str, Any]:
    if limit is None:
        return {}
    base = str(request.url.remove_query_params(["marker", "page_reverse", "limit"])).split("?")[0]
    keep = [(k, v) for k, v in request.query_params.multi_items() if k not in ("marker", "page_reverse", "limit")]
    out = []

    def href(mark: str, backwards: bool) -> str:
        params = [*keep, ("limit", str(limit)), ("marker", mark)]
        if backwards:
            params.append(("page_reverse", "True"))
        return f"{base}?{urlencode(params)}"

    more_ahead = page.more if not reverse else marker is not None
    more_behind = marker is not None if not reverse else page.more
    if more_ahead and page.last:
        out.append({"rel": "next", "href": href(page.last, False)})
    if more_behind and page.first:
        out.append({"rel": "previous", "href": href(page.first, True)})
    return {f"{collection}_links": out} if out else {}


async def body_of(request: Request) -> Any:
    return await json_body(request, ANY, max_size=MAX_BODY)


# ---------------------------------------------------------------------- route factories

Lister = Callable[[NetworkService, Caller, dict[str, list[str]], int | None, str | None, bool], Any]


def collection_routes(app: FastAPI, resource: str, collection: str, *, lister: Lister, shower: Any, creator: Any,
                      updater: Any, deleter: Any, bulk: bool = True) -> None:
    path = f"/v2.0/{collection}"

    async def list_(request: Request) -> Response:
        caller = await caller_of(request)
        params = query(request)
        limit, marker, reverse = paging(request, params)
        # a list makes thousands of acyclic bodies: the cyclic collector stays off until they are
        # encoded and freed (re-enabled earlier, it would walk them all at the next allocation)
        with gc_paused():
            page = await lister(svc(request), caller, params, limit, marker, reverse)
            items = shape(page.items, fields_of(params), hidden_attrs(caller, resource))
            response = json_response({collection.replace("-", "_"): items,
                                      **links(request, collection.replace("-", "_"), page, limit, marker, reverse)})
            del page, items
        return response

    async def create(request: Request) -> Response:
        caller = await caller_of(request)
        raw = await body_of(request)
        key = collection.replace("-", "_")
        if bulk:
            bodies, many = s.bulk_bodies(raw, resource, key)
        else:
            bodies, many = [s.resource_body(raw, resource, True)], False
        created = await creator(svc(request), caller, bodies)
        hidden = hidden_attrs(caller, resource)
        items = shape(created if isinstance(created, list) else [created], [], hidden)
        return json_response({key: items} if many else {resource: items[0]}, status=201)

    async def show(request: Request) -> Response:
        caller = await caller_of(request)
        params = query(request)
        item = await shower(svc(request), caller, request.path_params["id"])
        return json_response({resource: shape([item], fields_of(params), hidden_attrs(caller, resource))[0]})

    async def update(request: Request) -> Response:
        caller = await caller_of(request)
        body = s.resource_body(await body_of(request), resource, False)
        item = await updater(svc(request), caller, request.path_params["id"], body, request.headers.get("if-match"))
        return json_response({resource: shape([item], [], hidden_attrs(caller, resource))[0]})

    async def delete(request: Request) -> Response:
        caller = await caller_of(request)
        await deleter(svc(request), caller, request.path_params["id"])
        return Response(status_code=204)

    app.add_api_route(path, list_, methods=["GET"])
    app.add_api_route(path, create, methods=["POST"])
    app.add_api_route(path + "/{id}", show, methods=["GET"])
    app.add_api_route(path + "/{id}", update, methods=["PUT"])
    app.add_api_route(path + "/{id}", delete, methods=["DELETE"])


# ---------------------------------------------------------------------- version documents, extensions


def extension_aliases(network: NetworkService) -> list[str]:
    have = network.driver.extensions
    core = {a for a in CORE_EXTENSIONS if a not in DATA_PLANE or a in have}
    return sorted(core | set(network.l3.extension_aliases()))


def extension_doc(alias: str) -> dict[str, Any]:
    name, description = CORE_EXTENSIONS.get(alias) or L3_EXTENSION_NAMES.get(alias) or (alias, alias)
    return {"alias": alias, "name": name, "description": description, "updated": "2013-01-01T10:00:00-00:00",
            "links": []}


def base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"


async def versions(request: Request) -> Response:
    return json_response({"versions": [{"id": "v2.0", "status": "CURRENT",
                                        "links": [{"href": base_url(request) + "/v2.0/", "rel": "self"}]}]})


async def v2_root(request: Request) -> Response:
    base = base_url(request) + "/v2.0"
    return json_response({"resources": [{"name": name, "collection": coll,
                                         "links": [{"href": f"{base}/{coll}", "rel": "self"}]}
                                        for name, coll in RESOURCES]})


async def list_extensions(request: Request) -> Response:
    await caller_of(request)
    return json_response({"extensions": [extension_doc(a) for a in extension_aliases(svc(request))]})


async def show_extension(request: Request) -> Response:
    await caller_of(request)
    alias = request.path_params["alias"]
    if alias not in extension_aliases(svc(request)):
        raise _ext_missing(alias)
    return json_response({"extension": extension_doc(alias)})


def _ext_missing(alias: str) -> APIError:
    from mcloud.network.errors_core import NeutronError
    return NeutronError(404, "HTTPNotFound", f"Extension with alias {alias} does not exist")


async def availability_zones(request: Request) -> Response:
    caller = await caller_of(request)
    caller.enforce("get_availability_zone", {"project_id": caller.project_id})
    from mcloud.network.service import AVAILABILITY_ZONES
    zones = [{"name": z, "resource": r, "state": "available"} for z in AVAILABILITY_ZONES
             for r in ("network", "router")]
    params = query(request)
    for key in ("name", "resource", "state"):
        if key in params:
            zones = [z for z in zones if z[key] in params[key]]
    return json_response({"availability_zones": zones})


async def service_providers(request: Request) -> Response:
    """The service providers (service-type): the L3 routers' driver, when the L3 API is there."""
    caller = await caller_of(request)
    network = svc(request)
    providers = []
    if "router" in network.l3.extension_aliases():
        providers.append({"service_type": "L3_ROUTER_NAT", "name": network.driver.name, "default": True})
    params = query(request)
    for key in ("service_type", "name"):
        if key in params:
            providers = [p for p in providers if p[key] in params[key]]
    del caller
    return json_response({"service_providers": shape(providers, fields_of(params), [])})


async def agents(request: Request) -> Response:
    """No Neutron agents run (OVN needs none, and the agent API is not offered): an empty list,
    so `openstack network agent list` answers rather than fails."""
    await caller_of(request)
    return json_response({"agents": []})


# ---------------------------------------------------------------------- quotas, tags, subnet pool prefixes


async def list_quotas(request: Request) -> Response:
    caller = await caller_of(request)
    return json_response({"quotas": await svc(request).extras.list_quotas(caller)})


async def show_quota(request: Request) -> Response:
    caller = await caller_of(request)
    return json_response({"quota": await svc(request).extras.show_quota(caller, request.path_params["project_id"])})


async def quota_defaults(request: Request) -> Response:
    caller = await caller_of(request)
    return json_response({"quota": await svc(request).extras.show_quota(caller, request.path_params["project_id"],
                                                                         defaults=True)})


async def quota_details(request: Request) -> Response:
    caller = await caller_of(request)
    return json_response({"quota": await svc(request).extras.show_quota(caller, request.path_params["project_id"],
                                                                         details=True)})


async def update_quota(request: Request) -> Response:
    caller = await caller_of(request)
    quota = await svc(request).extras.update_quota(caller, request.path_params["project_id"], await body_of(request))
    return json_response({"quota": quota})


async def delete_quota(request: Request) -> Response:
    caller = await caller_of(request)
    await svc(request).extras.delete_quota(caller, request.path_params["project_id"])
    return Response(status_code=204)


async def own_quota(request: Request) -> Response:
    caller = await caller_of(request)
    return json_response({"tenant": {"tenant_id": caller.project_id}, "project": {"project_id": caller.project_id}})


async def get_tags(request: Request) -> Response:
    caller = await caller_of(request)
    p = request.path_params
    return json_response({"tags": await svc(request).extras.get_tags(caller, p["collection"], p["id"])})


async def replace_tags(request: Request) -> Response:
    caller = await caller_of(request)
    p = request.path_params
    tags = await svc(request).extras.replace_tags(caller, p["collection"], p["id"], await body_of(request))
    return json_response({"tags": tags})


async def delete_tags(request: Request) -> Response:
    caller = await caller_of(request)
    p = request.path_params
    await svc(request).extras.remove_tags(caller, p["collection"], p["id"], None)
    return Response(status_code=204)


async def check_tag(request: Request) -> Response:
    caller = await caller_of(request)
    p = request.path_params
    await svc(request).extras.has_tag(caller, p["collection"], p["id"], p["tag"])
    return Response(status_code=204)


async def add_tag(request: Request) -> Response:
    caller = await caller_of(request)
    p = request.path_params
    await svc(request).extras.add_tag(caller, p["collection"], p["id"], p["tag"])
    return Response(status_code=201)


async def delete_tag(request: Request) -> Response:
    caller = await caller_of(request)
    p = request.path_params
    await svc(request).extras.remove_tags(caller, p["collection"], p["id"], p["tag"])
    return Response(status_code=204)


def prefix_route(add: bool) -> Callable[[Request], Any]:
    async def route(request: Request) -> Response:
        caller = await caller_of(request)
        out = await svc(request).extras.change_prefixes(caller, request.path_params["id"], await body_of(request), add)
        return json_response(out)
    return route


# ---------------------------------------------------------------------- the app


def build(runtime: Runtime, network: NetworkService) -> FastAPI:
    from mcloud.network import api_l3
    from mcloud.network.policies_l3 import L3_SCOPE_TYPES

    runtime.policy.register_scope_types(L3_SCOPE_TYPES)
    app = service_app("mCloud Networking v2.0", runtime=runtime, network=network)
    install_fault_handlers(app, render_fault, www_authenticate=lambda r: f'Keystone uri="{_identity_url(r)}"')
    app.add_middleware(StripJson)
    app.add_api_route("/", versions, methods=["GET"])
    app.add_api_route("/v2.0", v2_root, methods=["GET"])
    app.add_api_route("/v2.0/", v2_root, methods=["GET"])
    app.add_api_route("/v2.0/extensions", list_extensions, methods=["GET"])
    app.add_api_route("/v2.0/extensions/{alias}", show_extension, methods=["GET"])
    app.add_api_route("/v2.0/availability_zones", availability_zones, methods=["GET"])
    app.add_api_route("/v2.0/service-providers", service_providers, methods=["GET"])
    app.add_api_route("/v2.0/agents", agents, methods=["GET"])
    x = network.extras
    collection_routes(
        app, "network", "networks",
        lister=lambda n, c, p, lim, mk, rev: n.list_networks(c, p, lim, mk, rev),
        shower=lambda n, c, i: n.show_network(c, i), creator=lambda n, c, b: n.create_networks(c, b),
        updater=lambda n, c, i, b, m: n.update_network(c, i, b, m), deleter=lambda n, c, i: n.delete_network(c, i))
    collection_routes(
        app, "subnet", "subnets",
        lister=lambda n, c, p, lim, mk, rev: n.list_subnets(c, p, lim, mk, rev),
        shower=lambda n, c, i: n.show_subnet(c, i), creator=lambda n, c, b: n.create_subnets(c, b),
        updater=lambda n, c, i, b, m: n.update_subnet(c, i, b, m), deleter=lambda n, c, i: n.delete_subnet(c, i))
    collection_routes(
        app, "port", "ports",
        lister=lambda n, c, p, lim, mk, rev: n.list_ports(c, p, lim, mk, rev),
        shower=lambda n, c, i: n.show_port(c, i), creator=lambda n, c, b: n.create_ports(c, b),
        updater=lambda n, c, i, b, m: n.update_port(c, i, b, m), deleter=lambda n, c, i: n.delete_port(c, i))

    collection_routes(
        app, "subnetpool", "subnetpools",
        lister=lambda n, c, p, lim, mk, rev: x.list_pools(c, p, lim, mk, rev),
        shower=lambda n, c, i: x.show_pool(c, i), creator=lambda n, c, b: _each(x.create_pool, c, b),
        updater=lambda n, c, i, b, m: x.update_pool(c, i, b, m), deleter=lambda n, c, i: x.delete_pool(c, i))
    collection_routes(
        app, "address_scope", "address-scopes",
        lister=lambda n, c, p, lim, mk, rev: x.list_scopes(c, p, lim, mk, rev),
        shower=lambda n, c, i: x.show_scope(c, i), creator=lambda n, c, b: _each(x.create_scope, c, b),
        updater=lambda n, c, i, b, m: x.update_scope(c, i, b), deleter=lambda n, c, i: x.delete_scope(c, i))
    collection_routes(
        app, "rbac_policy", "rbac-policies", bulk=False,
        lister=lambda n, c, p, lim, mk, rev: x.list_rbac(c, p, lim, mk, rev),
        shower=lambda n, c, i: x.show_rbac(c, i), creator=lambda n, c, b: _each(x.create_rbac, c, b),
        updater=lambda n, c, i, b, m: x.update_rbac(c, i, b), deleter=lambda n, c, i: x.delete_rbac(c, i))
    collection_routes(
        app, "segment", "segments",
        lister=lambda n, c, p, lim, mk, rev: x.list_segments(c, p, lim, mk, rev),
        shower=lambda n, c, i: x.show_segment(c, i), creator=lambda n, c, b: _each(x.create_segment, c, b),
        updater=lambda n, c, i, b, m: x.update_segment(c, i, b), deleter=lambda n, c, i: x.delete_segment(c, i))
    app.add_api_route("/v2.0/subnetpools/{id}/add_prefixes", prefix_route(True), methods=["PUT"])
    app.add_api_route("/v2.0/subnetpools/{id}/remove_prefixes", prefix_route(False), methods=["PUT"])
    app.add_api_route("/v2.0/quotas", list_quotas, methods=["GET"])
    app.add_api_route("/v2.0/quotas/tenant", own_quota, methods=["GET"])
    app.add_api_route("/v2.0/quotas/project", own_quota, methods=["GET"])
    app.add_api_route("/v2.0/quotas/{project_id}", show_quota, methods=["GET"])
    app.add_api_route("/v2.0/quotas/{project_id}", update_quota, methods=["PUT"])
    app.add_api_route("/v2.0/quotas/{project_id}", delete_quota, methods=["DELETE"])
    app.add_api_route("/v2.0/quotas/{project_id}/default", quota_defaults, methods=["GET"])
    app.add_api_route("/v2.0/quotas/{project_id}/details", quota_details, methods=["GET"])
    api_l3.add_routes(app)
    tags = "/v2.0/{collection}/{id}/tags"
    app.add_api_route(tags, get_tags, methods=["GET"])
    app.add_api_route(tags, replace_tags, methods=["PUT"])
    app.add_api_route(tags, delete_tags, methods=["DELETE"])
    app.add_api_route(tags + "/{tag}", check_tag, methods=["GET"])
    app.add_api_route(tags + "/{tag}", add_tag, methods=["PUT"])
    app.add_api_route(tags + "/{tag}", delete_tag, methods=["DELETE"])
    return app


async def _each(create: Any, caller: Caller, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [await create(caller, body) for body in bodies]


def _identity_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}/identity"

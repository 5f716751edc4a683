"""Nova's network proxies over the network service (deprecated: they answer up to 2.35 and are a
404 from 2.36, as Nova's): ``/os-floating-ips`` (the project's floating IPs in Nova's shape:
``ip``, ``fixed_ip``, ``instance_id``, ``pool`` = the external network's name), ``/os-floating-ip-pools``
(the external networks), ``/os-networks`` and ``/os-tenant-networks`` (the networks the caller
sees; creating or deleting is Nova's 410, nova-network being gone), and the server actions
``addFloatingIp`` / ``removeFloatingIp`` (up to 2.43).

As Nova does with Neutron, creating a floating IP picks the pool by name or id among the
external networks; without a pool Nova uses ``[neutron] default_floating_pool``: here the one
external network when there is exactly one (else Nova's 404 "Floating IP pool not found.").
"""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.compute import models as m
from mcloud.compute import schemas as sc
from mcloud.compute.api import V21, body_of, caller_of, compute_of, respond
from mcloud.compute.service import Caller
from mcloud.core.errors import APIError, BadRequest, Conflict, Forbidden, Gone, NotFound

UNTIL = (2, 35)
ACTIONS_UNTIL = (2, 43)
FIP = "os_compute_api:os-floating-ips:"
CREATE_BODY = {"type": ["object", "null"], "properties": {"pool": {"type": ["string", "null"]}},
               "additionalProperties": False}
IP = {"type": "string", "oneOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
ADD_BODY = {"type": "object", "properties": {"address": IP, "fixed_address": IP}, "required": ["address"],
            "additionalProperties": False}
REMOVE_BODY = {"type": "object", "properties": {"address": IP}, "required": ["address"],
               "additionalProperties": False}


def _internal() -> Any:
    from mcloud.network.service import Caller as NetworkCaller  # noqa: PLC0415

    return NetworkCaller.internal()


def _network(request: Request) -> Any:
    return compute_of(request).network


async def _names(network: Any, ids: set[str]) -> dict[str, str]:
    """Network name (or id when unnamed) by id: Nova's ``pool``."""
    if not ids:
        return {}
    page = await network.list_networks(_internal(), {"id": sorted(ids)})
    return {n["id"]: n["name"] or n["id"] for n in page.items}


def _fip_view(fip: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    details = fip.get("port_details")
    return {"fixed_ip": fip.get("fixed_ip_address"), "id": fip["id"],
            "instance_id": details.get("device_id") if details else None, "ip": fip["floating_ip_address"],
            "pool": names.get(fip["floating_network_id"], fip["floating_network_id"])}


async def _fip(request: Request, caller: Caller, fip_id: str) -> dict[str, Any]:
    network = _network(request)
    try:
        async with network.db.read() as session:
            return await network.l3.get_floatingip(session, caller.network_caller(), fip_id)
    except APIError as exc:
        if exc.status == 404:
            raise NotFound(f"Floating IP not found for ID {fip_id}") from None
        raise


async def _fip_by_address(network: Any, caller: Caller, address: str) -> dict[str, Any] | None:
    if not address:
        return None
    page = await network.l3.list_floatingips(caller.network_caller(), {"floating_ip_address": [address]})
    if len(page.items) > 1:
        raise Conflict(f"Multiple floating IPs are found for address {address}.")
    return page.items[0] if page.items else None


# ---------------------------------------------------------------------- os-floating-ips


async def list_floating_ips(request: Request) -> Response:
    caller = await caller_of(request, FIP + "list", until=UNTIL)
    network = _network(request)
    page = await network.l3.list_floatingips(caller.network_caller(), {"project_id": [caller.project_id or ""]})
    names = await _names(network, {f["floating_network_id"] for f in page.items})
    return respond({"floating_ips": [_fip_view(f, names) for f in page.items]})


async def show_floating_ip(request: Request, fip_id: str) -> Response:
    caller = await caller_of(request, FIP + "show", until=UNTIL)
    fip = await _fip(request, caller, fip_id)
    names = await _names(_network(request), {fip["floating_network_id"]})
    return respond({"floating_ip": _fip_view(fip, names)})


async def _pool_id(network: Any, pool: str | None) -> str:
    """Nova's _get_floating_ip_pool_id_by_name_or_id among the external networks."""
    params: dict[str, list[str]] = {"router:external": ["true"]}
    if pool is not None:
        params["id" if sc.is_uuid(pool) else "name"] = [pool]
    nets = (await network.list_networks(_internal(), params)).items
    if len(nets) == 1:
        return str(nets[0]["id"])
    if len(nets) > 1 and pool is not None:
        raise BadRequest(f"Multiple floating IP pools matches found for name '{pool}'")
    raise NotFound("Floating IP pool not found.")


async def create_floating_ip(request: Request) -> Response:
    caller = await caller_of(request, FIP + "create", until=UNTIL)
    raw = await request.body()
    body = sc.validate(await body_of(request), CREATE_BODY) if raw.strip() else {}
    pool = (body or {}).get("pool")
    network = _network(request)
    pool_id = await _pool_id(network, pool)
    try:
        async with network.write() as session:
            fip_id = await network.l3.create_floatingip(session, caller.network_caller(), {
                "project_id": caller.project_id, "floating_network_id": pool_id})
            fip = await network.l3.get_floatingip(session, _internal(), fip_id)
    except APIError as exc:
        where = f" in pool {pool}" if pool else ""
        if exc.status == 409 and "quota" in exc.message.lower() or exc.status == 403:
            raise Forbidden(f"IP allocation over quota{where}.") from None
        if exc.status == 409:
            raise NotFound(f"No more floating IPs in pool {pool}." if pool else "No more floating IPs available.") \
                from None
        if exc.status == 400:
            raise BadRequest(exc.message) from None
        raise
    names = await _names(network, {fip["floating_network_id"]})
    return respond({"floating_ip": _fip_view(fip, names)})


async def delete_floating_ip(request: Request, fip_id: str) -> Response:
    caller = await caller_of(request, FIP + "delete", until=UNTIL)
    await _fip(request, caller, fip_id)
    network = _network(request)
    try:
        async with network.write() as session:
            await network.l3.delete_floatingip(session, caller.network_caller(), fip_id)
    except APIError as exc:
        if exc.status == 404:
            raise NotFound(f"Floating IP not found for ID {fip_id}") from None
        if exc.status == 403:
            raise Forbidden(exc.message) from None
        raise
    return respond(None, 202)


async def list_floating_ip_pools(request: Request) -> Response:
    await caller_of(request, "os_compute_api:os-floating-ip-pools", target={}, until=UNTIL)
    nets = (await _network(request).list_networks(_internal(), {"router:external": ["true"]})).items
    return respond({"floating_ip_pools": [{"name": n["name"] or n["id"]} for n in nets]})


# ---------------------------------------------------------------------- addFloatingIp / removeFloatingIp


async def add_floating_ip(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance,
                    value: Any) -> Any:
    """The ``addFloatingIp`` action (up to 2.43): the floating IP onto the server's first fixed
    IPv4 address (or ``fixed_address``); Neutron's refusal (that address has a floating IP
    already, no router to its external network) is Nova's 400."""
    if caller.at(2, 44):
        raise NotFound("The resource could not be found.")
    sc.validate(value, ADD_BODY)
    caller.authorize(FIP + "add", {"project_id": inst.project_id})
    address, wanted = value["address"], value.get("fixed_address")
    uuid = inst.uuid

    async def after() -> Response:
        compute = servers.compute
        ports = (await servers.ports_of([uuid]))[uuid]
        if not ports:
            raise BadRequest("Instance network is not ready yet")
        fixed = [(p["id"], ip["ip_address"]) for p in ports for ip in p.get("fixed_ips") or []]
        if not fixed:
            raise BadRequest("No fixed IPs associated to instance")
        if wanted:
            chosen = next(((p, a) for p, a in fixed if a == wanted), None)
            if chosen is None:
                raise BadRequest("Specified fixed address not assigned to instance")
        else:
            chosen = next(((p, a) for p, a in fixed if ipaddress.ip_address(a).version == 4), None)
            if chosen is None:
                raise BadRequest(f"Unable to associate floating IP {address} to any fixed IPs for instance {uuid}. "
                                 "Instance has no fixed IPv4 addresses to associate.")
        fip = await _fip_by_address(compute.network, caller, address)
        if fip is None:
            raise NotFound("floating IP not found")
        try:
            await _update_fip(compute.network, caller, fip["id"], {"port_id": chosen[0],
                                                                   "fixed_ip_address": chosen[1]})
        except APIError as exc:
            if exc.status == 403:
                raise Forbidden(exc.message) from None
            raise BadRequest(f"Unable to associate floating IP {address} to fixed IP {chosen[1]} for instance "
                             f"{uuid}. Error: {exc.message}" if exc.status != 409 else exc.message) from None
        return respond(None, 202)
    return after


async def _update_fip(network: Any, caller: Caller, fip_id: str, body: dict[str, Any]) -> None:
    async with network.write() as session:
        await network.l3.update_floatingip(session, caller.network_caller(), fip_id, body)


async def remove_floating_ip(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance,
                       value: Any) -> Any:
    """The ``removeFloatingIp`` action (up to 2.43): 409 when the address is not on this server."""
    if caller.at(2, 44):
        raise NotFound("The resource could not be found.")
    sc.validate(value, REMOVE_BODY)
    address, uuid = value["address"], inst.uuid

    async def after() -> Response:
        network = servers.compute.network
        fip = await _fip_by_address(network, caller, address)
        if fip is None:
            raise NotFound("floating IP not found")
        details = fip.get("port_details") or {}
        owner = details.get("device_id") if fip.get("port_id") else None
        target = {"project_id": inst.project_id} if owner == uuid else {}
        caller.authorize(FIP + "remove", target or {"project_id": fip.get("project_id")})
        if owner != uuid:
            raise Conflict(f"Floating IP {address} is not associated with instance {uuid}.")
        try:
            await _update_fip(network, caller, fip["id"], {"port_id": None})
        except APIError as exc:
            if exc.status == 403:
                raise Forbidden(exc.message) from None
            raise
        return respond(None, 202)
    return after


# ---------------------------------------------------------------------- os-networks, os-tenant-networks

_ADMIN_FIELDS = ("created_at", "updated_at", "deleted_at", "deleted", "injected", "bridge", "vlan",
                 "vpn_public_address", "vpn_public_port", "vpn_private_address", "dhcp_start", "project_id", "host",
                 "bridge_interface", "multi_host", "priority", "rxtx_base", "mtu", "dhcp_server", "enable_dhcp",
                 "share_address")
_FIELDS = ("id", "cidr", "netmask", "gateway", "broadcast", "dns1", "dns2", "cidr_v6", "gateway_v6", "label",
           "netmask_v6")


def _network_view(caller: Caller, net: dict[str, Any]) -> dict[str, Any]:
    """Nova's os-networks body over Neutron: id and label (the name); every nova-network field is None."""
    fields = _FIELDS + (_ADMIN_FIELDS if caller.is_admin else ())
    out: dict[str, Any] = dict.fromkeys(fields)
    out["id"], out["label"] = net["id"], net["name"]
    return out


def _tenant_network_view(net: dict[str, Any]) -> dict[str, Any]:
    # "cidr" is the string "None", as Nova has always answered over Neutron
    return {"id": net["id"], "cidr": "None", "label": net["name"]}


async def _show_network(request: Request, caller: Caller, network_id: str) -> dict[str, Any]:
    try:
        return await _network(request).show_network(caller.network_caller(), network_id)
    except APIError as exc:
        if exc.status == 404:
            raise NotFound("Network not found") from None
        raise


def _networks(rule: str, view: Any) -> tuple[Any, Any]:
    async def index(request: Request) -> Response:
        caller = await caller_of(request, rule + "list", until=UNTIL)
        page = await _network(request).list_networks(caller.network_caller(), {})
        return respond({"networks": [view(caller, n) for n in page.items]})

    async def show(request: Request, network_id: str) -> Response:
        caller = await caller_of(request, rule + "show", until=UNTIL)
        return respond({"network": view(caller, await _show_network(request, caller, network_id))})
    return index, show


async def _gone(request: Request) -> Response:
    await caller_of(request)
    raise Gone("This API only works with nova-network, which was removed in the 21.0.0 (Ussuri) release.")


async def _gone_id(request: Request, network_id: str) -> Response:
    return await _gone(request)


def add_routes(app: FastAPI) -> None:
    route = app.add_api_route
    f = V21 + "/os-floating-ips"
    route(f, list_floating_ips, methods=["GET"])
    route(f, create_floating_ip, methods=["POST"])
    route(f + "/{fip_id}", show_floating_ip, methods=["GET"])
    route(f + "/{fip_id}", delete_floating_ip, methods=["DELETE"])
    route(V21 + "/os-floating-ip-pools", list_floating_ip_pools, methods=["GET"])
    for path, rule, view in (("/os-networks", "os_compute_api:os-networks:", _network_view),
                             ("/os-tenant-networks", "os_compute_api:os-tenant-networks:",
                              lambda caller, net: _tenant_network_view(net))):
        index, show = _networks(rule, view)
        route(V21 + path, index, methods=["GET"])
        route(V21 + path, _gone, methods=["POST"])
        route(V21 + path + "/{network_id}", show, methods=["GET"])
        route(V21 + path + "/{network_id}", _gone_id, methods=["DELETE"])
    route(V21 + "/os-networks/add", _gone, methods=["POST"])
    route(V21 + "/os-networks/{network_id}/action", _gone_id, methods=["POST"])


__all__ = ["add_floating_ip", "add_routes", "remove_floating_ip"]

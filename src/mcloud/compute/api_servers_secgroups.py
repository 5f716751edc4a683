"""Nova's security group proxy over the network service (``/os-security-groups`` and
``/os-security-group-rules``, up to 2.35 as Nova's, a 404 from 2.36) and a server's groups
(``/servers/{id}/os-security-groups``, every microversion): Neutron's groups in Nova's shape
(``tenant_id``, ingress rules only, ``ip_protocol``/``from_port``/``to_port``, ``ip_range`` or
``group``), Nova's rule checks (nova/network/security_group_api.py) before Neutron's.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.compute import schemas as sc
from mcloud.compute.api import V21, body_of, caller_of, compute_of, query, respond
from mcloud.compute.service import Caller
from mcloud.core.errors import APIError, BadRequest, NotFound

UNTIL = (2, 35)
RULE = "os_compute_api:os-security-groups:"
GROUP_BODY = {"type": "object", "properties": {"security_group": {
    "type": "object", "properties": {"name": {"type": "string", "maxLength": 255},
                                     "description": {"type": "string", "maxLength": 255}},
    "required": ["name", "description"], "additionalProperties": False}},
    "required": ["security_group"], "additionalProperties": False}
PORT = {"type": ["integer", "string", "null"]}
RULE_BODY = {"type": "object", "properties": {"security_group_rule": {
    "type": "object", "properties": {"parent_group_id": {"type": ["string", "integer"]}, "to_port": PORT,
                                     "from_port": PORT, "ip_protocol": {"type": ["string", "null"]},
                                     "cidr": {"type": ["string", "null"]},
                                     "group_id": {"type": ["string", "integer", "null"]}},
    "required": ["parent_group_id"], "additionalProperties": False}},
    "required": ["security_group_rule"], "additionalProperties": False}


def _network(request: Request) -> Any:
    return compute_of(request).network


def _nova_rule(rule: dict[str, Any], groups: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Nova's rule from Neutron's (None when its remote group is gone)."""
    protocol = rule.get("protocol")
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    if protocol and low is None and high is None:
        low, high = (1, 65535) if str(protocol).upper() in ("TCP", "UDP") else (-1, -1)
    out: dict[str, Any] = {"id": rule["id"], "parent_group_id": rule["security_group_id"], "ip_protocol": protocol,
                           "from_port": low, "to_port": high, "group": {}, "ip_range": {}}
    remote = rule.get("remote_group_id")
    if remote:
        group = groups.get(remote)
        if group is None:
            return None
        out["group"] = {"name": group.get("name"), "tenant_id": group.get("project_id")}
    else:
        out["ip_range"] = {"cidr": rule.get("remote_ip_prefix") or "0.0.0.0/0"}
    return out


def _nova_group(group: dict[str, Any], groups: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rules = [_nova_rule(r, groups) for r in group.get("security_group_rules") or [] if r.get("direction") == "ingress"]
    return {"id": group["id"], "name": group["name"], "description": group.get("description") or "",
            "tenant_id": group.get("project_id") or group.get("tenant_id"), "rules": [r for r in rules if r]}


def _sorted(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(groups, key=lambda g: (g["tenant_id"] or "", g["name"]))


def _check_id(value: Any) -> str:
    if not isinstance(value, str) or not sc.is_uuid(value):
        raise BadRequest("Security group id should be uuid")
    return value


async def _group(request: Request, caller: Caller, group_id: Any) -> dict[str, Any]:
    network = _network(request)
    try:
        async with network.db.read() as session:
            return await network.l3.get_security_group(session, caller.network_caller(), _check_id(group_id))
    except APIError as exc:
        if exc.status == 404:
            raise NotFound(f"Security group {group_id} not found.") from None
        raise


async def _known_groups(request: Request, caller: Caller, groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The groups the rules name as remote groups, by id (the listed ones and any other the caller sees)."""
    known = {g["id"]: g for g in groups}
    wanted = {r["remote_group_id"] for g in groups for r in g.get("security_group_rules") or []
              if r.get("remote_group_id") and r["remote_group_id"] not in known}
    if wanted:
        page = await _network(request).l3.list_security_groups(caller.network_caller(), {"id": sorted(wanted)})
        known.update({g["id"]: g for g in page.items})
    return known


# ---------------------------------------------------------------------- groups


async def list_groups(request: Request) -> Response:
    caller = await caller_of(request, RULE + "get", until=UNTIL)
    params = query(request)
    filters: dict[str, list[str]] = {}
    if not (caller.is_admin and "all_tenants" in params):
        filters["project_id"] = [caller.project_id or ""]
    page = await _network(request).l3.list_security_groups(caller.network_caller(), filters)
    groups = list(page.items)
    known = await _known_groups(request, caller, groups)
    out = _sorted([_nova_group(g, known) for g in groups])
    limit = sc.query_limit(params)
    offset = int(params.get("offset", ["0"])[-1]) if params.get("offset", ["0"])[-1].isdigit() else 0
    out = out[offset:] if limit is None else out[offset:offset + limit]
    return respond({"security_groups": out})


async def show_group(request: Request, group_id: str) -> Response:
    caller = await caller_of(request, RULE + "show", until=UNTIL)
    group = await _group(request, caller, group_id)
    return respond({"security_group": _nova_group(group, await _known_groups(request, caller, [group]))})


async def create_group(request: Request) -> Response:
    caller = await caller_of(request, RULE + "create", until=UNTIL)
    body = sc.validate(await body_of(request), GROUP_BODY)["security_group"]
    network = _network(request)
    from mcloud.network import schemas_l3 as sl  # noqa: PLC0415

    ncaller = caller.network_caller()
    try:
        converted = sl.convert("security_group", {"name": body["name"], "description": body["description"]}, True,
                               caller.project_id, caller.is_admin)
        async with network.write() as session:
            new = await network.l3.create_security_group(session, ncaller, converted)
            group = await network.l3.get_security_group(session, ncaller, new)
    except APIError as exc:
        if exc.status == 409:
            from mcloud.core.errors import Forbidden  # noqa: PLC0415

            raise Forbidden(exc.message) from None
        raise
    return respond({"security_group": _nova_group(group, {})})


async def update_group(request: Request, group_id: str) -> Response:
    caller = await caller_of(request, RULE + "update", until=UNTIL)
    await _group(request, caller, group_id)
    body = sc.validate(await body_of(request), GROUP_BODY)["security_group"]
    network = _network(request)
    from mcloud.network import schemas_l3 as sl  # noqa: PLC0415

    ncaller = caller.network_caller()
    converted = sl.convert("security_group", {"name": body["name"], "description": body["description"]}, False)
    async with network.write() as session:
        await network.l3.update_security_group(session, ncaller, group_id, converted, None)
        group = await network.l3.get_security_group(session, ncaller, group_id)
    return respond({"security_group": _nova_group(group, await _known_groups(request, caller, [group]))})


async def delete_group(request: Request, group_id: str) -> Response:
    caller = await caller_of(request, RULE + "delete", until=UNTIL)
    await _group(request, caller, group_id)
    network = _network(request)
    try:
        async with network.write() as session:
            await network.l3.delete_security_group(session, caller.network_caller(), group_id)
    except APIError as exc:
        if exc.status in (403, 409):  # in use, or the default group: Nova's Invalid
            raise BadRequest(exc.message) from None
        raise
    return respond(None, 202)


# ---------------------------------------------------------------------- rules


def _port(value: Any, icmp: bool) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest("Type and Code must be integers for ICMP protocol type" if icmp else
                         "To and From ports must be integers") from None


def _new_rule(protocol: str | None, low: Any, high: Any, group_id: str | None, cidr: str | None) -> dict[str, Any] | None:
    """Nova's _new_ingress_rule: the rule's values, or None when a CIDR rule lacks protocol/ports."""
    values: dict[str, Any] = {}
    upper = str(protocol).upper() if protocol else ""
    if group_id:
        values["group_id"] = group_id
        if low is None and high is None:
            low, high = (-1, -1) if upper == "ICMP" else ((1, 65535) if upper in ("TCP", "UDP") else (None, None))
    else:
        values["cidr"] = cidr
    if protocol and low is not None and high is not None:
        low, high = _port(low, upper == "ICMP"), _port(high, upper == "ICMP")
        assert low is not None and high is not None
        if upper not in ("TCP", "UDP", "ICMP"):
            raise BadRequest(f"Invalid IP protocol {protocol}.")
        if upper in ("TCP", "UDP") and low > high:
            raise BadRequest(f"Invalid port range {low}:{high}. Former value cannot be greater than the later")
        if upper in ("TCP", "UDP") and (low < 1 or high > 65535):
            raise BadRequest(f"Invalid port range {low}:{high}. Valid {upper} ports should be between 1-65535")
        if upper == "ICMP" and not (-1 <= low <= 255 and -1 <= high <= 255):
            raise BadRequest(f"Invalid port range {low}:{high}. For ICMP, the type:code must be valid")
        values.update(protocol=str(protocol), from_port=low, to_port=high)
    elif not group_id:
        return None
    return values


def _cidr(value: str | None) -> str:
    if not value:
        return "0.0.0.0/0"
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise BadRequest(f"Invalid cidr {value}.") from None
    if value.split("/")[-1] == "0" and str(net.network_address) not in ("0.0.0.0", "::"):
        raise BadRequest(f"Bad prefix for network in cidr {value}")
    return value


async def create_rule(request: Request) -> Response:
    caller = await caller_of(request, RULE + "rule:create", until=UNTIL)
    body = sc.validate(await body_of(request), RULE_BODY)["security_group_rule"]
    parent = await _group(request, caller, body["parent_group_id"])
    group_id = body.get("group_id")
    source = await _group(request, caller, group_id) if group_id is not None else None
    cidr = None if group_id is not None else _cidr(body.get("cidr"))
    new = _new_rule(body.get("ip_protocol"), body.get("from_port"), body.get("to_port"), group_id, cidr)
    if new is None:
        raise BadRequest("Not enough parameters to build a valid rule.")
    known = {g["id"]: g for g in [parent, *([source] if source else [])]}
    for rule in _nova_group(parent, known)["rules"]:
        same = (rule["ip_protocol"] == new.get("protocol") and rule["from_port"] == new.get("from_port")
                and rule["to_port"] == new.get("to_port")
                and (rule["ip_range"].get("cidr") == new.get("cidr") if not group_id else
                     bool(rule["group"]) and rule["group"].get("name") == source["name"]))  # type: ignore[index]
        if same:
            raise BadRequest(f"This rule already exists in group {parent['id']}")
    neutron: dict[str, Any] = {"direction": "ingress", "security_group_id": parent["id"],
                               "protocol": str(new["protocol"]).lower() if new.get("protocol") else None,
                               "remote_group_id": group_id, "remote_ip_prefix": new.get("cidr"),
                               "ethertype": "IPv6" if ":" in (new.get("cidr") or "") else "IPv4"}
    if new.get("from_port") not in (None, -1):
        neutron["port_range_min"] = new["from_port"]
    if new.get("to_port") not in (None, -1):
        neutron["port_range_max"] = new["to_port"]
    neutron = {k: v for k, v in neutron.items() if v is not None}
    from mcloud.network import schemas_l3 as sl  # noqa: PLC0415

    network = _network(request)
    ncaller = caller.network_caller()
    try:
        converted = sl.convert("security_group_rule", neutron, True, caller.project_id, caller.is_admin)
        async with network.write() as session:
            ids = await network.l3.create_security_group_rules(session, ncaller, [converted])
            rule = await network.l3.get_security_group_rule(session, ncaller, ids[0])
    except APIError as exc:
        if exc.status == 409:
            raise BadRequest(f"This rule already exists in group {parent['id']}") from None
        if exc.status == 404:
            raise NotFound(exc.message) from None
        raise
    return respond({"security_group_rule": _nova_rule(rule, known)})


async def delete_rule(request: Request, rule_id: str) -> Response:
    caller = await caller_of(request, RULE + "rule:delete", until=UNTIL)
    if not sc.is_uuid(rule_id):
        raise BadRequest("Security group id should be uuid")
    network = _network(request)
    try:
        async with network.write() as session:
            await network.l3.delete_security_group_rule(session, caller.network_caller(), rule_id)
    except APIError as exc:
        if exc.status == 404:
            raise NotFound(f"Security group rule {rule_id} not found.") from None
        raise
    return respond(None, 202)


# ---------------------------------------------------------------------- a server's groups


async def server_groups(request: Request, server_id: str) -> Response:
    caller = await caller_of(request)
    servers = compute_of(request).servers
    async with servers.db.read() as session:
        inst = await servers.get(session, caller, server_id)
    caller.authorize(RULE + "list", {"project_id": inst.project_id})
    ports = (await servers.ports_of([inst.uuid]))[inst.uuid]
    ids = sorted({g for p in ports for g in p.get("security_groups") or []})
    groups: list[dict[str, Any]] = []
    if ids:
        from mcloud.network.service import Caller as NetworkCaller  # noqa: PLC0415

        page = await _network(request).l3.list_security_groups(NetworkCaller.internal(), {"id": ids})
        groups = list(page.items)
    known = await _known_groups(request, caller, groups)
    return respond({"security_groups": _sorted([_nova_group(g, known) for g in groups])})


def add_routes(app: FastAPI) -> None:
    g, r = V21 + "/os-security-groups", V21 + "/os-security-group-rules"
    route = app.add_api_route
    route(g, list_groups, methods=["GET"])
    route(g, create_group, methods=["POST"])
    route(g + "/{group_id}", show_group, methods=["GET"])
    route(g + "/{group_id}", update_group, methods=["PUT"])
    route(g + "/{group_id}", delete_group, methods=["DELETE"], status_code=202)
    route(r, create_rule, methods=["POST"])
    route(r + "/{rule_id}", delete_rule, methods=["DELETE"], status_code=202)
    route(V21 + "/servers/{server_id}/os-security-groups", server_groups, methods=["GET"])

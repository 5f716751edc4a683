"""os-services and os-hypervisors (Nova's API reference; nova/api/openstack/compute/services.py
and hypervisors.py): the compute hosts as admins see them.

Services: list (``host``/``binary`` filters), the legacy actions ``PUT /os-services/{enable,
disable,disable-log-reason,force-down}`` up to 2.52, ``PUT /os-services/{uuid}`` from 2.53,
delete (integer ids before 2.53, uuids from). Hypervisors: list, detail (paging from 2.33,
``hypervisor_hostname_pattern``/``with_servers`` from 2.53, usage fields until 2.87, ``uptime``
from 2.88), show, uptime, statistics, and search/servers (until 2.52).
"""

from __future__ import annotations

import re
import uuid as uuidlib
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from mcloud.compute.api import V21, base_url, body_of, caller_of, compute_of, respond
from mcloud.compute.hosts import COMPUTE, Hosts
from mcloud.compute.models import Instance
from mcloud.compute.models_hosts import ComputeNode, ComputeServiceRow
from mcloud.core.errors import BadRequest, NotFound

SVC = "os_compute_api:os-services:"
HYP = "os_compute_api:os-hypervisors:"
_FQDN = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[a-zA-Z0-9-._]*$"}
_BOOL = {"type": ["boolean", "string"],
         "enum": [True, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
                  False, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no"]}
_REASON = {"type": "string", "minLength": 1, "maxLength": 255}
UPDATE = {"type": "object", "properties": {"host": _FQDN, "binary": {"type": "string", "minLength": 1,
                                                                     "maxLength": 255},
                                           "disabled_reason": _REASON},
          "required": ["host", "binary"], "additionalProperties": False}
UPDATE_V211 = {**UPDATE, "properties": {**UPDATE["properties"], "forced_down": _BOOL}}
UPDATE_V253 = {"type": "object", "properties": {"status": {"type": "string", "enum": ["enabled", "disabled"]},
                                                "disabled_reason": _REASON, "forced_down": _BOOL},
               "additionalProperties": False}


def _bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in ("true", "1", "on", "yes")


def _time(value: datetime | None) -> str | None:
    return value.isoformat(timespec="microseconds") if value is not None else None


def _hosts(request: Request) -> Hosts:
    return compute_of(request).hosts


# ---------------------------------------------------------------------- os-services


def service_view(hosts: Hosts, svc: ComputeServiceRow, zones: dict[str, str], caller: Any) -> dict[str, Any]:
    view = {"binary": svc.binary, "host": svc.host, "id": svc.uuid if caller.at(2, 53) else svc.id,
            "zone": hosts.zone_of(zones, svc), "status": "disabled" if svc.disabled else "enabled",
            "state": "up" if hosts.is_up(svc) else "down", "updated_at": _time(svc.updated_at),
            "disabled_reason": svc.disabled_reason}
    if caller.at(2, 11):
        view["forced_down"] = svc.forced_down
    return view


async def list_services(request: Request) -> Response:
    caller = await caller_of(request, SVC + "list", {})
    hosts = _hosts(request)
    params = request.query_params
    if caller.at(2, 75):
        unknown = set(params) - {"host", "binary"}
        if unknown:
            raise BadRequest(f"Invalid input for query parameters {sorted(unknown)[0]}. Additional properties "
                             f"are not allowed ('{sorted(unknown)[0]}' was unexpected)")
    async with hosts.db.read() as session:
        rows = await hosts.services(session, host=params.get("host") or None, binary=params.get("binary") or None)
        zones = await hosts.zones(session)
    return respond({"services": [service_view(hosts, s, zones, caller) for s in rows]})


async def _service_by_id(session: AsyncSession, caller: Any, service_id: str) -> ComputeServiceRow:
    if caller.at(2, 53):
        try:
            uuidlib.UUID(service_id)
        except ValueError:
            raise BadRequest(f"Invalid uuid {service_id}") from None
        where = ComputeServiceRow.uuid == service_id
    else:
        if not re.fullmatch(r"-?\d+", service_id):
            raise BadRequest(f"Invalid input for field/attribute id. Value: {service_id}. "
                             f"id must be an integer")
        where = ComputeServiceRow.id == int(service_id)
    svc = (await session.execute(sa.select(ComputeServiceRow).where(where))).scalar()
    if svc is None:
        raise NotFound(f"Service {service_id} not found.")
    return svc


async def update_service(request: Request) -> Response:
    caller = await caller_of(request, SVC + "update", {})
    service_id = request.path_params["service_id"]
    hosts = _hosts(request)
    if caller.at(2, 53):
        body = await body_of(request, UPDATE_V253)
        async with hosts.db.write() as session:
            svc = await _service_by_id(session, caller, service_id)
            if svc.binary != COMPUTE:
                raise BadRequest(f"Updating a {svc.binary} service is not supported. Only nova-compute "
                                 f"services can be updated.")
            changes: dict[str, Any] = {}
            if "status" in body:
                if body["status"] == "enabled":
                    if body.get("disabled_reason"):
                        raise BadRequest("Specifying 'disabled_reason' with status 'enabled' is invalid.")
                    changes.update(disabled=False, disabled_reason=None)
                else:
                    changes.update(disabled=True, disabled_reason=body.get("disabled_reason"))
            if "forced_down" in body:
                changes["forced_down"] = _bool(body["forced_down"])
            if not changes:
                raise BadRequest("No updates were requested. Fields 'status' or 'forced_down' should be "
                                 "specified.")
            await hosts.update_service(session, svc, **changes)
            zones = await hosts.zones(session)
            view = service_view(hosts, svc, zones, caller)
        return respond({"service": view})
    actions = ["enable", "disable", "disable-log-reason"] + (["force-down"] if caller.at(2, 11) else [])
    if service_id not in actions:
        raise NotFound("Unknown action")
    body = await body_of(request, UPDATE_V211 if caller.at(2, 11) else UPDATE)
    host, binary = body["host"], body["binary"]
    out: dict[str, Any] = {"host": host, "binary": binary}
    changes = {}
    if service_id == "enable":
        changes = {"disabled": False, "disabled_reason": None}
        out["status"] = "enabled"
    elif service_id in ("disable", "disable-log-reason"):
        reason = None
        if service_id == "disable-log-reason":
            if "disabled_reason" not in body:
                raise BadRequest("Missing disabled reason field")
            reason = body["disabled_reason"]
        changes = {"disabled": True, "disabled_reason": reason}
        out["status"] = "disabled"
        if reason:
            out["disabled_reason"] = reason
    else:
        if "forced_down" not in body:
            raise BadRequest("Missing forced_down field")
        changes = {"forced_down": _bool(body["forced_down"])}
        out["forced_down"] = changes["forced_down"]
    if binary != COMPUTE:
        raise BadRequest(f"Updating a {binary} service is not supported. Only nova-compute services can be "
                         f"updated.")
    async with hosts.db.write() as session:
        rows = await hosts.services(session, host=host, binary=binary)
        if not rows:
            raise NotFound(f"Service {binary} on host {host} could not be found.")
        await hosts.update_service(session, rows[0], **changes)
    return respond({"service": out})


async def delete_service(request: Request) -> Response:
    caller = await caller_of(request, SVC + "delete", {})
    hosts = _hosts(request)
    async with hosts.db.write() as session:
        svc = await _service_by_id(session, caller, request.path_params["service_id"])
        await hosts.delete_service(session, svc)
    return Response(status_code=204)


# ---------------------------------------------------------------------- os-hypervisors


async def _usage(session: AsyncSession, hosts_: list[str]) -> dict[str, dict[str, int]]:
    """Per host: vcpus, memory and disk of its instances, how many, and how many are busy."""
    rows = (await session.execute(sa.select(Instance.host, Instance.flavor, Instance.task_state).where(
        Instance.host.in_(hosts_), Instance.deleted.is_(False)))).all()
    out: dict[str, dict[str, int]] = {h: {"vcpus": 0, "memory_mb": 0, "local_gb": 0, "running_vms": 0,
                                          "current_workload": 0} for h in hosts_}
    for host, flavor, task_state in rows:
        u = out[host]
        flavor = flavor or {}
        u["vcpus"] += int(flavor.get("vcpus") or 0)
        u["memory_mb"] += int(flavor.get("memory_mb") or 0)
        u["local_gb"] += int(flavor.get("root_gb") or 0) + int(flavor.get("ephemeral_gb") or 0)
        u["running_vms"] += 1
        u["current_workload"] += task_state is not None
    return out


def _uptime(svc: ComputeServiceRow) -> str | None:
    """The host's uptime the way ``uptime`` prints it (Nova's libvirt driver shows that line)."""
    if svc.started_at is None:
        return None
    now = datetime.utcnow()
    seconds = int((now - svc.started_at).total_seconds())
    days, rest = divmod(seconds, 86400)
    return (f" {now:%H:%M:%S} up {days} days, {rest // 3600:2d}:{rest % 3600 // 60:02d},  1 user,  "
            f"load average: 0.00, 0.00, 0.00")


def hypervisor_view(request: Request, hosts: Hosts, node: ComputeNode, svc: ComputeServiceRow, caller: Any,
                    detail: bool, usage: dict[str, int] | None = None, servers: list[dict[str, str]] | None = None,
                    with_servers: bool = False) -> dict[str, Any]:
    v253 = caller.at(2, 53)
    view: dict[str, Any] = {"id": node.uuid if v253 else node.id, "hypervisor_hostname": node.hypervisor_hostname,
                            "state": "up" if hosts.is_up(svc) else "down",
                            "status": "disabled" if svc.disabled else "enabled"}
    if detail:
        view.update(hypervisor_type=node.hypervisor_type, hypervisor_version=node.hypervisor_version,
                    host_ip=node.host_ip,
                    service={"id": svc.uuid if v253 else svc.id, "host": node.host,
                             "disabled_reason": svc.disabled_reason})
        if not caller.at(2, 88):
            u = usage or {}
            reserved = min(hosts.config.reserved_host_memory_mb, node.memory_mb)
            memory_used = reserved + u.get("memory_mb", 0)
            view.update(vcpus=node.vcpus, memory_mb=node.memory_mb, local_gb=node.local_gb,
                        vcpus_used=u.get("vcpus", 0), memory_mb_used=memory_used,
                        local_gb_used=u.get("local_gb", 0), free_ram_mb=node.memory_mb - memory_used,
                        free_disk_gb=node.local_gb - u.get("local_gb", 0),
                        current_workload=u.get("current_workload", 0), running_vms=u.get("running_vms", 0),
                        disk_available_least=node.local_gb - u.get("local_gb", 0))
            import json

            view["cpu_info"] = dict(node.cpu_info or {}) if caller.at(2, 28) else json.dumps(node.cpu_info or {})
        else:
            view["uptime"] = _uptime(svc)
    if servers:
        view["servers"] = servers
    elif with_servers and caller.at(2, 75):
        view["servers"] = []
    return view


async def _nodes(session: AsyncSession) -> list[tuple[ComputeNode, ComputeServiceRow]]:
    rows = await session.execute(sa.select(ComputeNode, ComputeServiceRow)
                                 .join(ComputeServiceRow, ComputeServiceRow.id == ComputeNode.service_id)
                                 .order_by(ComputeNode.id))
    return [(n, s) for n, s in rows.all()]


async def _servers_of(session: AsyncSession, hosts_: list[str]) -> dict[str, list[dict[str, str]]]:
    rows = (await session.execute(sa.select(Instance.host, Instance.name, Instance.uuid, Instance.id).where(
        Instance.host.in_(hosts_), Instance.deleted.is_(False)).order_by(Instance.id))).all()
    out: dict[str, list[dict[str, str]]] = {}
    for host, name, uuid, iid in rows:
        out.setdefault(host, []).append({"name": f"instance-{iid:08x}", "uuid": uuid})
    return out


def _pattern_match(nodes: list[tuple[ComputeNode, ComputeServiceRow]], pattern: str
                   ) -> list[tuple[ComputeNode, ComputeServiceRow]]:
    found = [(n, s) for n, s in nodes if pattern.lower() in n.hypervisor_hostname.lower()]
    if not found:
        raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return found


def _list(detail: bool) -> Any:
    async def handler(request: Request) -> Response:
        caller = await caller_of(request, HYP + ("list-detail" if detail else "list"), {})
        hosts = _hosts(request)
        params = request.query_params
        pattern = params.get("hypervisor_hostname_pattern") if caller.at(2, 53) else None
        with_servers = _bool(params.get("with_servers", "false")) if caller.at(2, 53) else False
        if caller.at(2, 53) and "with_servers" in params and params["with_servers"].lower() not in (
                "true", "false", "1", "0", "yes", "no", "on", "off", "t", "f", "y", "n"):
            raise BadRequest(f"Invalid input for query parameters with_servers. Value: {params['with_servers']}.")
        limit = marker = None
        if caller.at(2, 33):
            if "limit" in params:
                try:
                    limit = int(params["limit"])
                except ValueError:
                    raise BadRequest("limit param must be an integer") from None
                if limit < 0:
                    raise BadRequest("limit param must be positive")
            marker = params.get("marker")
        if pattern is not None and (limit is not None or marker):
            raise BadRequest("Paging over hypervisors with the hypervisor_hostname_pattern query parameter is "
                             "not supported.")
        async with hosts.db.read() as session:
            nodes = await _nodes(session)
            if pattern is not None:
                nodes = _pattern_match(nodes, pattern)
            if marker:
                ids = [str(n.uuid if caller.at(2, 53) else n.id) for n, _ in nodes]
                if marker not in ids:
                    raise BadRequest(f"marker [{marker}] not found")
                nodes = nodes[ids.index(marker) + 1:]
            max_limit = hosts.config.max_limit
            page = nodes[:min(limit, max_limit) if limit is not None else max_limit]
            names = [n.host for n, _ in page]
            usage = await _usage(session, names) if detail and not caller.at(2, 88) else {}
            servers = await _servers_of(session, names) if with_servers else {}
        out: dict[str, Any] = {"hypervisors": [
            hypervisor_view(request, hosts, n, s, caller, detail, usage.get(n.host), servers.get(n.host),
                            with_servers) for n, s in page]}
        if caller.at(2, 33) and pattern is None and page and len(page) == (limit if limit is not None else -1):
            last = page[-1][0]
            href = (f"{base_url(request)}{V21}/os-hypervisors{'/detail' if detail else ''}?limit={limit}"
                    f"&marker={last.uuid if caller.at(2, 53) else last.id}")
            out["hypervisors_links"] = [{"href": href, "rel": "next"}]
        return respond(out)
    return handler


async def _node_by_id(session: AsyncSession, caller: Any, node_id: str) -> tuple[ComputeNode, ComputeServiceRow]:
    if caller.at(2, 53):
        try:
            uuidlib.UUID(node_id)
        except ValueError:
            raise BadRequest(f"Invalid uuid {node_id}") from None
        where = ComputeNode.uuid == node_id
    else:
        if not re.fullmatch(r"\d+", node_id):
            raise NotFound(f"Hypervisor with ID '{node_id}' could not be found.")
        where = ComputeNode.id == int(node_id)
    row = (await session.execute(sa.select(ComputeNode, ComputeServiceRow)
                                 .join(ComputeServiceRow, ComputeServiceRow.id == ComputeNode.service_id)
                                 .where(where))).first()
    if row is None:
        raise NotFound(f"Hypervisor with ID '{node_id}' could not be found.")
    return row[0], row[1]


async def show_hypervisor(request: Request) -> Response:
    caller = await caller_of(request, HYP + "show", {})
    hosts = _hosts(request)
    with_servers = _bool(request.query_params.get("with_servers", "false")) if caller.at(2, 53) else False
    async with hosts.db.read() as session:
        node, svc = await _node_by_id(session, caller, request.path_params["hypervisor_id"])
        usage = (await _usage(session, [node.host]))[node.host]
        servers = (await _servers_of(session, [node.host])).get(node.host) if with_servers else None
    return respond({"hypervisor": hypervisor_view(request, hosts, node, svc, caller, True, usage, servers,
                                                  with_servers)})


async def hypervisor_uptime(request: Request) -> Response:
    caller = await caller_of(request, HYP + "uptime", {}, until=(2, 87))
    hosts = _hosts(request)
    async with hosts.db.read() as session:
        node, svc = await _node_by_id(session, caller, request.path_params["hypervisor_id"])
    view = hypervisor_view(request, hosts, node, svc, caller, False)
    view["uptime"] = _uptime(svc)
    return respond({"hypervisor": view})


async def hypervisor_statistics(request: Request) -> Response:
    await caller_of(request, HYP + "statistics", {}, until=(2, 87))
    hosts = _hosts(request)
    async with hosts.db.read() as session:
        nodes = await _nodes(session)
        usage = await _usage(session, [n.host for n, _ in nodes])
    stats = dict.fromkeys(("count", "vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used",
                           "local_gb_used", "free_ram_mb", "free_disk_gb", "current_workload", "running_vms",
                           "disk_available_least"), 0)
    reserved = hosts.config.reserved_host_memory_mb
    for node, _svc in nodes:
        u = usage[node.host]
        used_ram = min(reserved, node.memory_mb) + u["memory_mb"]
        stats["count"] += 1
        stats["vcpus"] += node.vcpus
        stats["memory_mb"] += node.memory_mb
        stats["local_gb"] += node.local_gb
        stats["vcpus_used"] += u["vcpus"]
        stats["memory_mb_used"] += used_ram
        stats["local_gb_used"] += u["local_gb"]
        stats["free_ram_mb"] += node.memory_mb - used_ram
        stats["free_disk_gb"] += node.local_gb - u["local_gb"]
        stats["current_workload"] += u["current_workload"]
        stats["running_vms"] += u["running_vms"]
        stats["disk_available_least"] += node.local_gb - u["local_gb"]
    return respond({"hypervisor_statistics": stats})


def _search(with_servers: bool) -> Any:
    async def handler(request: Request) -> Response:
        caller = await caller_of(request, HYP + ("servers" if with_servers else "search"), {}, until=(2, 52))
        hosts = _hosts(request)
        async with hosts.db.read() as session:
            nodes = _pattern_match(await _nodes(session), request.path_params["pattern"])
            servers = await _servers_of(session, [n.host for n, _ in nodes]) if with_servers else {}
        return respond({"hypervisors": [hypervisor_view(request, hosts, n, s, caller, False, None,
                                                        servers.get(n.host)) for n, s in nodes]})
    return handler


def add_routes(app: FastAPI) -> None:
    app.add_api_route(V21 + "/os-services", list_services, methods=["GET"])
    app.add_api_route(V21 + "/os-services/{service_id}", update_service, methods=["PUT"])
    app.add_api_route(V21 + "/os-services/{service_id}", delete_service, methods=["DELETE"])
    app.add_api_route(V21 + "/os-hypervisors", _list(False), methods=["GET"])
    app.add_api_route(V21 + "/os-hypervisors/detail", _list(True), methods=["GET"])
    app.add_api_route(V21 + "/os-hypervisors/statistics", hypervisor_statistics, methods=["GET"])
    app.add_api_route(V21 + "/os-hypervisors/{pattern}/search", _search(False), methods=["GET"])
    app.add_api_route(V21 + "/os-hypervisors/{pattern}/servers", _search(True), methods=["GET"])
    app.add_api_route(V21 + "/os-hypervisors/{hypervisor_id}/uptime", hypervisor_uptime, methods=["GET"])
    app.add_api_route(V21 + "/os-hypervisors/{hypervisor_id}", show_hypervisor, methods=["GET"])

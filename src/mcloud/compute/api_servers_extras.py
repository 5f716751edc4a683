"""The servers' smaller APIs, as Nova answers them: os-simple-tenant-usage (hours of vCPU, RAM
and disk per project over a period, from the instance rows, deleted ones included),
os-migrations and ``/servers/{id}/migrations`` (the ``Migration`` rows the conductor writes),
os-server-password, ``/servers/{id}/remote-consoles`` (2.6+), and os-interface (list, show,
attach: the conductor's "attach_interface" awaited, as Nova's API waits on the compute host;
detach: the conductor's "detach_interface", 202).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.compute import models as m
from mcloud.compute import schemas as sc
from mcloud.compute.api import V21, base_url, body_of, caller_of, compute_of, query, respond
from mcloud.compute.service import Caller
from mcloud.compute.service_servers_actions import start_action
from mcloud.compute.views import usage_time
from mcloud.core.errors import APIError, BadRequest, Conflict, NotFound

# ---------------------------------------------------------------------- os-simple-tenant-usage

USAGE = "os_compute_api:os-simple-tenant-usage:"
TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


def _usage_time(value: str | None) -> datetime:
    if not value:
        return datetime.utcnow()
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise BadRequest("Invalid datetime string: Datetime is in invalid format")


def _period(params: dict[str, list[str]]) -> tuple[datetime, datetime, bool]:
    start = _usage_time(params.get("start", [None])[0])
    stop = _usage_time(params.get("end", [None])[0])
    if not start < stop:
        raise BadRequest("Invalid start time. The start time cannot occur after the end time.")
    return start, min(stop, datetime.utcnow()), params.get("detailed", ["0"])[0] == "1"


def _hours(inst: m.Instance, start: datetime, stop: datetime) -> float:
    if inst.terminated_at and inst.terminated_at < start or not inst.launched_at or inst.launched_at > stop:
        return 0
    end = min(stop, inst.terminated_at) if inst.terminated_at else stop
    return (end - max(inst.launched_at, start)).total_seconds() / 3600.0


async def _usages(request: Request, caller: Caller, tenant_id: str | None, detailed: bool
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    params = query(request)
    start, stop, _ = _period(params)
    compute = compute_of(request)
    limit = compute.config.max_limit
    marker = None
    if caller.at(2, 40):
        limit = sc.query_limit(params, limit) or limit
        marker = params.get("marker", [None])[-1]
    q = sa.select(m.Instance).where(
        sa.or_(m.Instance.terminated_at.is_(None), m.Instance.terminated_at > start),
        m.Instance.launched_at < stop).order_by(m.Instance.created_at, m.Instance.id)
    if tenant_id is not None:
        q = q.where(m.Instance.project_id == tenant_id)
    async with compute.db.read() as session:
        rows = list((await session.execute(q)).scalars())
    if marker is not None:
        index = next((i for i, r in enumerate(rows) if r.uuid == marker), None)
        if index is None:
            raise BadRequest(f"Marker {marker} could not be found.")
        rows = rows[index + 1:]
    rows = rows[:limit]
    now = datetime.utcnow()
    tenants: dict[str, dict[str, Any]] = {}
    servers: list[dict[str, Any]] = []
    for inst in rows:
        flavor = inst.flavor or {}
        hours = _hours(inst, start, stop)
        ended = inst.terminated_at
        info = {"hours": hours, "flavor": flavor.get("name", ""), "instance_id": inst.uuid, "name": inst.name,
                "tenant_id": inst.project_id, "memory_mb": int(flavor.get("memory_mb") or 0),
                "local_gb": int(flavor.get("root_gb") or 0) + int(flavor.get("ephemeral_gb") or 0),
                "vcpus": int(flavor.get("vcpus") or 0), "started_at": usage_time(inst.launched_at),
                "ended_at": usage_time(ended), "state": "terminated" if ended else inst.vm_state,
                "uptime": int(((ended or now) - inst.launched_at).total_seconds()) if inst.launched_at else 0}
        summary = tenants.get(inst.project_id)
        if summary is None:
            summary = tenants[inst.project_id] = {
                "tenant_id": inst.project_id, **({"server_usages": []} if detailed else {}),
                "total_local_gb_usage": 0, "total_vcpus_usage": 0, "total_memory_mb_usage": 0, "total_hours": 0,
                "start": usage_time(start), "stop": usage_time(stop)}
        summary["total_local_gb_usage"] += info["local_gb"] * hours
        summary["total_vcpus_usage"] += info["vcpus"] * hours
        summary["total_memory_mb_usage"] += info["memory_mb"] * hours
        summary["total_hours"] += hours
        servers.append(info)
        if detailed:
            summary["server_usages"].append(info)
    return list(tenants.values()), servers, limit


def _usage_links(request: Request, servers: list[dict[str, Any]], limit: int, path: str) -> list[dict[str, str]]:
    if not servers or len(servers) < limit:
        return []
    from mcloud.core.pagination import next_link  # noqa: PLC0415

    keep = {k: v[-1] for k, v in query(request).items() if k not in ("marker", "limit")}
    return [next_link(f"{base_url(request)}{V21}/{path}", keep, servers[-1]["instance_id"], limit)]


async def list_usage(request: Request) -> Response:
    caller = await caller_of(request, USAGE + "list")
    _, _, detailed = _period(query(request))
    usages, servers, limit = await _usages(request, caller, None, detailed)
    body: dict[str, Any] = {"tenant_usages": usages}
    links = _usage_links(request, servers, limit, "os-simple-tenant-usage") if caller.at(2, 40) else []
    if links:
        body["tenant_usages_links"] = links
    return respond(body)


async def show_usage(request: Request, tenant_id: str) -> Response:
    caller = await caller_of(request, USAGE + "show", {"project_id": tenant_id})
    usages, servers, limit = await _usages(request, caller, tenant_id, True)
    body: dict[str, Any] = {"tenant_usage": usages[0] if usages else {}}
    links = _usage_links(request, servers, limit, f"os-simple-tenant-usage/{tenant_id}") if caller.at(2, 40) else []
    if links:
        body["tenant_usage_links"] = links
    return respond(body)


# ---------------------------------------------------------------------- migrations

LIVE_IN_PROGRESS = ("queued", "preparing", "running", "post-migrating")


def _flavor_int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _migration(caller: Caller, request: Request, row: m.Migration, show_host: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id, "status": row.status, "instance_uuid": row.instance_uuid,
        "source_node": row.source_node, "source_compute": row.source_compute, "dest_node": row.dest_node,
        "dest_compute": row.dest_compute, "dest_host": row.dest_host,
        "old_instance_type_id": _flavor_int(row.old_flavor_id), "new_instance_type_id": _flavor_int(row.new_flavor_id),
        "created_at": usage_time(row.created_at), "updated_at": usage_time(row.updated_at)}
    if not show_host:
        out.update(source_node=None, source_compute=None, dest_node=None, dest_compute=None, dest_host=None)
    if caller.at(2, 23):
        out["migration_type"] = row.migration_type
        if row.migration_type == "live-migration" and row.status in LIVE_IN_PROGRESS:
            base = base_url(request)
            path = f"servers/{row.instance_uuid}/migrations/{row.id}"
            out["links"] = [{"rel": "self", "href": f"{base}{V21}/{path}"}, {"rel": "bookmark", "href": f"{base}/{path}"}]
    if caller.at(2, 59):
        out["uuid"] = row.uuid
    if caller.at(2, 80):
        out["user_id"], out["project_id"] = row.user_id, row.project_id
    return out


async def list_migrations(request: Request) -> Response:
    caller = await caller_of(request, "os_compute_api:os-migrations:index")
    params = {k: v[-1] for k, v in query(request).items()}
    if params.get("project_id") != caller.project_id:
        caller.authorize("os_compute_api:os-migrations:index:all_projects")
    show_host = caller.can("os_compute_api:os-migrations:index:host")
    q = sa.select(m.Migration)
    for key, column in (("instance_uuid", m.Migration.instance_uuid), ("status", m.Migration.status),
                        ("source_compute", m.Migration.source_compute), ("migration_type", m.Migration.migration_type),
                        ("user_id", m.Migration.user_id), ("project_id", m.Migration.project_id)):
        if key in params and (key not in ("user_id", "project_id") or caller.at(2, 80)):
            q = q.where(column == params[key])
    if "host" in params:
        q = q.where(sa.or_(m.Migration.source_compute == params["host"], m.Migration.dest_compute == params["host"]))
    from mcloud.compute.service_servers import parse_time  # noqa: PLC0415

    if caller.at(2, 59) and "changes-since" in params:
        q = q.where(m.Migration.updated_at >= parse_time(params["changes-since"], "changes-since"))
    if caller.at(2, 66) and "changes-before" in params:
        q = q.where(m.Migration.updated_at <= parse_time(params["changes-before"], "changes-before"))
    limit = None
    compute = compute_of(request)
    async with compute.db.read() as session:
        rows = list((await session.execute(q.order_by(m.Migration.created_at.desc(), m.Migration.id.desc()))).scalars())
    body: dict[str, Any] = {}
    if caller.at(2, 59):
        marker = params.get("marker")
        if marker is not None:
            index = next((i for i, r in enumerate(rows) if r.uuid == marker), None)
            if index is None:
                raise BadRequest(f"Marker {marker} could not be found.")
            rows = rows[index + 1:]
        limit = sc.query_limit(query(request), compute.config.max_limit)
        if limit is not None:
            full = len(rows) > limit
            rows = rows[:limit]
            if full and rows:
                from mcloud.core.pagination import next_link  # noqa: PLC0415

                keep = {k: v for k, v in params.items() if k not in ("marker", "limit")}
                body["migrations_links"] = [next_link(f"{base_url(request)}{V21}/os-migrations", keep,
                                                      rows[-1].uuid, limit)]
    body["migrations"] = [_migration(caller, request, r, show_host) for r in rows]
    return respond(body)


def _server_migration(caller: Caller, row: m.Migration, show_host: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "created_at": usage_time(row.created_at), "updated_at": usage_time(row.updated_at), "id": row.id,
        "server_uuid": row.instance_uuid, "status": row.status,
        "dest_compute": None, "dest_host": None, "dest_node": None, "source_compute": None, "source_node": None,
        "disk_processed_bytes": row.disk_processed, "disk_remaining_bytes": row.disk_remaining,
        "disk_total_bytes": row.disk_total, "memory_processed_bytes": row.memory_processed,
        "memory_remaining_bytes": row.memory_remaining, "memory_total_bytes": row.memory_total}
    if show_host:
        out.update(dest_compute=row.dest_compute, dest_host=row.dest_host, dest_node=row.dest_node,
                   source_compute=row.source_compute, source_node=row.source_node)
    if caller.at(2, 59):
        out["uuid"] = row.uuid
    if caller.at(2, 80):
        out["user_id"], out["project_id"] = row.user_id, row.project_id
    return out


async def _live_migrations(request: Request, server_id: str, rule: str) -> tuple[Caller, m.Instance, list[m.Migration]]:
    caller = await caller_of(request, since=(2, 23))
    servers = compute_of(request).servers
    async with servers.db.read() as session:
        inst = await servers.get(session, caller, server_id)
        caller.authorize(f"os_compute_api:servers:migrations:{rule}", {"project_id": inst.project_id})
        rows = list((await session.execute(sa.select(m.Migration).where(
            m.Migration.instance_uuid == inst.uuid, m.Migration.migration_type == "live-migration",
            m.Migration.status.in_(LIVE_IN_PROGRESS)).order_by(m.Migration.id))).scalars())
    return caller, inst, rows


def _in_progress(rows: list[m.Migration], inst: m.Instance, migration_id: str) -> m.Migration:
    row = next((r for r in rows if str(r.id) == migration_id), None)
    if row is None:
        raise NotFound(f"In-progress live migration {migration_id} is not found for server {inst.uuid}.")
    return row


async def list_server_migrations(request: Request, server_id: str) -> Response:
    caller, _inst, rows = await _live_migrations(request, server_id, "index")
    show_host = caller.can("os_compute_api:servers:migrations:index:host")
    return respond({"migrations": [_server_migration(caller, r, show_host) for r in rows]})


async def show_server_migration(request: Request, server_id: str, migration_id: str) -> Response:
    caller, inst, rows = await _live_migrations(request, server_id, "show")
    row = _in_progress(rows, inst, migration_id)
    return respond({"migration": _server_migration(caller, row, True)})


async def server_migration_action(request: Request, server_id: str, migration_id: str) -> Response:
    caller = await caller_of(request, since=(2, 22))
    body = sc.validate(await body_of(request), {"type": "object", "properties": {"force_complete": {"type": "null"}},
                                                "required": ["force_complete"], "additionalProperties": False})
    del body
    servers = compute_of(request).servers
    async with servers.db.write() as session:
        inst = await servers.get(session, caller, server_id, for_update=True)
        caller.authorize("os_compute_api:servers:migrations:force_complete", {"project_id": inst.project_id})
        servers.check_lock(caller, inst)
        if inst.vm_state not in ("active", "paused") or inst.task_state != "migrating":
            raise Conflict(f"Cannot 'force_complete' instance {inst.uuid} while it is in task_state "
                           f"{inst.task_state}")
        row = (await session.execute(sa.select(m.Migration).where(
            m.Migration.instance_uuid == inst.uuid, sa.cast(m.Migration.id, sa.String) == migration_id))).scalar()
        if row is None:
            raise NotFound(f"Migration {migration_id} could not be found.")
        if row.status != "running":
            raise BadRequest(f"Migration {migration_id} state of instance {inst.uuid} is {row.status}. Cannot "
                             f"force_complete while the migration is in this state.")
        # the live migration converges on its own (the drivers copy memory until done): recorded
        await servers.record_action(session, caller, inst, "live_migration_force_complete")
    return respond(None, 202)


async def delete_server_migration(request: Request, server_id: str, migration_id: str) -> Response:
    caller = await caller_of(request, since=(2, 24))
    servers = compute_of(request).servers
    async with servers.db.read() as session:
        inst = await servers.get(session, caller, server_id)
        caller.authorize("os_compute_api:servers:migrations:delete", {"project_id": inst.project_id})
        row = (await session.execute(sa.select(m.Migration).where(
            m.Migration.instance_uuid == inst.uuid, sa.cast(m.Migration.id, sa.String) == migration_id))).scalar()
    if row is None or row.migration_type != "live-migration":
        raise NotFound(f"Migration {migration_id} could not be found.")
    allowed = ("running", "queued", "preparing") if caller.at(2, 65) else ("running",)
    if row.status not in allowed:
        raise BadRequest(f"Migration {migration_id} state of instance {inst.uuid} is {row.status}. Cannot "
                         f"abort live migration while the migration is in this state.")
    # aborting a running move needs the conductor to stop it on both hosts: not offered yet
    raise Conflict(f"Cannot 'abort live migration' instance {inst.uuid}: the live migration cannot be aborted "
                   f"in this cloud.")


# ---------------------------------------------------------------------- os-server-password


async def show_password(request: Request, server_id: str) -> Response:
    caller = await caller_of(request)
    servers = compute_of(request).servers
    async with servers.db.read() as session:
        inst = await servers.get(session, caller, server_id)
    caller.authorize("os_compute_api:os-server-password:show", {"project_id": inst.project_id})
    return respond({"password": (inst.system_metadata or {}).get("password", "")})


async def clear_password(request: Request, server_id: str) -> Response:
    caller = await caller_of(request)
    servers = compute_of(request).servers
    async with servers.db.write() as session:
        inst = await servers.get(session, caller, server_id, for_update=True)
        caller.authorize("os_compute_api:os-server-password:clear", {"project_id": inst.project_id})
        meta = dict(inst.system_metadata or {})
        meta.pop("password", None)
        inst.system_metadata = meta
    return respond(None, 204)


# ---------------------------------------------------------------------- remote consoles (2.6+)

CONSOLE = {"type": "object", "properties": {"remote_console": {
    "type": "object", "properties": {"protocol": {"type": "string", "enum": ["vnc", "spice", "serial", "rdp", "mks"]},
                                     "type": {"type": "string", "enum": ["novnc", "xvpvnc", "spice-html5",
                                                                         "spice-direct", "serial", "rdp-html5",
                                                                         "webmks"]}},
    "required": ["protocol", "type"], "additionalProperties": False}},
    "required": ["remote_console"], "additionalProperties": False}


async def remote_console(request: Request, server_id: str) -> Response:
    from mcloud.compute.api_servers_actions import console_url  # noqa: PLC0415

    caller = await caller_of(request, since=(2, 6))
    body = sc.validate(await body_of(request), CONSOLE)["remote_console"]
    servers = compute_of(request).servers
    async with servers.db.read() as session:
        inst = await servers.get(session, caller, server_id)
    caller.authorize("os_compute_api:os-remote-consoles", {"project_id": inst.project_id})
    if body["protocol"] == "mks" and not caller.at(2, 8):
        raise BadRequest("Invalid input for field/attribute protocol. Value: mks.")
    if (body["protocol"], body["type"]) != ("vnc", "novnc"):
        raise BadRequest(f"Unavailable console type {body['type']}.")
    url = await console_url(servers, inst, body["type"])
    return respond({"remote_console": {"protocol": "vnc", "type": body["type"], "url": url}})


# ---------------------------------------------------------------------- os-interface

ATTACH = {"type": ["object", "null"], "properties": {"interfaceAttachment": {
    "type": "object", "properties": {
        "net_id": {"type": "string", "format": "uuid"}, "port_id": {"type": "string", "format": "uuid"},
        "fixed_ips": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
            "type": "object", "properties": {"ip_address": {"type": "string", "oneOf": [{"format": "ipv4"},
                                                                                       {"format": "ipv6"}]}},
            "required": ["ip_address"], "additionalProperties": False}},
        "tag": {"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[^,/]*$"}},
    "additionalProperties": False}}, "additionalProperties": False}


def _attachment(caller: Caller, port: dict[str, Any], tags: dict[str, Any]) -> dict[str, Any]:
    out = {"net_id": port["network_id"], "port_id": port["id"], "mac_addr": port["mac_address"],
           "port_state": port["status"], "fixed_ips": [{"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]}
                                                       for ip in port.get("fixed_ips") or []]}
    if caller.at(2, 70):
        out["tag"] = tags.get(port["id"])
    return out


def _tags(inst: m.Instance) -> dict[str, Any]:
    return {r["port_id"]: r.get("tag") for r in (inst.system_metadata or {}).get("ports") or []}


async def _interface_server(request: Request, server_id: str, rule: str) -> tuple[Caller, Any, m.Instance]:
    caller = await caller_of(request)
    servers = compute_of(request).servers
    async with servers.db.read() as session:
        inst = await servers.get(session, caller, server_id)
    caller.authorize(f"os_compute_api:os-attach-interfaces:{rule}", {"project_id": inst.project_id})
    return caller, servers, inst


async def list_interfaces(request: Request, server_id: str) -> Response:
    caller, servers, inst = await _interface_server(request, server_id, "list")
    ports = (await servers.ports_of([inst.uuid]))[inst.uuid]
    tags = _tags(inst)
    return respond({"interfaceAttachments": [_attachment(caller, p, tags) for p in ports]})


async def _port_of(servers: Any, inst: m.Instance, port_id: str) -> dict[str, Any]:
    from mcloud.network.service import Caller as NetworkCaller  # noqa: PLC0415

    try:
        port = await servers.compute.network.show_port(NetworkCaller.internal(), port_id)
    except APIError as exc:
        if exc.status == 404:
            raise NotFound(f"Port {port_id} could not be found.") from None
        raise
    if port.get("device_id") != inst.uuid:
        raise NotFound(f"Instance {inst.uuid} does not have a port with id {port_id}")
    return port


async def show_interface(request: Request, server_id: str, port_id: str) -> Response:
    caller, servers, inst = await _interface_server(request, server_id, "show")
    port = await _port_of(servers, inst, port_id)
    return respond({"interfaceAttachment": _attachment(caller, port, _tags(inst))})


async def attach_interface(request: Request, server_id: str) -> Response:
    caller, servers, inst = await _interface_server(request, server_id, "create")
    raw = await body_of(request) if (await request.body()) else None
    if raw is not None and "tag" in (raw.get("interfaceAttachment") or {} if isinstance(raw, dict) else {}) \
            and not caller.at(2, 49):
        raise BadRequest("Invalid input for field/attribute interfaceAttachment. Additional properties are not "
                         "allowed ('tag' was unexpected)")
    body = (sc.validate(raw, ATTACH) or {}).get("interfaceAttachment") or {}
    net_id, port_id = body.get("net_id"), body.get("port_id")
    fixed_ip = (body.get("fixed_ips") or [{}])[0].get("ip_address")
    if net_id and port_id:
        raise BadRequest("Must not input both network_id and port_id")
    if fixed_ip and not net_id:
        raise BadRequest("Must input network_id when request IP address")
    compute = servers.compute
    network_caller = caller.network_caller()
    if port_id:
        try:
            port = await compute.network.show_port(network_caller, port_id)
        except APIError as exc:
            if exc.status == 404:
                raise NotFound(f"Port {port_id} could not be found.") from None
            raise
        if port.get("device_id"):
            raise Conflict(f"Port {port_id} is still in use.")
    elif net_id:
        try:
            await compute.network.show_network(network_caller, net_id)
        except APIError as exc:
            if exc.status == 404:
                raise NotFound(f"Network {net_id} could not be found.") from None
            raise
    else:
        from mcloud.compute.service_servers_create import _check_networks  # noqa: PLC0415

        try:
            net_id = (await _check_networks(compute, network_caller, caller, "auto", []))[0]["network_id"]
        except APIError as exc:
            raise BadRequest("Failed to allocate the network(s) with error No networks are available to "
                             "attach, not rescheduling." if exc.status == 400 else exc.message) from None
    params = {"port_id": port_id, "network_id": None if port_id else net_id, "fixed_ip": fixed_ip,
              "tag": body.get("tag")}
    async with servers.db.write() as session:
        row = await servers.get(session, caller, server_id, for_update=True)
        await start_action(servers, session, caller, row, "attach_interface", params)
    compute.tasks.wake()
    result = await _task_result(compute, inst.uuid, caller.request_id)
    if "error" in result or not result.get("port_id"):
        raise BadRequest(f"Failed to attach network adapter device to {inst.uuid}: {result.get('error', '')}")
    async with servers.db.read() as session:
        inst = await servers.get(session, caller, server_id)
    port = await _port_of(servers, inst, result["port_id"])
    return respond({"interfaceAttachment": _attachment(caller, port, _tags(inst))})


async def _task_result(compute: Any, uuid: str, request_id: str, timeout: float = 60) -> dict[str, Any]:
    """What the conductor's action task of this request returned (Nova's API waits on the host's
    attach_interface, an RPC call)."""
    from mcloud.core.tasks import FAILED, SUCCEEDED  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        async with compute.db.read() as session:
            tasks = await compute.tasks.for_resource(session, uuid)
        mine = [t for t in tasks if (t.payload or {}).get("request_id") == request_id]
        if mine and mine[-1].status in (SUCCEEDED, FAILED):
            return dict(mine[-1].result or {"error": mine[-1].message or "failed"})
        await asyncio.sleep(0.05)
    raise Conflict(f"Attaching an interface to instance {uuid} timed out.")


async def detach_interface(request: Request, server_id: str, port_id: str) -> Response:
    caller, servers, inst = await _interface_server(request, server_id, "delete")
    await _port_of(servers, inst, port_id)
    async with servers.db.write() as session:
        row = await servers.get(session, caller, server_id, for_update=True)
        await start_action(servers, session, caller, row, "detach_interface", {"port_id": port_id})
    servers.compute.tasks.wake()
    return respond(None, 202)


def add_routes(app: FastAPI) -> None:
    route = app.add_api_route
    route(V21 + "/os-simple-tenant-usage", list_usage, methods=["GET"])
    route(V21 + "/os-simple-tenant-usage/{tenant_id}", show_usage, methods=["GET"])
    route(V21 + "/os-migrations", list_migrations, methods=["GET"])
    s = V21 + "/servers/{server_id}"
    route(s + "/migrations", list_server_migrations, methods=["GET"])
    route(s + "/migrations/{migration_id}", show_server_migration, methods=["GET"])
    route(s + "/migrations/{migration_id}", delete_server_migration, methods=["DELETE"], status_code=202)
    route(s + "/migrations/{migration_id}/action", server_migration_action, methods=["POST"], status_code=202)
    route(s + "/os-server-password", show_password, methods=["GET"])
    route(s + "/os-server-password", clear_password, methods=["DELETE"], status_code=204)
    route(s + "/remote-consoles", remote_console, methods=["POST"])
    route(s + "/os-interface", list_interfaces, methods=["GET"])
    route(s + "/os-interface", attach_interface, methods=["POST"])
    route(s + "/os-interface/{port_id}", show_interface, methods=["GET"])
    route(s + "/os-interface/{port_id}", detach_interface, methods=["DELETE"], status_code=202)


__all__ = ["add_routes"]

"""POST /servers/{id}/action (every server action), os-instance-actions, remote consoles,
os-interface, the server's security groups and migrations, os-migrations and
os-simple-tenant-usage."""

from __future__ import annotations

import uuid as uuidlib
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.compute import models as m
from mcloud.compute import schemas as sc
from mcloud.compute import states as st
from mcloud.compute import volume_backed
from mcloud.compute.api import V21, base_url, body_of, caller_of, compute_of, query, respond
from mcloud.compute.service import Caller, utc
from mcloud.compute.service_servers_actions import check_state, start_action, state_conflict
from mcloud.compute.service_servers import normal_ip
from mcloud.compute.service_servers_create import boot_image, ref_id
from mcloud.compute.api_servers_network import add_floating_ip, remove_floating_ip
from mcloud.core.errors import APIError, BadRequest, Conflict, Forbidden, NotFound, NotImplementedYet

#: action name -> (policy rule, Nova's body schema of the action's value, since, until)
SIMPLE = {
    "os-stop": ("os_compute_api:servers:stop", "stop"),
    "os-start": ("os_compute_api:servers:start", "start"),
    "pause": ("os_compute_api:os-pause-server:pause", "pause"),
    "unpause": ("os_compute_api:os-pause-server:unpause", "unpause"),
    "suspend": ("os_compute_api:os-suspend-server:suspend", "suspend"),
    "resume": ("os_compute_api:os-suspend-server:resume", "resume"),
    "unrescue": ("os_compute_api:os-unrescue", "unrescue"),
    "confirmResize": ("os_compute_api:servers:confirm_resize", "confirmResize"),
    "revertResize": ("os_compute_api:servers:revert_resize", "revertResize"),
    "shelveOffload": ("os_compute_api:os-shelve:shelve_offload", "shelveOffload"),
}


#: Nova's answer to an action when it is not 202
STATUS = {"confirmResize": 204, "rescue": 200, "evacuate": 200, "os-getConsoleOutput": 200,
          "os-getVNCConsole": 200}


def _servers(request: Request) -> Any:
    return compute_of(request).servers


async def server_action(request: Request, server_id: str) -> Response:  # noqa: C901
    caller = await caller_of(request)
    body = await body_of(request)
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("There is no such action: " + (",".join(body) if isinstance(body, dict) else str(body)))
    (name, value), = body.items()
    servers = _servers(request)
    handler = ACTIONS.get(name)
    if handler is None:
        raise BadRequest(f"There is no such action: {name}")
    async with servers.db.write() as session:
        inst = await servers.get(session, caller, server_id, for_update=True)
        result = await handler(request, caller, servers, session, inst, value)
    servers.compute.tasks.wake()
    if callable(result) and not isinstance(result, Response):
        return await result()  # work after the transaction (other services' writes): its own answer
    if isinstance(result, tuple):
        return await _after(request, caller, servers, inst, result)
    if isinstance(result, Response):
        return result
    status = STATUS.get(name, 202)
    if result is None or status == 204:
        return respond(None, status)
    return respond(result, status)


async def _after(request: Request, caller: Caller, servers: Any, inst: m.Instance, result: tuple[str, Any]) -> Response:
    """What an action does once its transaction is over: host calls (console output, VNC),
    security groups on the server's ports, forceDelete."""
    kind, arg = result
    compute = servers.compute
    if kind == "force_delete":
        await servers.delete(caller, inst.uuid, "forceDelete")
        return respond(None, 202)
    if kind == "sg":
        await _change_security_group(compute, caller, servers, inst, *arg)
        return respond(None, 202)
    if kind == "console":
        out = await _call_host(servers, inst, "console_output", {"length": arg})
        text = out.get("output", "") if isinstance(out, dict) else str(out or "")
        if arg is not None and arg >= 0:
            text = "\n".join(text.split("\n")[-arg:]) if arg else ""
        return respond({"output": text}, 200)
    return respond({"console": {"type": arg, "url": await console_url(servers, inst, arg)}}, 200)


async def _call_host(servers: Any, inst: m.Instance, op: str, payload: dict[str, Any]) -> Any:
    call = getattr(servers.compute.conductor, "call_host", None)
    if call is None or not inst.host:
        raise Conflict(f"Instance {inst.uuid} is not ready: its host cannot be reached.")
    try:
        return await call(inst, op, payload, timeout=30)
    except APIError:
        raise
    except Exception as exc:  # the host's error (HostOpFailed, HostTimeout): Nova's 409
        raise Conflict(f"Console for instance {inst.uuid} is not available: {exc}") from None


async def console_url(servers: Any, inst: m.Instance, console_type: str) -> str:
    """The URL of the instance's VNC console from its host (the "console" host op; 409 when the
    server is not running or its host gives no URL)."""
    if inst.vm_state != st.ACTIVE or not inst.host:
        raise Conflict(f"Instance {inst.uuid} is not ready" if inst.vm_state == st.BUILDING else
                       f"Cannot 'get_vnc_console' instance {inst.uuid} while it is in vm_state {inst.vm_state}")
    out = await _call_host(servers, inst, "console", {"type": console_type, "protocol": "vnc"})
    url = out.get("url") if isinstance(out, dict) else None
    if not url:
        raise Conflict(f"Console for instance {inst.uuid} is not available: its host offers no console proxy.")
    return str(url)


async def _change_security_group(compute: Any, caller: Caller, servers: Any, inst: m.Instance, add: bool,
                                 name: str) -> None:
    from mcloud.network.service import Caller as NetworkCaller  # noqa: PLC0415

    l3 = compute.network.l3
    page = await l3.list_security_groups(caller.network_caller(), {})
    matches = [g for g in page.items if name in (g["name"], g["id"])
               and (g.get("project_id") == inst.project_id or caller.is_admin)]
    if not matches:
        raise NotFound(f"Security group {name} not found.")
    if len(matches) > 1:
        raise Conflict(f"Multiple security groups found matching '{name}'. Use an ID to be more specific.")
    group = matches[0]
    ports = (await servers.ports_of([inst.uuid]))[inst.uuid]
    if not ports:
        raise BadRequest(f"Instance {inst.uuid} has no network interfaces.")
    internal = NetworkCaller.internal()
    for port in ports:
        have = list(port.get("security_groups") or [])
        if add:
            if group["id"] in have:
                raise BadRequest(f"Security group {name} is already associated with the instance {inst.uuid}")
            have.append(group["id"])
        else:
            if group["id"] not in have:
                raise BadRequest(f"Security group {name} not associated with the instance {inst.uuid}")
            have.remove(group["id"])
        await compute.network.update_port(internal, port["id"], {"security_groups": have})
    async with servers.db.write() as session:
        row = await servers.get(session, caller, inst.uuid, for_update=True)
        names = list(row.security_groups or [])
        if add and group["name"] not in names:
            names.append(group["name"])
        elif not add and group["name"] in names:
            names.remove(group["name"])
        row.security_groups = names
        row.updated_at = m.now()


def _target(inst: m.Instance) -> dict[str, Any]:
    return {"project_id": inst.project_id, "user_id": inst.user_id}


def _simple(name: str) -> Any:
    rule, action = SIMPLE[name]

    async def run(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance,
                  value: Any) -> None:
        caller.authorize(rule, _target(inst))
        await start_action(servers, session, caller, inst, action)
    return run


async def _reboot(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance, value: Any) -> None:
    sc.validate({"reboot": value}, {"type": "object", "properties": {"reboot": {
        "type": "object", "properties": {"type": {"type": "string", "enum": ["HARD", "Hard", "hard", "SOFT",
                                                                              "Soft", "soft"]}},
        "required": ["type"], "additionalProperties": False}}})
    caller.authorize("os_compute_api:servers:reboot", _target(inst))
    hard = value["type"].upper() == "HARD"
    await start_action(servers, session, caller, inst, "reboot_hard" if hard else "reboot_soft",
                       {"type": "HARD" if hard else "SOFT"}, shown="reboot")


async def _lock(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance, value: Any) -> None:
    caller.authorize("os_compute_api:os-lock-server:lock", _target(inst))
    reason = None
    if value is not None:
        if not caller.at(2, 73) and value:
            raise BadRequest("Invalid input for field/attribute lock. Additional properties are not allowed")
        sc.validate(value, {"type": ["object", "null"], "properties": {
            "locked_reason": {"type": "string", "minLength": 1, "maxLength": 255}}, "additionalProperties": False})
        reason = (value or {}).get("locked_reason")
    await servers.record_action(session, caller, inst, "lock")
    inst.locked, inst.locked_by, inst.locked_reason = True, "admin" if caller.is_admin and \
        caller.project_id != inst.project_id else "owner", reason
    inst.updated_at = m.now()


async def _unlock(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance, value: Any) -> None:
    caller.authorize("os_compute_api:os-lock-server:unlock", _target(inst))
    if inst.locked and inst.locked_by == "admin" and caller.project_id != inst.project_id or \
            inst.locked and inst.locked_by == "admin" and not caller.is_admin:
        caller.authorize("os_compute_api:os-lock-server:unlock:unlock_override", _target(inst))
    await servers.record_action(session, caller, inst, "unlock")
    inst.locked, inst.locked_by, inst.locked_reason = False, None, None
    inst.updated_at = m.now()


async def _rescue(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance, value: Any) -> Any:
    sc.validate(value, {"type": ["object", "null"], "properties": {
        "adminPass": {"type": "string"}, "rescue_image_ref": {"type": "string", "format": "uuid"}},
        "additionalProperties": False})
    caller.authorize("os_compute_api:os-rescue", _target(inst))
    check_state(inst, "rescue")
    await volume_backed.refuse_rescue(servers.compute, session, caller, inst, (value or {}).get("rescue_image_ref"))
    password = (value or {}).get("adminPass") or uuidlib.uuid4().hex[:12]
    params = {"rescue_image_ref": (value or {}).get("rescue_image_ref"), "admin_pass": password}
    await start_action(servers, session, caller, inst, "rescue", params)
    return {"adminPass": password}


async def _flavor(servers: Any, session: Any, caller: Caller, ref: Any) -> dict[str, Any]:
    return await servers.compute.resources.get_flavor_for_boot(session, caller, ref_id(ref))


async def _resize(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance, value: Any) -> None:
    sc.validate(value, {"type": "object", "properties": {
        "flavorRef": {"type": ["string", "integer"], "minLength": 1},
        "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]}},
        "required": ["flavorRef"], "additionalProperties": False})
    caller.authorize("os_compute_api:servers:resize", _target(inst))
    servers.check_lock(caller, inst)
    check_state(inst, "resize")
    flavor = await _flavor(servers, session, caller, value["flavorRef"])
    old = inst.flavor or {}
    if str(flavor.get("id")) == str(old.get("id")):
        raise BadRequest("When resizing, instances must change flavor!")
    if int(flavor.get("root_gb") or 0) < int(old.get("root_gb") or 0):
        raise BadRequest("Resize to zero disk flavor is not allowed." if not flavor.get("root_gb") else
                         "Flavor's disk is too small for requested image.")
    check = getattr(servers.compute.resources, "check_quota", None)
    if check is not None:
        deltas = {"cores": max(0, int(flavor.get("vcpus") or 0) - int(old.get("vcpus") or 0)),
                  "ram": max(0, int(flavor.get("memory_mb") or 0) - int(old.get("memory_mb") or 0))}
        if any(deltas.values()):
            await check(session, inst.project_id, inst.user_id, deltas)
    inst.new_flavor = flavor
    if "OS-DCF:diskConfig" in value:
        inst.system_metadata = {**(inst.system_metadata or {}), "disk_config": value["OS-DCF:diskConfig"]}
    await start_action(servers, session, caller, inst, "resize", {"flavor": flavor}, check_lock=False)


async def _rebuild(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance, value: Any) -> Any:
    sc.validate(value, {"type": "object", "properties": {
        "imageRef": {"type": "string"}, "name": sc.NAME, "adminPass": {"type": "string"},
        "metadata": sc.METADATA, "preserve_ephemeral": sc.BOOLEAN,
        "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
        "accessIPv4": {"type": "string"}, "accessIPv6": {"type": "string"}, "personality": {"type": "array"},
        "key_name": {"type": ["string", "null"]}, "user_data": {"type": ["string", "null"], "format": "base64"},
        "description": sc.DESCRIPTION, "trusted_image_certificates": {"type": ["array", "null"]},
        "hostname": sc.FQDN}, "required": ["imageRef"], "additionalProperties": False})
    caller.authorize("os_compute_api:servers:rebuild", _target(inst))
    servers.check_lock(caller, inst)
    check_state(inst, "rebuild")
    image_ref = ref_id(value["imageRef"])
    compute = servers.compute
    image, view = await boot_image(compute, session, caller, image_ref)
    await volume_backed.refuse_rebuild(compute, session, caller, inst, image_ref)
    if "name" in value:
        inst.name = value["name"]
    if "description" in value and caller.at(2, 19):
        inst.description = value["description"]
    if "metadata" in value:
        await servers.set_metadata(session, inst, value["metadata"], True)
    if "user_data" in value and caller.at(2, 57):
        inst.user_data = value["user_data"]
    if "key_name" in value and caller.at(2, 54):
        if value["key_name"] is None:
            inst.key_name = inst.key_data = None
        else:
            key = await compute.resources.get_keypair(session, inst.user_id, value["key_name"])
            inst.key_name, inst.key_data = key[0], key[1]
    for field, column in (("accessIPv4", "access_ip_v4"), ("accessIPv6", "access_ip_v6")):
        if field in value:
            setattr(inst, column, normal_ip(value[field]))
    inst.image_ref = image_ref
    sysmeta = {k: v for k, v in (inst.system_metadata or {}).items() if not k.startswith("image_")}
    sysmeta["image_properties"] = dict(view.properties)
    sysmeta.update({"image_disk_format": image.disk_format or "", "image_min_disk": str(image.min_disk or 0),
                    "image_min_ram": str(image.min_ram or 0), "image_base_image_ref": image_ref})
    if "OS-DCF:diskConfig" in value:
        sysmeta["disk_config"] = value["OS-DCF:diskConfig"]
    inst.system_metadata = sysmeta
    password = value.get("adminPass") or uuidlib.uuid4().hex[:12]
    await start_action(servers, session, caller, inst, "rebuild", {
        "image": {"id": image_ref, "properties": dict(view.properties), "disk_format": image.disk_format,
                  "min_disk": image.min_disk, "min_ram": image.min_ram, "size": image.size},
        "admin_pass": password, "preserve_ephemeral": sc.as_bool(value.get("preserve_ephemeral", False))},
        check_lock=False)
    await session.flush()
    server = await servers.render(caller, base_url(request), [inst], session, mode="rebuild")
    out = server[0]
    out["adminPass"] = password
    return {"server": out}


async def _image_for(servers: Any, session: Any, caller: Caller, inst: m.Instance, name: str, image_type: str,
                     extra: dict[str, Any]) -> Any:
    """The queued image a snapshot or backup uploads into (Nova's compute_utils.create_image):
    the instance's image properties plus instance_uuid, user_id, image_type; ``shared`` with the
    server's project when another project's caller (the admin) makes it."""
    sysmeta = inst.system_metadata or {}
    props = dict(sysmeta.get("image_properties") or {})
    props.update({"instance_uuid": inst.uuid, "image_type": image_type, "user_id": caller.user_id or "",
                  "base_image_ref": inst.image_ref or "", **extra})
    fields = {"name": name, "disk_format": sysmeta.get("image_disk_format") or "qcow2",
              "container_format": sysmeta.get("image_container_format") or "bare",
              "min_disk": int((inst.flavor or {}).get("root_gb") or 0), "min_ram": int(sysmeta.get("image_min_ram") or 0),
              "visibility": "private"}
    return await servers.compute.image.create_image(session, caller.image_caller(), fields,
                                                    {k: str(v) for k, v in props.items()}, [])


async def _create_image(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance,
                        value: Any) -> Any:
    sc.validate(value, {"type": "object", "properties": {"name": sc.NAME, "metadata": sc.METADATA},
                        "required": ["name"], "additionalProperties": False})
    caller.authorize("os_compute_api:servers:create_image", _target(inst))
    servers.check_lock(caller, inst)
    check_state(inst, "createImage")
    if await volume_backed.root_bdm(session, inst.uuid) is not None:
        caller.authorize("os_compute_api:servers:create_image:allow_volume_backed", _target(inst))

        async def snapshot() -> Response:  # the volume service's writes: after this transaction
            image_id = await volume_backed.snapshot_volume_backed(servers, caller, inst, value["name"],
                                                                  dict(value.get("metadata") or {}))
            if caller.at(2, 45):
                return respond({"image_id": image_id}, 202)
            return respond(None, 202, headers={"Location": f"{base_url(request)}/v2.1/images/{image_id}"})
        return snapshot
    image = await _image_for(servers, session, caller, inst, value["name"], "snapshot", value.get("metadata") or {})
    await start_action(servers, session, caller, inst, "createImage", {"image_id": image.id, "name": value["name"]},
                       check_lock=False)
    location = f"{base_url(request)}/v2.1/images/{image.id}"
    if caller.at(2, 45):
        return respond({"image_id": image.id}, 202)
    return respond(None, 202, headers={"Location": location})


async def _create_backup(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance,
                         value: Any) -> Any:
    """Nova's createBackup: a snapshot into an image of type "backup" (with its backup_type); once
    it is uploaded the conductor keeps the newest ``rotation`` backups of that type (Nova's
    _rotate_backups, service_servers_backup.rotate_backups). No lock check, as Nova."""
    sc.validate(value, {"type": "object", "properties": {
        "name": sc.NAME, "backup_type": {"type": "string"},
        "rotation": {"type": ["integer", "string"], "pattern": "^[0-9]*$", "minimum": 0, "minLength": 1},
        "metadata": sc.METADATA}, "required": ["name", "backup_type", "rotation"], "additionalProperties": False})
    caller.authorize("os_compute_api:os-create-backup", _target(inst))
    rotation = int(value["rotation"])
    metadata = dict(value.get("metadata") or {})
    if not caller.at(2, 39) and len(metadata) > 128:
        raise Forbidden(f"Quota exceeded for metadata_items: Requested {len(metadata)}, but already used 0 of 128 "
                        "metadata_items")
    check_state(inst, "createBackup")
    await volume_backed.refuse_backup(session, inst)
    image = await _image_for(servers, session, caller, inst, value["name"], "backup",
                             {**metadata, "backup_type": value["backup_type"]})
    await start_action(servers, session, caller, inst, "createBackup", {
        "image_id": image.id, "name": value["name"], "backup_type": value["backup_type"], "rotation": rotation},
        check_lock=False)
    if caller.at(2, 45):
        return respond({"image_id": image.id}, 202)
    headers = {"Location": f"{base_url(request)}/v2.1/images/{image.id}"} if rotation > 0 else None
    return respond(None, 202, headers=headers)


async def _restore(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance, value: Any) -> None:
    """Nova's restore of a soft-deleted server. mCloud deletes at once (Nova's default
    reclaim_instance_interval 0), so no server is ever SOFT_DELETED: Nova's 409 for every state."""
    caller.authorize("os_compute_api:os-deferred-delete:restore", _target(inst))
    servers.check_lock(caller, inst)
    if inst.vm_state != st.SOFT_DELETED:
        raise state_conflict(inst, "restore")


async def _shelve(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance, value: Any) -> None:
    caller.authorize("os_compute_api:os-shelve:shelve", _target(inst))
    await start_action(servers, session, caller, inst, "shelve")


async def _unshelve(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance, value: Any) -> None:
    caller.authorize("os_compute_api:os-shelve:unshelve", _target(inst))
    params: dict[str, Any] = {}
    if isinstance(value, dict):
        if not caller.at(2, 77):
            raise BadRequest("Invalid input for field/attribute unshelve. Value: {}. None is not of type 'null'")
        sc.validate(value, {"type": "object", "properties": {"availability_zone": {"type": ["string", "null"]},
                                                             "host": {"type": "string"}},
                            "additionalProperties": False})
        if "host" in value:
            if not caller.at(2, 91):
                raise BadRequest("Additional properties are not allowed ('host' was unexpected)")
            caller.authorize("os_compute_api:os-shelve:unshelve_to_host", _target(inst))
            params["host"] = value["host"]
        if "availability_zone" in value:
            if inst.vm_state != st.SHELVED_OFFLOADED:
                raise Conflict("The availability_zone parameter is only allowed for shelved offloaded servers.")
            params["availability_zone"] = value["availability_zone"]
    elif value is not None:
        raise BadRequest(f"Invalid input for field/attribute unshelve. Value: {value}. {value!r} is not of "
                         f"type 'object', 'null'")
    await start_action(servers, session, caller, inst, "unshelve", params)


async def _known_host(servers: Any, session: Any, host: str, not_found: type[APIError] = BadRequest,
                      message: str = "Compute host {host} could not be found.") -> None:
    """A destination the caller names must be a registered compute host (Nova's
    ComputeHostNotFound: 400 for migrations, 404 "Compute host X not found." for evacuate)."""
    node_of = getattr(servers.compute.hosts, "node_of", None)
    if node_of is not None and await node_of(session, host) is None:
        raise not_found(message.format(host=host))


async def _migrate(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance, value: Any) -> None:
    caller.authorize("os_compute_api:os-migrate-server:migrate", _target(inst))
    params: dict[str, Any] = {}
    if value is not None:
        sc.validate(value, {"type": "object", "properties": {"host": {"type": ["string", "null"]}},
                            "additionalProperties": False})
        if value.get("host"):
            if not caller.at(2, 56):
                raise BadRequest("Additional properties are not allowed ('host' was unexpected)")
            caller.authorize("os_compute_api:os-migrate-server:migrate:host", _target(inst))
            await _known_host(servers, session, value["host"])
            if value["host"] == inst.host:
                raise BadRequest("The target host can't be the same one.")
            params["host"] = value["host"]
    await start_action(servers, session, caller, inst, "migrate", params)


async def _live_migrate(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance,
                        value: Any) -> None:
    sc.validate(value, {"type": "object", "properties": {
        "host": {"type": ["string", "null"]}, "block_migration": {"oneOf": [sc.BOOLEAN, {"enum": ["auto"]}]},
        "disk_over_commit": sc.BOOLEAN, "force": sc.BOOLEAN}, "required": ["host"], "additionalProperties": True})
    caller.authorize("os_compute_api:os-migrate-server:migrate_live", _target(inst))
    if sc.as_bool(value.get("force", False)) and not value.get("host"):
        raise BadRequest("Can't force to a non-provided destination")
    if value.get("host"):
        caller.authorize("os_compute_api:os-migrate-server:migrate_live:host", _target(inst))
        # a named destination must be a compute host that is up (Nova's 400s ComputeHostNotFound and
        # ComputeServiceUnavailable), before anything is written
        await servers.compute.hosts.check_target(session, value["host"])
    await start_action(servers, session, caller, inst, "os-migrateLive", {
        "host": value.get("host"), "block_migration": value.get("block_migration", "auto"),
        "force": sc.as_bool(value.get("force", False))}, shown="os-migrateLive")


async def _evacuate(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance,
                    value: Any) -> Any:
    sc.validate(value, {"type": "object", "properties": {
        "host": {"type": "string"}, "adminPass": {"type": "string"}, "onSharedStorage": sc.BOOLEAN,
        "force": sc.BOOLEAN, "targetState": {"type": "string", "enum": ["stopped"]}}, "additionalProperties": False})
    caller.authorize("os_compute_api:os-evacuate", _target(inst))
    servers.check_lock(caller, inst)
    check_state(inst, "evacuate")
    if inst.host and getattr(servers.compute.hosts, "candidates_state", None) is not None:
        hosts = await servers.compute.hosts.candidates_state(session)
        state = hosts.get(inst.host)
        if state is not None and getattr(state, "up", False) and not getattr(state, "forced_down", False):
            raise Conflict(f"Compute service of {inst.host} is still in use.")
    if sc.as_bool(value.get("force", False)) and not value.get("host"):
        raise BadRequest("Can't force to a non-provided destination")
    if value.get("host"):
        await _known_host(servers, session, value["host"], NotFound, "Compute host {host} not found.")
    if value.get("host") and value["host"] == inst.host:
        raise BadRequest("The target host can't be the same one.")
    password = value.get("adminPass") or uuidlib.uuid4().hex[:12]
    await start_action(servers, session, caller, inst, "evacuate", {
        "host": value.get("host"), "admin_pass": password, "target_state": value.get("targetState")},
        check_lock=False)
    if caller.at(2, 14):
        return None
    return {"adminPass": password}


async def _console_output(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance,
                          value: Any) -> Any:
    sc.validate(value, {"type": ["object", "null"], "properties": {
        "length": {"type": ["integer", "string", "null"], "pattern": "^-?[0-9]+$"}}, "additionalProperties": False})
    caller.authorize("os_compute_api:os-console-output", _target(inst))
    length = (value or {}).get("length")
    if length is not None:
        length = int(length)
        if length < -1:
            raise BadRequest("Invalid input for field/attribute length. Value: %s." % length)
    if inst.vm_state not in (st.ACTIVE, st.RESCUED, st.PAUSED, st.STOPPED, st.SUSPENDED, st.ERROR) or not inst.host:
        raise state_conflict(inst, "get_console_output")
    return ("console", length)


async def _vnc(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance, value: Any) -> Any:
    sc.validate(value, {"type": "object", "properties": {"type": {"type": "string", "enum": ["novnc", "xvpvnc"]}},
                        "required": ["type"], "additionalProperties": False})
    caller.authorize("os_compute_api:os-remote-consoles", _target(inst))
    if value["type"] == "xvpvnc":
        raise BadRequest("Unavailable console type xvpvnc.")
    if inst.vm_state != st.ACTIVE or not inst.host:
        raise Conflict(f"Instance {inst.uuid} is not ready" if inst.vm_state == st.BUILDING else
                       f"Cannot 'get_vnc_console' instance {inst.uuid} while it is in vm_state {inst.vm_state}")
    return ("vnc", value["type"])


async def _for_unsupported(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance,
                           value: Any) -> None:
    caller.authorize("os_compute_api:servers:trigger_crash_dump", _target(inst))
    if not caller.at(2, 17):
        raise BadRequest("There is no such action: trigger_crash_dump")
    servers.check_lock(caller, inst)
    check_state(inst, "trigger_crash_dump")
    raise BadRequest("Triggering crash dump is not supported")


async def _reset_state(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance,
                       value: Any) -> None:
    sc.validate(value, {"type": "object", "properties": {"state": {"type": "string", "enum": ["active", "error"]}},
                        "required": ["state"], "additionalProperties": False})
    caller.authorize("os_compute_api:os-admin-actions:reset_state", _target(inst))
    await servers.record_action(session, caller, inst, "resetState")
    inst.vm_state, inst.task_state = value["state"], None
    inst.updated_at = m.now()


async def _inject(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance, value: Any) -> None:
    caller.authorize("os_compute_api:os-admin-actions:inject_network_info", _target(inst))
    await servers.record_action(session, caller, inst, "injectNetworkInfo")


async def _change_password(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance,
                           value: Any) -> None:
    sc.validate(value, {"type": "object", "properties": {"adminPass": {"type": "string"}},
                        "required": ["adminPass"], "additionalProperties": False})
    caller.authorize("os_compute_api:os-admin-password", _target(inst))
    if inst.vm_state != st.ACTIVE:
        raise state_conflict(inst, "changePassword")
    raise NotImplementedYet("Unable to set password on instance")


def _sg(add: bool) -> Any:
    async def run(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance, value: Any) -> None:
        sc.validate(value, {"type": "object", "properties": {"name": {"type": "string", "minLength": 1}},
                            "required": ["name"], "additionalProperties": False})
        caller.authorize("os_compute_api:os-security-groups:add" if add else "os_compute_api:os-security-groups:remove",
                         _target(inst))
        return ("sg", (add, value["name"]))
    return run


async def _delete_action(request: Request, caller: Caller, servers: Any, session: Any, inst: m.Instance,
                         value: Any) -> Any:
    return ("force_delete", None)


ACTIONS: dict[str, Any] = {name: _simple(name) for name in SIMPLE}
ACTIONS.update({
    "reboot": _reboot, "lock": _lock, "unlock": _unlock, "rescue": _rescue, "resize": _resize,
    "rebuild": _rebuild, "createImage": _create_image, "shelve": _shelve, "unshelve": _unshelve,
    "migrate": _migrate, "os-migrateLive": _live_migrate, "evacuate": _evacuate,
    "os-getConsoleOutput": _console_output, "os-getVNCConsole": _vnc, "trigger_crash_dump": _for_unsupported,
    "os-resetState": _reset_state, "injectNetworkInfo": _inject, "resetNetwork": _inject,
    "changePassword": _change_password, "addSecurityGroup": _sg(True), "removeSecurityGroup": _sg(False),
    "forceDelete": _delete_action, "createBackup": _create_backup, "restore": _restore,
    "addFloatingIp": add_floating_ip, "removeFloatingIp": remove_floating_ip,
})


# ---------------------------------------------------------------------- os-instance-actions


def _action_body(caller: Caller, row: m.InstanceAction, events: list[m.InstanceActionEvent] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"action": row.action, "instance_uuid": row.instance_uuid, "request_id": row.request_id,
                           "user_id": row.user_id, "project_id": row.project_id, "start_time": _ms(row.start_time),
                           "message": row.message}
    if caller.at(2, 58):
        out["updated_at"] = _ms(row.updated_at)
    if events is not None:
        shown = []
        for ev in events:
            item: dict[str, Any] = {"event": ev.event, "start_time": _ms(ev.start_time),
                                    "finish_time": _ms(ev.finish_time), "result": ev.result}
            if caller.can("os_compute_api:os-instance-actions:events:details", {"project_id": row.project_id}):
                item["traceback"] = ev.traceback
                if caller.at(2, 62):
                    item["host"] = ev.host or ""
            if caller.at(2, 62):
                item["hostId"] = _host_id(row.project_id or "", ev.host)
            if caller.at(2, 84) and caller.can("os_compute_api:os-instance-actions:events:details",
                                               {"project_id": row.project_id}):
                item["details"] = None
            shown.append(item)
        out["events"] = shown
    return out


def _ms(dt: datetime | None) -> str | None:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") if dt else None


def _host_id(project_id: str, host: str | None) -> str:
    from mcloud.compute.views import host_id  # noqa: PLC0415

    return host_id(project_id, host)


async def list_instance_actions(request: Request, server_id: str) -> Response:
    caller = await caller_of(request)
    servers = _servers(request)
    params = query(request)
    async with servers.db.read() as session:
        inst = await servers.get(session, caller, server_id, deleted=True)
        caller.authorize("os_compute_api:os-instance-actions:list", {"project_id": inst.project_id})
        q = sa.select(m.InstanceAction).where(m.InstanceAction.instance_uuid == inst.uuid)
        if caller.at(2, 58):
            for key, op in (("changes-since", ">="), ("changes-before", "<=")):
                if key in params and (key == "changes-since" or caller.at(2, 66)):
                    from mcloud.compute.service_servers import parse_time  # noqa: PLC0415

                    at = parse_time(params[key][-1], key)
                    q = q.where(m.InstanceAction.updated_at >= at if op == ">=" else m.InstanceAction.updated_at <= at)
        rows = list((await session.execute(q.order_by(m.InstanceAction.start_time.desc(),
                                                      m.InstanceAction.id.desc()))).scalars())
    body: dict[str, Any] = {}
    if caller.at(2, 58):
        marker = params.get("marker", [None])[-1]
        if marker is not None:
            index = next((i for i, r in enumerate(rows) if r.request_id == marker), None)
            if index is None:
                raise BadRequest(f"Marker {marker} could not be found.")
            rows = rows[index + 1:]
        limit = sc.query_limit(params, servers.compute.config.max_limit)
        if limit is not None:
            full = len(rows) >= limit
            rows = rows[:limit]
            if rows and full and limit:
                body["links"] = [{"rel": "next", "href": f"{base_url(request)}{V21}/servers/{inst.uuid}/"
                                  f"os-instance-actions?limit={limit}&marker={rows[-1].request_id}"}]
    body["instanceActions"] = [_action_body(caller, r, None) for r in rows]
    return respond(body)


async def show_instance_action(request: Request, server_id: str, request_id: str) -> Response:
    caller = await caller_of(request)
    servers = _servers(request)
    async with servers.db.read() as session:
        inst = await servers.get(session, caller, server_id, deleted=True)
        caller.authorize("os_compute_api:os-instance-actions:show", {"project_id": inst.project_id})
        row = (await session.execute(sa.select(m.InstanceAction).where(
            m.InstanceAction.instance_uuid == inst.uuid, m.InstanceAction.request_id == request_id)
            .order_by(m.InstanceAction.id.desc()).limit(1))).scalar()
        if row is None:
            raise NotFound(f"Action {request_id} not found")
        events = None
        if caller.can("os_compute_api:os-instance-actions:events", {"project_id": inst.project_id}) or \
                caller.at(2, 51):
            events = list((await session.execute(sa.select(m.InstanceActionEvent).where(
                m.InstanceActionEvent.action_id == row.id).order_by(m.InstanceActionEvent.id))).scalars())
    return respond({"instanceAction": _action_body(caller, row, events)})


def add_routes(app: FastAPI) -> None:
    s = V21 + "/servers/{server_id}"
    app.add_api_route(s + "/action", server_action, methods=["POST"])
    app.add_api_route(s + "/os-instance-actions", list_instance_actions, methods=["GET"])
    app.add_api_route(s + "/os-instance-actions/{request_id}", show_instance_action, methods=["GET"])

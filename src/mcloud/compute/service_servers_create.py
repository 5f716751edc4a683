"""POST /servers: Nova's request forms, checked as Nova checks them (400 for an unknown flavor,
image, network, port, key or zone; 403 over quota), then the instances written in one
transaction with their metadata, tags and "create" actions, and handed to the conductor."""

from __future__ import annotations

import dataclasses
import secrets
import string
import uuid as uuidlib
from typing import Any

import sqlalchemy as sa

from mcloud.compute import models as m
from mcloud.compute import schemas as sc
from mcloud.compute import states
from mcloud.compute.drivers.base import boot_image_ids
from mcloud.compute.service import Caller
from mcloud.compute.service_servers import Servers, normal_ip, ref_id, sanitize_hostname
from mcloud.compute.service_servers_volumes import bdm_rows, check_mappings, volume_mappings
from mcloud.compute.volume_backed import image_mappings, merge_mappings
from mcloud.core.errors import APIError, BadRequest, Conflict, Forbidden

NETWORK = {"type": "object", "properties": {
    "fixed_ip": {"type": "string", "oneOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
    "port": {"oneOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]},
    "uuid": {"type": "string"},
    "tag": {"type": "string", "minLength": 1, "maxLength": 60, "pattern": "^[^,/]*$"}},
    "additionalProperties": False}
BDM = {"type": "object", "properties": {
    "uuid": {"type": "string"}, "source_type": {"type": "string", "enum": ["volume", "image", "snapshot", "blank"]},
    "destination_type": {"type": "string", "enum": ["local", "volume"]},
    "boot_index": {"type": ["integer", "string", "null"]}, "delete_on_termination": sc.BOOLEAN,
    "volume_size": {"type": ["integer", "string", "null"]}, "device_name": {"type": ["string", "null"]},
    "device_type": {"type": ["string", "null"]}, "disk_bus": {"type": ["string", "null"]},
    "guest_format": {"type": ["string", "null"]}, "no_device": {}, "tag": {"type": "string"},
    "volume_type": {"type": ["string", "null"]}, "volume_id": {"type": "string"},
    "snapshot_id": {"type": "string"}}, "additionalProperties": False}
SERVER = {"type": "object", "properties": {
    "name": sc.NAME, "imageRef": {"type": "string"}, "flavorRef": {"type": ["string", "integer"], "minLength": 1},
    "adminPass": {"type": "string"}, "metadata": sc.METADATA,
    "networks": {"oneOf": [{"type": "array", "items": NETWORK}, {"type": "string", "enum": ["none", "auto"]}]},
    "OS-DCF:diskConfig": {"type": "string", "enum": ["AUTO", "MANUAL"]},
    "accessIPv4": sc.ACCESS_IPV4, "accessIPv6": sc.ACCESS_IPV6,
    "personality": {"type": "array", "items": {"type": "object", "properties": {
        "path": {"type": "string"}, "contents": {"type": "string", "format": "base64"}},
        "additionalProperties": False}},
    "availability_zone": {"type": "string", "minLength": 1, "maxLength": 255},
    "block_device_mapping_v2": {"type": "array", "items": BDM},
    "block_device_mapping": {"type": "array"},
    "config_drive": sc.BOOLEAN, "key_name": {"type": "string", "minLength": 1, "maxLength": 255},
    "min_count": sc.POSITIVE_INT, "max_count": sc.POSITIVE_INT, "return_reservation_id": sc.BOOLEAN,
    "security_groups": {"type": "array", "minItems": 1, "items": {
        "type": "object", "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 255}},
        "additionalProperties": False}},
    "user_data": {"type": "string", "format": "base64", "maxLength": 65535},
    "description": sc.DESCRIPTION, "tags": sc.TAGS,
    "trusted_image_certificates": {"type": ["array", "null"]},
    "host": {"type": "string", "minLength": 1, "maxLength": 255},
    "hypervisor_hostname": {"type": "string", "minLength": 1, "maxLength": 255},
    "hostname": sc.FQDN},
    "required": ["name", "flavorRef"], "additionalProperties": False}
HINTS = {"type": "object", "properties": {
    "group": {"type": "string", "format": "uuid"},
    "different_host": {"oneOf": [{"type": "string", "format": "uuid"},
                                 {"type": "array", "items": {"type": "string", "format": "uuid"}}]},
    "same_host": {"oneOf": [{"type": "string", "format": "uuid"},
                            {"type": "array", "items": {"type": "string", "format": "uuid"}}]},
    "query": {"type": ["string", "object"]}, "target_cell": {"type": "string"},
    "different_cell": {"type": ["string", "array"]}, "build_near_host_ip": {"type": "string"},
    "cidr": {"type": "string"}}, "additionalProperties": True}
CREATE = {"type": "object", "properties": {"server": SERVER, "os:scheduler_hints": HINTS,
                                           "OS-SCH-HNT:scheduler_hints": HINTS},
          "required": ["server"], "additionalProperties": False}

#: server fields and the microversion they start at (and end before)
GATES: dict[str, tuple[tuple[int, int], tuple[int, int] | None]] = {
    "description": ((2, 19), None), "tags": ((2, 52), None), "trusted_image_certificates": ((2, 63), None),
    "host": ((2, 74), None), "hypervisor_hostname": ((2, 74), None), "hostname": ((2, 90), None),
    "personality": ((2, 1), (2, 56))}


@dataclasses.dataclass
class Created:
    instances: list[m.Instance]
    reservation_id: str
    admin_pass: str | None


def _admin_pass() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(12))


def _unexpected(key: str) -> BadRequest:
    return BadRequest(f"Additional properties are not allowed ('{key}' was unexpected)")


async def create_servers(servers: Servers, caller: Caller, body: Any) -> Created:  # noqa: C901
    compute = servers.compute
    if not isinstance(body, dict) or not isinstance(body.get("server"), dict):
        sc.validate(body, CREATE)
    server = body["server"]
    for key, (since, until) in GATES.items():
        if key in server and (not caller.at(*since) or (until is not None and caller.at(until[0], until[1] + 1))):
            raise BadRequest(f"Invalid input for field/attribute server. Value: {server}. "
                             f"Additional properties are not allowed ('{key}' was unexpected)")
    if caller.at(2, 37) and "networks" not in server:
        raise BadRequest(f"Invalid input for field/attribute server. Value: {server}. "
                         f"'networks' is a required property")
    if not caller.at(2, 37) and isinstance(server.get("networks"), str):
        raise BadRequest(f"Invalid input for field/attribute networks. Value: {server['networks']}. "
                         f"{server['networks']!r} is not of type 'array'")
    if not caller.at(2, 32):
        for net in server.get("networks") or []:
            if isinstance(net, dict) and "tag" in net:
                raise BadRequest("Invalid input for field/attribute networks. Additional properties are not "
                                 "allowed ('tag' was unexpected)")
    sc.validate(body, CREATE)
    caller.authorize("os_compute_api:servers:create", {"project_id": caller.project_id, "user_id": caller.user_id})
    hints = dict(body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") or {})
    name = server["name"]
    min_count = int(server.get("min_count", 1))
    max_count = int(server.get("max_count", min_count))
    if min_count > max_count:
        raise BadRequest("min_count must be <= max_count")
    user_data = server.get("user_data")
    config_drive = sc.as_bool(server["config_drive"]) if "config_drive" in server else False
    # the zone, and "zone:host[:node]" (admin)
    az = server.get("availability_zone")
    forced_host = forced_node = None
    if az and ":" in az:
        caller.authorize("os_compute_api:servers:create:forced_host")
        az, _, rest = az.partition(":")
        forced_host, _, forced_node = rest.partition(":")
        forced_host, forced_node = forced_host or None, forced_node or None
    if "host" in server or "hypervisor_hostname" in server:
        caller.authorize("compute:servers:create:requested_destination")
    # the image: imageRef, or the boot BDM with source image
    image_ref = ref_id(server["imageRef"]) if server.get("imageRef") else ""
    for bdm in server.get("block_device_mapping_v2") or []:
        source, dest = bdm.get("source_type"), bdm.get("destination_type", "local" if
                                                         bdm.get("source_type") == "image" else "volume")
        if source == "image" and dest == "local":
            if str(bdm.get("boot_index", 0)) in ("0", "None") and bdm.get("uuid"):
                image_ref = image_ref or bdm["uuid"]
            continue
    if "block_device_mapping" in server and server["block_device_mapping"]:
        raise BadRequest("Block Device Mapping is Invalid: the legacy block_device_mapping is not supported "
                         "by this cloud; use block_device_mapping_v2.")
    # an image made by createImage of a volume-backed server carries the mappings (volume_backed.py)
    defined_by = ""
    if image_ref and sc.is_uuid(image_ref):
        image_bdms = await _image_defined_mappings(compute, caller, image_ref)
        if image_bdms:
            defined_by = image_ref
            server = {**server, "block_device_mapping_v2": merge_mappings(
                image_bdms, list(server.get("block_device_mapping_v2") or []))}
    # volumes: the BDMs with a volume destination (service_servers_volumes), maybe the root disk
    mappings = volume_mappings(server, image_ref)
    boot_mapping = next((v for v in mappings if v["boot_index"] == 0), None)
    if boot_mapping is not None:
        image_ref = ""  # a volume-backed server shows no image, as Nova's
    elif not image_ref:
        raise BadRequest("Invalid imageRef provided.")
    if image_ref and not sc.is_uuid(image_ref):
        raise BadRequest("Invalid imageRef provided.")
    # the networks the caller asked for
    networks = server.get("networks", "auto" if caller.at(2, 37) else None)
    requested: list[dict[str, Any]] = []
    if isinstance(networks, list):
        for net in networks:
            port, uuid, fixed_ip = net.get("port"), net.get("uuid"), net.get("fixed_ip")
            if port:
                if fixed_ip:
                    raise BadRequest("Specified Fixed IP '%s' cannot be used with port '%s': the two cannot be "
                                     "specified together." % (fixed_ip, port))
            elif uuid is None:
                raise BadRequest("Bad networks format: network uuid is not in proper format (None)")
            elif not sc.is_uuid(uuid):
                raise BadRequest(f"Bad networks format: network uuid is not in proper format ({uuid})")
            requested.append({"network_id": uuid if not port else None, "port_id": port or None,
                              "fixed_ip": fixed_ip, "tag": net.get("tag")})
        if len(requested) > 1 or any(r["port_id"] for r in requested):
            if max_count > 1 and any(r["port_id"] for r in requested):
                raise BadRequest("Unable to launch multiple instances with a single configured port ID. Please "
                                 "launch your instance one by one with different ports.")
        seen_ports = [r["port_id"] for r in requested if r["port_id"]]
        if len(seen_ports) != len(set(seen_ports)):
            duplicate = next(p for p in seen_ports if seen_ports.count(p) > 1)
            raise Conflict(f"Port {duplicate} is still in use.")
    groups = [g["name"] for g in server.get("security_groups") or []] or ["default"]
    groups = list(dict.fromkeys(groups))
    key_name = server.get("key_name")
    resources = compute.resources
    network_caller = caller.network_caller()
    async with compute.db.read() as session:
        flavor = await resources.get_flavor_for_boot(session, caller, str(server["flavorRef"]).rsplit("/", 1)[-1]
                                                     if isinstance(server["flavorRef"], str) else
                                                     str(server["flavorRef"]))
        if boot_mapping is None:
            image, image_view = await boot_image(compute, session, caller, image_ref)
        elif boot_mapping["image_id"] or defined_by:
            image, image_view = await boot_image(compute, session, caller, boot_mapping["image_id"] or defined_by)
        else:
            image = image_view = None
        key = None
        if key_name:
            key = await resources.get_keypair(session, caller.user_id, key_name)
        group = None
        if hints.get("group"):
            group = await resources.group_for_boot(session, caller, hints["group"])
        if az and az != compute.config.default_availability_zone and hasattr(resources, "hosts_in_zone"):
            hosts = await resources.hosts_in_zone(session, az)
            if not hosts:
                raise BadRequest("The requested availability zone is not available")
    boot_volume = await check_mappings(compute, caller, mappings, max_count) if mappings else None
    if image is None:  # booted from an existing volume: its image's metadata stands for the image
        image, image_view = _volume_image(boot_volume or {})
    # flavor against image, as Nova checks it
    root_gb = int(flavor.get("root_gb") or 0)
    if boot_mapping is not None:
        if image.min_ram and int(flavor.get("memory_mb") or 0) < image.min_ram:
            raise BadRequest("Flavor's memory is too small for requested image.")
        size_gb = int(boot_mapping["volume_size"] or 0)
        if image.min_disk and size_gb and size_gb < image.min_disk:
            raise BadRequest(f"Volume is smaller than the minimum size specified in image metadata. Volume size "
                             f"is {size_gb << 30} bytes, minimum size is {image.min_disk << 30} bytes.")
    elif image.min_ram and int(flavor.get("memory_mb") or 0) < image.min_ram:
        raise BadRequest("Flavor's memory is too small for requested image.")
    if root_gb and image.min_disk and root_gb < image.min_disk:
        raise BadRequest("Flavor's disk is too small for requested image.")
    if root_gb and image.size and image.size > root_gb * 1024 ** 3:
        raise BadRequest("Flavor's disk is too small for requested image.")
    if root_gb == 0 and boot_mapping is None and not caller.can("os_compute_api:servers:create:zero_disk_flavor"):
        raise Forbidden("Only volume-backed servers are allowed for flavors with zero disk.")
    # networks, ports and security groups with the network service, as the caller sees them
    requested = await _check_networks(compute, network_caller, caller, networks, requested)
    await _check_security_groups(compute, network_caller, groups, networks)
    # quota: as many as fit between min and max (Nova tries max, then fewer)
    count = max_count
    check = getattr(resources, "check_quota", None)
    vcpus, ram = int(flavor.get("vcpus") or 0), int(flavor.get("memory_mb") or 0)
    admin_pass = server.get("adminPass") or _admin_pass()
    reservation_id = "r-" + secrets.token_hex(4)
    meta = dict(server.get("metadata") or {})
    if len(meta) > 128:
        raise Forbidden("Quota exceeded, too many metadata items.")
    requested_zone = az or compute.config.default_schedule_zone
    system_metadata: dict[str, Any] = {}
    system_metadata.update({"image_disk_format": image.disk_format or "", "image_container_format":
                            image.container_format or "", "image_min_disk": str(image.min_disk or 0),
                            "image_min_ram": str(image.min_ram or 0),
                            "image_base_image_ref": image_ref or (boot_mapping or {}).get("image_id") or "",
                            "disk_config": server.get("OS-DCF:diskConfig", "MANUAL"),
                            "image_properties": dict(image_view.properties)})
    tags = list(dict.fromkeys(server.get("tags") or []))
    stored_networks: Any = networks if isinstance(networks, str) else requested
    async with compute.db.write() as session:
        if check is not None:
            while True:
                try:
                    await check(session, caller.project_id, caller.user_id,
                                {"instances": count, "cores": vcpus * count, "ram": ram * count})
                    break
                except APIError:
                    if count <= min_count:
                        raise
                    count = min_count
        insts = []
        for index in range(count):
            uuid = str(uuidlib.uuid4())
            display = name if count == 1 else f"{name}-{index + 1}"
            if server.get("hostname"):
                hostname = server["hostname"] if count == 1 else f"{server['hostname']}-{index + 1}"
            else:
                hostname = sanitize_hostname(display, f"server-{uuid}")
            inst = m.Instance(
                uuid=uuid, project_id=caller.project_id or "", user_id=caller.user_id or "", name=display,
                hostname=hostname, description=server.get("description"), image_ref=image_ref, flavor=flavor,
                key_name=key[0] if key else None, key_data=key[1] if key else None, user_data=user_data,
                config_drive=config_drive, availability_zone=requested_zone, vm_state=states.BUILDING,
                task_state=states.SCHEDULING, power_state=states.NOSTATE, locked=False,
                access_ip_v4=normal_ip(server.get("accessIPv4")), access_ip_v6=normal_ip(server.get("accessIPv6")),
                progress=0,
                launch_index=index, reservation_id=reservation_id, requested_networks=stored_networks,
                security_groups=groups if networks != "none" else [], scheduler_hints=hints,
                requested_availability_zone=az, system_metadata=system_metadata)
            session.add(inst)
            insts.append(inst)
        await session.flush()
        meta_rows = [{"instance_uuid": i.uuid, "key": k, "value": v} for i in insts for k, v in meta.items()]
        if meta_rows:
            await session.execute(sa.insert(m.InstanceMetadata.__table__), meta_rows)
        for inst in insts:
            session.add_all(bdm_rows(inst.uuid, mappings))
        tag_rows = [{"instance_uuid": i.uuid, "tag": t} for i in insts for t in tags]
        if tag_rows:
            await session.execute(sa.insert(m.InstanceTag.__table__), tag_rows)
        for inst in insts:
            await servers.record_action(session, caller, inst, "create")
        if group is not None and hasattr(resources, "add_group_members"):
            await resources.add_group_members(session, hints["group"], [i.uuid for i in insts])
        submit = getattr(compute.conductor, "submit_build", None)
        if submit is not None:
            from mcloud.compute import conductor  # noqa: PLC0415

            request = conductor.BuildRequest(**_build_fields(conductor.BuildRequest, {
                "flavor": flavor,
                "image": {} if boot_mapping is not None else {
                    "id": image_ref, "name": image.name, "properties": dict(image_view.properties),
                    "min_disk": image.min_disk, "min_ram": image.min_ram, "disk_format": image.disk_format,
                    "size": image.size, "container_format": image.container_format},
                "networks": requested,
                "security_groups": groups if networks != "none" else [],
                "availability_zone": requested_zone, "force_host": forced_host, "force_node": forced_node,
                "requested_host": server.get("host"), "requested_node": server.get("hypervisor_hostname"),
                "group_id": hints.get("group"), "hints": hints, "project_id": caller.project_id,
                "user_id": caller.user_id, "request_id": caller.request_id, "admin_pass": admin_pass,
                "reservation_id": reservation_id, "num_instances": count}))
            await submit(session, insts, request)
    wake = getattr(compute.tasks, "wake", None)
    if wake is not None:
        wake()
    return Created(insts, reservation_id, admin_pass)


async def _image_defined_mappings(compute: Any, caller: Caller, image_ref: str) -> list[dict[str, Any]]:
    """The block device mappings an image carries (none when it is not found: checked later)."""
    async with compute.db.read() as session:
        try:
            image = await compute.image.get_image(session, caller.image_caller(), image_ref)
        except APIError:
            return []
        return image_mappings(dict((await compute.image.view(session, image)).properties))


async def boot_image(compute: Any, session: Any, caller: Caller, image_ref: str) -> tuple[Any, Any]:
    """The image a server boots (or is rebuilt) from, as the caller sees it: 400 when it, or the
    kernel or ramdisk it names, is unknown, or it is not active, as Nova. Returns the row and
    its view (properties)."""
    try:
        image = await compute.image.get_image(session, caller.image_caller(), image_ref)
    except APIError as exc:
        if exc.status == 404:
            raise BadRequest(f"Image {image_ref} could not be found.") from None
        raise
    if image.status != "active":
        raise BadRequest(f"Image {image_ref} is not active.")
    view = await compute.image.view(session, image)
    for boot_id in boot_image_ids(view.properties):  # its kernel and ramdisk, checked as Nova does
        if boot_id is not None:
            try:
                await compute.image.get_image(session, caller.image_caller(), boot_id)
            except APIError as exc:
                if exc.status == 404:
                    raise BadRequest(f"Image {boot_id} could not be found.") from None
                raise
    return image, view


def _volume_image(volume: dict[str, Any]) -> tuple[Any, Any]:
    """The image facts of a server booted from an existing volume: the volume's image metadata
    (Cinder's volume_image_metadata), as Nova reads its image_meta from the volume."""
    import types  # noqa: PLC0415

    meta = dict(volume.get("volume_image_metadata") or {})
    known = ("image_id", "image_name", "checksum", "disk_format", "container_format", "size", "min_disk", "min_ram")
    props = {k: v for k, v in meta.items() if k not in known}
    image = types.SimpleNamespace(name=meta.get("image_name"), min_ram=int(meta.get("min_ram") or 0),
                                  min_disk=int(meta.get("min_disk") or 0), size=0,
                                  disk_format=meta.get("disk_format"), container_format=meta.get("container_format"))
    return image, types.SimpleNamespace(properties=props)


def _build_fields(cls: Any, values: dict[str, Any]) -> dict[str, Any]:
    """The BuildRequest's own fields out of what SERVERS knows (names in the contract's Log)."""
    if dataclasses.is_dataclass(cls):
        names = {f.name for f in dataclasses.fields(cls)}
        return {k: v for k, v in values.items() if k in names}
    return values


async def _check_networks(compute: Any, network_caller: Any, caller: Caller, networks: Any,
                          requested: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each network visible to the caller, each port the caller's and free; ``auto`` (or none
    given before 2.37) picks the one network the project may use, as Nova does."""
    net_svc = compute.network
    if networks == "none":
        return []
    if networks is None or networks == "auto":
        page = await net_svc.list_networks(network_caller, {})
        usable = [n for n in page.items if not n.get("router:external") and n.get("status", "ACTIVE") == "ACTIVE"
                  and n.get("subnets")]
        own = [n for n in usable if n.get("project_id") == caller.project_id]
        pool = own or usable
        if not pool:
            if networks == "auto":
                raise BadRequest(f"Unable to automatically allocate a network for project {caller.project_id}")
            return []
        if len(pool) > 1:
            raise Conflict("Multiple possible networks found, use a Network ID to be more specific.")
        return [{"network_id": pool[0]["id"], "port_id": None, "fixed_ip": None, "tag": None}]
    out = []
    for req in requested:
        if req["port_id"]:
            try:
                port = await net_svc.show_port(network_caller, req["port_id"])
            except APIError as exc:
                if exc.status == 404:
                    raise BadRequest(f"Port {req['port_id']} could not be found.") from None
                raise
            if port.get("device_id"):
                raise Conflict(f"Port {req['port_id']} is still in use.")
            if not port.get("fixed_ips"):
                raise BadRequest(f"Port {req['port_id']} requires a FixedIP in order to be used.")
            out.append({**req, "network_id": port["network_id"]})
            continue
        try:
            net = await net_svc.show_network(network_caller, req["network_id"])
        except APIError as exc:
            if exc.status == 404:
                raise BadRequest(f"Network {req['network_id']} could not be found.") from None
            raise
        if net.get("router:external") and not net.get("shared") and \
                not caller.can("network:attach_external_network"):
            raise Forbidden(f"It is not allowed to create an interface on external network {net['id']}")
        if not net.get("subnets"):
            raise BadRequest(f"Network {net['id']} requires a subnet in order to boot instances on.")
        out.append(req)
    return out


async def _check_security_groups(compute: Any, network_caller: Any, groups: list[str], networks: Any) -> None:
    if networks == "none" or groups == ["default"]:
        return
    l3 = getattr(compute.network, "l3", None)
    if l3 is None:
        return
    page = await l3.list_security_groups(network_caller, {})
    known = {g["name"] for g in page.items} | {g["id"] for g in page.items}
    for name in groups:
        if name not in known and name != "default":
            raise BadRequest(f"Unable to find security_group with name or id '{name}'")

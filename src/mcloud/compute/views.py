"""Server bodies as Nova renders them (nova/api/openstack/compute/views/servers.py), gated at the
microversions Nova gates each field at."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from mcloud.compute import models as m
from mcloud.compute import states
from mcloud.compute.drivers.base import boot_image_ids
from mcloud.compute.service import Caller, utc

#: Nova's status from (vm_state, task_state) (nova/api/openstack/common.py _STATE_MAP)
_REBUILD = {states.REBUILDING: "REBUILD", "rebuild_block_device_mapping": "REBUILD",
            states.REBUILD_SPAWNING: "REBUILD"}
_RESIZE = {states.RESIZE_PREP: "RESIZE", states.RESIZE_MIGRATING: "RESIZE", states.RESIZE_MIGRATED: "RESIZE",
           states.RESIZE_FINISH: "RESIZE"}
STATE_MAP: dict[str, dict[str | None, str]] = {
    states.ACTIVE: {"default": "ACTIVE", states.REBOOTING: "REBOOT", states.REBOOT_PENDING: "REBOOT",
                    states.REBOOT_STARTED: "REBOOT", states.REBOOTING_HARD: "HARD_REBOOT",
                    states.REBOOT_PENDING_HARD: "HARD_REBOOT", states.REBOOT_STARTED_HARD: "HARD_REBOOT",
                    "updating_password": "PASSWORD", **_REBUILD, states.MIGRATING: "MIGRATING", **_RESIZE},
    states.BUILDING: {"default": "BUILD"},
    states.STOPPED: {"default": "SHUTOFF", **_RESIZE, **_REBUILD},
    states.RESIZED: {"default": "VERIFY_RESIZE", states.RESIZE_REVERTING: "REVERT_RESIZE"},
    states.PAUSED: {"default": "PAUSED", states.MIGRATING: "MIGRATING"},
    states.SUSPENDED: {"default": "SUSPENDED"},
    states.RESCUED: {"default": "RESCUE"},
    states.ERROR: {"default": "ERROR", **_REBUILD},
    states.DELETED: {"default": "DELETED"},
    states.SOFT_DELETED: {"default": "SOFT_DELETED"},
    states.SHELVED: {"default": "SHELVED"},
    states.SHELVED_OFFLOADED: {"default": "SHELVED_OFFLOADED"},
}
PROGRESS_STATUSES = {"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"}


def status_of(vm_state: str, task_state: str | None) -> str:
    task_map = STATE_MAP.get(vm_state, {"default": "UNKNOWN"})
    return task_map.get(task_state, task_map["default"])


def states_of_status(status: str) -> tuple[list[str], list[str | None]]:
    """Nova's task_and_vm_state_from_status: the vm_states and task_states a status names."""
    vm, task = set(), set()
    for vm_state, task_map in STATE_MAP.items():
        for task_state, shown in task_map.items():
            if shown.lower() == status.lower():
                vm.add(vm_state)
                task.add(task_state)
    return sorted(vm), sorted(task, key=lambda x: x or "")


def usage_time(dt: datetime | None) -> str | None:
    """OS-SRV-USG times: Nova shows them without a zone, with microseconds."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") if dt else None


def host_id(project_id: str, host: str | None) -> str:
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


def links(base: str, kind: str, ident: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": f"{base}/v2.1/{kind}/{ident}"},
            {"rel": "bookmark", "href": f"{base}/{kind}/{ident}"}]


def brief(base: str, inst: m.Instance) -> dict[str, Any]:
    return {"id": inst.uuid, "name": inst.name, "links": links(base, "servers", inst.uuid)}


def flavor_body(caller: Caller, base: str, flavor: dict[str, Any]) -> dict[str, Any]:
    if not caller.at(2, 47):
        return {"id": str(flavor.get("id", "")), "links": [{"rel": "bookmark",
                                                             "href": f"{base}/flavors/{flavor.get('id', '')}"}]}
    out = {"vcpus": flavor.get("vcpus", 0), "ram": flavor.get("memory_mb", 0), "disk": flavor.get("root_gb", 0),
           "ephemeral": flavor.get("ephemeral_gb", 0), "swap": flavor.get("swap", 0) or 0,
           "original_name": flavor.get("name", "")}
    if caller.can("os_compute_api:servers:show:flavor-extra-specs"):
        out["extra_specs"] = dict(flavor.get("extra_specs") or {})
    return out


def _plain_addresses(addresses: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Addresses without Nova's OS-EXT-IPS extension keys (the update/rebuild body before 2.75)."""
    return {net: [{"version": a["version"], "addr": a["addr"]} for a in entries]
            for net, entries in addresses.items()}


def detail(caller: Caller, base: str, inst: m.Instance, extra: dict[str, Any], mode: str = "list") -> dict[str, Any]:
    """The whole body of one server. ``extra``: addresses, metadata, tags, fault, security groups,
    server groups (from ``Servers.extras``).

    ``mode`` is what asks, as Nova's view builder is called: "list" (GET /servers/detail),
    "show" (GET /servers/{id}: ``server_groups`` from 2.71), "update" (PUT) and "rebuild": before
    2.75 those two answer the smaller body of Nova's update/rebuild (no OS-EXT-*, zone, key,
    config drive, security groups, volumes, and plain addresses), from 2.75 the whole one; a
    rebuild shows its ``key_name`` from 2.54 and ``user_data`` from 2.57."""
    status = status_of(inst.vm_state, inst.task_state)
    full = mode in ("list", "show") or caller.at(2, 75)
    image: Any = ""
    if inst.image_ref:
        image = {"id": inst.image_ref, "links": [{"rel": "bookmark", "href": f"{base}/images/{inst.image_ref}"}]}
        if caller.at(2, 98):
            image["properties"] = dict((inst.system_metadata or {}).get("image_properties") or {})
    out: dict[str, Any] = {
        "id": inst.uuid, "name": inst.name, "status": status, "tenant_id": inst.project_id,
        "user_id": inst.user_id, "metadata": extra.get("metadata", {}), "hostId": host_id(inst.project_id, inst.host),
        "image": image, "flavor": flavor_body(caller, base, inst.flavor or {}),
        "created": utc(inst.created_at), "updated": utc(inst.updated_at),
        "addresses": extra.get("addresses", {}) if full else _plain_addresses(extra.get("addresses", {})),
        "accessIPv4": inst.access_ip_v4 or "", "accessIPv6": inst.access_ip_v6 or "",
        "links": links(base, "servers", inst.uuid),
        "OS-DCF:diskConfig": (inst.system_metadata or {}).get("disk_config", "MANUAL"),
    }
    if full:
        out.update({
            "config_drive": "True" if inst.config_drive else "",
            "key_name": inst.key_name,
            "OS-EXT-AZ:availability_zone": inst.availability_zone or "",
            "OS-EXT-STS:power_state": inst.power_state, "OS-EXT-STS:task_state": inst.task_state,
            "OS-EXT-STS:vm_state": inst.vm_state,
            "OS-SRV-USG:launched_at": usage_time(inst.launched_at),
            "OS-SRV-USG:terminated_at": usage_time(inst.terminated_at),
            # the server's volumes; delete_on_termination from 2.3
            "os-extended-volumes:volumes_attached": [
                {k: v for k, v in a.items() if k == "id" or caller.at(2, 3)} for a in extra.get("volumes_attached", [])],
        })
    elif mode == "rebuild" and caller.at(2, 54):
        out["key_name"] = inst.key_name
    if status in PROGRESS_STATUSES:
        out["progress"] = inst.progress or 0
    groups = extra.get("security_groups")
    if groups and full:
        out["security_groups"] = [{"name": g} for g in groups]
    if full and caller.can("os_compute_api:os-extended-server-attributes", {"project_id": inst.project_id}):
        out["OS-EXT-SRV-ATTR:host"] = inst.host
        out["OS-EXT-SRV-ATTR:hypervisor_hostname"] = inst.node
        out["OS-EXT-SRV-ATTR:instance_name"] = inst.instance_name
        if caller.at(2, 3):
            boot_ids = boot_image_ids((inst.system_metadata or {}).get("image_properties") or {})
            out.update({"OS-EXT-SRV-ATTR:reservation_id": inst.reservation_id,
                        "OS-EXT-SRV-ATTR:launch_index": inst.launch_index,
                        "OS-EXT-SRV-ATTR:hostname": inst.hostname,
                        "OS-EXT-SRV-ATTR:kernel_id": boot_ids[0] or "",
                        "OS-EXT-SRV-ATTR:ramdisk_id": boot_ids[1] or "",
                        "OS-EXT-SRV-ATTR:root_device_name": inst.root_device_name})
            if mode != "rebuild":  # a rebuild shows ``user_data`` instead (2.57+)
                out["OS-EXT-SRV-ATTR:user_data"] = inst.user_data
    elif caller.at(2, 90):
        out["OS-EXT-SRV-ATTR:hostname"] = inst.hostname
    if caller.at(2, 9):
        out["locked"] = bool(inst.locked)
    if full and caller.at(2, 16) and inst.host and caller.can("os_compute_api:servers:show:host_status",
                                                     {"project_id": inst.project_id}):
        out["host_status"] = extra.get("host_status", "UP")
    if caller.at(2, 19):
        out["description"] = inst.description
    if caller.at(2, 26):
        out["tags"] = extra.get("tags", [])
    if caller.at(2, 63):
        out["trusted_image_certificates"] = None
    if caller.at(2, 73):
        out["locked_reason"] = inst.locked_reason
    if mode != "list" and caller.at(2, 71):
        out["server_groups"] = list(extra.get("server_groups", []))
    if caller.at(2, 96):
        out["pinned_availability_zone"] = inst.requested_availability_zone
    if caller.at(2, 100):
        out["scheduler_hints"] = dict(inst.scheduler_hints or {})
    if mode == "rebuild" and caller.at(2, 57):
        out["user_data"] = inst.user_data
    fault = extra.get("fault")
    if fault is not None and inst.vm_state in (states.ERROR, states.DELETED):
        body = {"code": fault.code, "created": utc(fault.created_at), "message": fault.message}
        if fault.code != 500 or caller.is_admin:
            body["details"] = fault.details or ""
        out["fault"] = body
    return out

"""Nova's smaller admin APIs and its fixed ones: ``/extensions`` (the v2.1 list Nova answers,
every microversion), the deprecated ``/os-hosts`` (up to 2.42: hosts from the services registry,
resources from the compute node and its servers; enabling, maintenance and power actions are
Nova's 501 as with its libvirt driver), ``/os-instance_usage_audit_log`` (the hosts and the
last completed audit period; mCloud runs no usage audit, as Nova with its default
``instance_usage_audit = False``, so every host is "not run"), ``/os-server-external-events``
(accepted for servers on a host: 200/207 per event with Nova's codes; mCloud's network service
is in-process and needs no such callbacks, so an accepted event changes nothing), and
``/servers/{id}/diagnostics`` (admin; the host's "diagnostics" op, Nova's 2.48 body or the
older free-form one; 501 when the host's driver cannot tell, as Nova for such drivers).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from starlette.responses import Response

from mcloud.compute import models as m
from mcloud.compute import schemas as sc
from mcloud.compute.api import V21, body_of, caller_of, compute_of, respond
from mcloud.core.errors import APIError, BadRequest, Conflict, NotFound, NotImplementedYet

log = logging.getLogger("mcloud.compute.servers")

# ---------------------------------------------------------------------- /extensions

_UPDATED = "2014-12-03T00:00:00Z"
_NAMESPACE = "http://docs.openstack.org/compute/ext/fake_xml"


def _extension(alias: str, name: str, description: str) -> dict[str, Any]:
    return {"alias": alias, "description": description, "links": [], "name": name, "namespace": _NAMESPACE,
            "updated": _UPDATED}


async def list_extensions(request: Request) -> Response:
    await caller_of(request, "os_compute_api:extensions", target={})
    return respond({"extensions": [_extension(*e) for e in EXTENSIONS]})


async def show_extension(request: Request, alias: str) -> Response:
    await caller_of(request, "os_compute_api:extensions", target={})
    for ext in EXTENSIONS:
        if ext[0] == alias:
            return respond({"extension": _extension(*ext)})
    raise NotFound("The resource could not be found.")


# ---------------------------------------------------------------------- /os-hosts (up to 2.42)

HOSTS_UNTIL = (2, 42)
HOSTS = "os_compute_api:os-hosts:"
_ENABLE = ["enable", "disable", "Enable", "Disable", "ENABLE", "DISABLE"]
HOST_UPDATE = {"type": "object", "properties": {"status": {"type": "string", "enum": _ENABLE},
                                                "maintenance_mode": {"type": "string", "enum": _ENABLE}},
               "anyOf": [{"required": ["status"]}, {"required": ["maintenance_mode"]}],
               "additionalProperties": False}
NOT_SUPPORTED = "The requested functionality is not supported."


async def list_hosts(request: Request) -> Response:
    await caller_of(request, HOSTS + "list", target={}, until=HOSTS_UNTIL)
    hosts = compute_of(request).hosts
    zone = request.query_params.get("zone")
    async with hosts.compute.db.read() as session:
        services = await hosts.services(session)
        zones = await hosts.zones(session)
    out = []
    for svc in services:
        if svc.disabled:
            continue
        svc_zone = hosts.zone_of(zones, svc)
        if zone and svc_zone != zone:
            continue
        out.append({"host_name": svc.host, "service": svc.topic, "zone": svc_zone})
    return respond({"hosts": out})


async def _compute_node(request: Request, host: str) -> Any:
    hosts = compute_of(request).hosts
    async with hosts.compute.db.read() as session:
        node = await hosts.node_of(session, host)
    if node is None:
        raise NotFound(f"Compute host {host} could not be found.")
    return node


async def show_host(request: Request, host: str) -> Response:
    await caller_of(request, HOSTS + "show", target={}, until=HOSTS_UNTIL)
    compute = compute_of(request)
    node = await _compute_node(request, host)
    async with compute.db.read() as session:
        rows = (await session.execute(sa.select(m.Instance.project_id, m.Instance.flavor).where(
            m.Instance.host == host, m.Instance.deleted.is_(False)).order_by(m.Instance.id))).all()
    used = {"cpu": 0, "memory_mb": 0, "disk_gb": 0}
    projects: dict[str, dict[str, Any]] = {}
    for project_id, flavor in rows:
        flavor = flavor or {}
        size = {"cpu": int(flavor.get("vcpus") or 0), "memory_mb": int(flavor.get("memory_mb") or 0),
                "disk_gb": int(flavor.get("root_gb") or 0) + int(flavor.get("ephemeral_gb") or 0)}
        mine = projects.setdefault(project_id, {"host": host, "project": project_id, "cpu": 0, "memory_mb": 0,
                                                "disk_gb": 0})
        for key, value in size.items():
            used[key] += value
            mine[key] += value
    resources = [{"resource": {"host": host, "project": "(total)", "cpu": node.vcpus, "memory_mb": node.memory_mb,
                               "disk_gb": node.local_gb}},
                 {"resource": {"host": host, "project": "(used_now)", **used}},
                 {"resource": {"host": host, "project": "(used_max)", **used}}]
    resources += [{"resource": r} for r in projects.values()]
    return respond({"host": resources})


async def update_host(request: Request, host: str) -> Response:
    caller = await caller_of(request, until=HOSTS_UNTIL)
    sc.validate(await body_of(request), HOST_UPDATE)
    caller.authorize(HOSTS + "update", {})
    await _compute_node(request, host)
    raise NotImplementedYet(NOT_SUPPORTED)


def _power(action: str, rule: str) -> Any:
    async def run(request: Request, host: str) -> Response:
        await caller_of(request, HOSTS + rule, target={}, until=HOSTS_UNTIL)
        await _compute_node(request, host)
        raise NotImplementedYet(NOT_SUPPORTED)
    run.__name__ = f"host_{action}"
    return run


# ---------------------------------------------------------------------- /os-instance_usage_audit_log

AUDIT = "os_compute_api:os-instance-usage-audit-log:"


def last_completed_audit_period(before: datetime | None = None) -> tuple[datetime, datetime]:
    """Nova's default audit period (a month): the last whole month before ``before`` (now)."""
    at = before or datetime.utcnow()
    end = datetime(at.year, at.month, 1)
    begin = datetime(end.year - 1, 12, 1) if end.month == 1 else datetime(end.year, end.month - 1, 1)
    return begin, end


async def _audit_log(request: Request, before: datetime | None) -> dict[str, Any]:
    hosts = compute_of(request).hosts
    begin, end = last_completed_audit_period(before)
    async with hosts.compute.db.read() as session:
        names = sorted({s.host for s in await hosts.services(session) if s.topic == "compute"})
    done = 0
    return {"period_beginning": str(begin), "period_ending": str(end), "num_hosts": len(names),
            "num_hosts_done": done, "num_hosts_running": 0, "num_hosts_not_run": len(names),
            "hosts_not_run": names, "total_instances": 0, "total_errors": 0,
            "overall_status": f"{'ALL' if done == len(names) else f'{done} of {len(names)}'} hosts done. 0 errors.",
            "log": {}}


async def list_audit_logs(request: Request) -> Response:
    await caller_of(request, AUDIT + "list", target={})
    return respond({"instance_usage_audit_logs": await _audit_log(request, None)})


async def show_audit_log(request: Request, before: str) -> Response:
    await caller_of(request, AUDIT + "show", target={})
    try:
        at = datetime.strptime(before, "%Y-%m-%d %H:%M:%S.%f" if "." in before else "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise BadRequest(f"Invalid timestamp for date {before}") from None
    return respond({"instance_usage_audit_log": await _audit_log(request, at)})


# ---------------------------------------------------------------------- /os-server-external-events

EVENT_NAMES = (((2, 1), "network-changed"), ((2, 1), "network-vif-plugged"), ((2, 1), "network-vif-unplugged"),
               ((2, 1), "network-vif-deleted"), ((2, 51), "volume-extended"), ((2, 76), "power-update"),
               ((2, 82), "accelerator-request-bound"), ((2, 93), "volume-reimaged"))
TAG_REQUIRED = ("volume-extended", "power-update", "accelerator-request-bound")


async def create_external_events(request: Request) -> Response:
    caller = await caller_of(request)
    names = [name for since, name in EVENT_NAMES if caller.at(*since)]
    body = sc.validate(await body_of(request), {"type": "object", "properties": {"events": {
        "type": "array", "minItems": 1, "items": {"type": "object", "properties": {
            "name": {"type": "string", "enum": names}, "server_uuid": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["failed", "completed", "in-progress"]},
            "tag": {"type": "string", "maxLength": 255}},
            "required": ["name", "server_uuid"], "additionalProperties": False}}},
        "required": ["events"], "additionalProperties": False})
    caller.authorize("os_compute_api:os-server-external-events:create", {})
    compute = compute_of(request)
    uuids = {e["server_uuid"] for e in body["events"]}
    async with compute.db.read() as session:
        hosts = dict((await session.execute(sa.select(m.Instance.uuid, m.Instance.host).where(
            m.Instance.uuid.in_(uuids), m.Instance.deleted.is_(False)))).all())
    status, out = 200, []
    for event in body["events"]:
        item = dict(event)
        item.setdefault("status", "completed")
        uuid = event["server_uuid"]
        if uuid not in hosts:
            item.update(status="failed", code=404)
        elif event["name"] in TAG_REQUIRED and "tag" not in event:
            item.update(status="failed", code=400)
        elif hosts[uuid]:
            item.update(status="completed", code=200)
            log.info("external event %s:%s for %s on %s accepted", event["name"], event.get("tag"), uuid, hosts[uuid])
        else:
            item.update(status="failed", code=422)
        if item["code"] != 200:
            status = 207
        out.append(item)
    return respond({"events": out}, status)


# ---------------------------------------------------------------------- /servers/{id}/diagnostics

_CPU = ("id", "time", "utilisation")
_NIC = ("mac_address", "rx_octets", "rx_errors", "rx_drop", "rx_packets", "rx_rate", "tx_octets", "tx_errors",
        "tx_drop", "tx_packets", "tx_rate")
_DISK = ("read_bytes", "read_requests", "write_bytes", "write_requests", "errors_count")
_TOP = ("state", "driver", "hypervisor", "hypervisor_os", "uptime", "config_drive", "num_cpus", "num_nics",
        "num_disks")


def diagnostics_v248(raw: dict[str, Any]) -> dict[str, Any]:
    """Nova's 2.48 body from what the host said (a field it did not give is None)."""
    out: dict[str, Any] = {k: raw.get(k) for k in _TOP}
    for key, fields in (("cpu_details", _CPU), ("nic_details", _NIC), ("disk_details", _DISK)):
        out[key] = [{f: item.get(f) for f in fields} for item in raw.get(key) or []]
    memory = raw.get("memory_details") or {}
    out["memory_details"] = {"maximum": memory.get("maximum"), "used": memory.get("used")}
    return out


def diagnostics_legacy(raw: dict[str, Any]) -> dict[str, Any]:
    """The free-form body before 2.48, in the libvirt driver's names (cpuN_time, memory in KiB,
    vdX_read..., per NIC its rx/tx counters)."""
    d = diagnostics_v248(raw)
    out: dict[str, Any] = {}
    for cpu in d["cpu_details"]:
        out[f"cpu{cpu['id'] or 0}_time"] = cpu["time"]
    if d["memory_details"]["maximum"] is not None:
        out["memory"] = d["memory_details"]["maximum"] * 1024
    for i, disk in enumerate(d["disk_details"]):
        name = "vd" + chr(ord("a") + i)
        out.update({f"{name}_read": disk["read_bytes"], f"{name}_read_req": disk["read_requests"],
                    f"{name}_write": disk["write_bytes"], f"{name}_write_req": disk["write_requests"],
                    f"{name}_errors": disk["errors_count"]})
    for i, nic in enumerate(d["nic_details"]):
        name = f"vnet{i}"
        out.update({f"{name}_rx": nic["rx_octets"], f"{name}_rx_drop": nic["rx_drop"],
                    f"{name}_rx_errors": nic["rx_errors"], f"{name}_rx_packets": nic["rx_packets"],
                    f"{name}_tx": nic["tx_octets"], f"{name}_tx_drop": nic["tx_drop"],
                    f"{name}_tx_errors": nic["tx_errors"], f"{name}_tx_packets": nic["tx_packets"]})
    return out


async def server_diagnostics(request: Request, server_id: str) -> Response:
    caller = await caller_of(request)
    compute = compute_of(request)
    async with compute.db.read() as session:
        inst = await compute.servers.get(session, caller, server_id)
    caller.authorize("os_compute_api:os-server-diagnostics", {"project_id": inst.project_id})
    if not inst.host:
        raise Conflict(f"Instance {inst.uuid} is not ready")
    try:
        raw = await compute.conductor.call_host(inst, "diagnostics", {}, timeout=30)
    except APIError:
        raise
    except Exception as exc:  # the host's answer: a driver that cannot tell is Nova's 501
        text = str(exc)
        if "Unknown host operation" in text or "NotImplementedError" in text or "not supported" in text.lower():
            raise NotImplementedYet(NOT_SUPPORTED) from None
        raise Conflict(f"Diagnostics of instance {inst.uuid} are not available: {text}") from None
    if not isinstance(raw, dict) or raw.get("unsupported"):
        raise NotImplementedYet(NOT_SUPPORTED)
    return respond(diagnostics_v248(raw) if caller.at(2, 48) else diagnostics_legacy(raw))


def add_routes(app: FastAPI) -> None:
    route = app.add_api_route
    route(V21 + "/extensions", list_extensions, methods=["GET"])
    route(V21 + "/extensions/{alias}", show_extension, methods=["GET"])
    h = V21 + "/os-hosts"
    route(h, list_hosts, methods=["GET"])
    route(h + "/{host}", show_host, methods=["GET"])
    route(h + "/{host}", update_host, methods=["PUT"])
    for action, rule in (("startup", "start"), ("shutdown", "shutdown"), ("reboot", "reboot")):
        route(h + "/{host}/" + action, _power(action, rule), methods=["GET"])
    route(V21 + "/os-instance_usage_audit_log", list_audit_logs, methods=["GET"])
    route(V21 + "/os-instance_usage_audit_log/{before}", show_audit_log, methods=["GET"])
    route(V21 + "/os-server-external-events", create_external_events, methods=["POST"])
    route(V21 + "/servers/{server_id}/diagnostics", server_diagnostics, methods=["GET"])


#: Nova's v2.1 extension list (nova/api/openstack/compute/extension_info.py): alias, name, description
EXTENSIONS: tuple[tuple[str, str, str], ...] = (
    ("NMN", "Multinic", "Multiple network support."),
    ("OS-DCF", "DiskConfig", "Disk Management Extension."),
    ("OS-EXT-AZ", "ExtendedAvailabilityZone", "Extended Availability Zone support."),
    ("OS-EXT-IMG-SIZE", "ImageSize", "Adds image size to image listings."),
    ("OS-EXT-IPS", "ExtendedIps", "Adds type parameter to the ip list."),
    ("OS-EXT-IPS-MAC", "ExtendedIpsMac", "Adds mac address parameter to the ip list."),
    ("OS-EXT-SRV-ATTR", "ExtendedServerAttributes", "Extended Server Attributes support."),
    ("OS-EXT-STS", "ExtendedStatus", "Extended Status support."),
    ("OS-FLV-DISABLED", "FlavorDisabled", "Support to show the disabled status of a flavor."),
    ("OS-FLV-EXT-DATA", "FlavorExtraData", "Provide additional data for flavors."),
    ("OS-SCH-HNT", "SchedulerHints", "Pass arbitrary key/value pairs to the scheduler."),
    ("OS-SRV-USG", "ServerUsage", "Adds launched_at and terminated_at on Servers."),
    ("os-access-ips", "AccessIPs", "Access IPs support."),
    ("os-admin-actions", "AdminActions", "Enable admin-only server actions\n\n    Actions include: resetNetwork, injectNetworkInfo, os-resetState\n    "),
    ("os-admin-password", "AdminPassword", "Admin password management support."),
    ("os-agents", "Agents", "Agents support."),
    ("os-aggregates", "Aggregates", "Admin-only aggregate administration."),
    ("os-assisted-volume-snapshots", "AssistedVolumeSnapshots", "Assisted volume snapshots."),
    ("os-attach-interfaces", "AttachInterfaces", "Attach interface support."),
    ("os-availability-zone", "AvailabilityZone", "1. Add availability_zone to the Create Server API.\n       2. Add availability zones describing.\n    "),
    ("os-baremetal-ext-status", "BareMetalExtStatus", "Add extended status in Baremetal Nodes v2 API."),
    ("os-baremetal-nodes", "BareMetalNodes", "Admin-only bare-metal node administration."),
    ("os-block-device-mapping", "BlockDeviceMapping", "Block device mapping boot support."),
    ("os-block-device-mapping-v2-boot", "BlockDeviceMappingV2Boot", "Allow boot with the new BDM data format."),
    ("os-cell-capacities", "CellCapacities", "Adding functionality to get cell capacities."),
    ("os-cells", "Cells", "Enables cells-related functionality such as adding neighbor cells,\n    listing neighbor cells, and getting the capabilities of the local cell.\n    "),
    ("os-certificates", "Certificates", "Certificates support."),
    ("os-cloudpipe", "Cloudpipe", "Adds actions to create cloudpipe instances.\n\n    When running with the Vlan network mode, you need a mechanism to route\n    from the public Internet to your vlans.  This mechanism is known as a\n    cloudpipe.\n\n    At the time of creating this class, only OpenVPN is supported.  Support for\n    a SSH Bastion host is forthcoming.\n    "),
    ("os-cloudpipe-update", "CloudpipeUpdate", "Adds the ability to set the vpn ip/port for cloudpipe instances."),
    ("os-config-drive", "ConfigDrive", "Config Drive Extension."),
    ("os-console-auth-tokens", "ConsoleAuthTokens", "Console token authentication support."),
    ("os-console-output", "ConsoleOutput", "Console log output support, with tailing ability."),
    ("os-consoles", "Consoles", "Interactive Console support."),
    ("os-create-backup", "CreateBackup", "Create a backup of a server."),
    ("os-create-server-ext", "Createserverext", "Extended support to the Create Server v1.1 API."),
    ("os-deferred-delete", "DeferredDelete", "Instance deferred delete."),
    ("os-evacuate", "Evacuate", "Enables server evacuation."),
    ("os-extended-evacuate-find-host", "ExtendedEvacuateFindHost", "Enables server evacuation without target host. Scheduler will select one to target."),
    ("os-extended-floating-ips", "ExtendedFloatingIps", "Adds optional fixed_address to the add floating IP command."),
    ("os-extended-hypervisors", "ExtendedHypervisors", "Extended hypervisors support."),
    ("os-extended-networks", "ExtendedNetworks", "Adds additional fields to networks."),
    ("os-extended-quotas", "ExtendedQuotas", "Adds ability for admins to delete quota and optionally force the update Quota command."),
    ("os-extended-rescue-with-image", "ExtendedRescueWithImage", "Allow the user to specify the image to use for rescue."),
    ("os-extended-services", "ExtendedServices", "Extended services support."),
    ("os-extended-services-delete", "ExtendedServicesDelete", "Extended services deletion support."),
    ("os-extended-status", "ExtendedStatus", "Extended Status support."),
    ("os-extended-volumes", "ExtendedVolumes", "Extended Volumes support."),
    ("os-fixed-ips", "FixedIPs", "Fixed IPs support."),
    ("os-flavor-access", "FlavorAccess", "Flavor access support."),
    ("os-flavor-extra-specs", "FlavorExtraSpecs", "Flavors extra specs support."),
    ("os-flavor-manage", "FlavorManage", "Flavor create/delete API support."),
    ("os-flavor-rxtx", "FlavorRxtx", "Support to show the rxtx status of a flavor."),
    ("os-flavor-swap", "FlavorSwap", "Support to show the swap status of a flavor."),
    ("os-floating-ip-dns", "FloatingIpDns", "Floating IP DNS support."),
    ("os-floating-ip-pools", "FloatingIpPools", "Floating IPs support."),
    ("os-floating-ips", "FloatingIps", "Floating IPs support."),
    ("os-floating-ips-bulk", "FloatingIpsBulk", "Bulk handling of Floating IPs."),
    ("os-fping", "Fping", "Fping Management Extension."),
    ("os-hide-server-addresses", "HideServerAddresses", "Support hiding server addresses in certain states."),
    ("os-hosts", "Hosts", "Admin-only host administration."),
    ("os-hypervisor-status", "HypervisorStatus", "Show hypervisor status."),
    ("os-hypervisors", "Hypervisors", "Admin-only hypervisor administration."),
    ("os-instance-actions", "InstanceActions", "View a log of actions and events taken on an instance."),
    ("os-instance_usage_audit_log", "OSInstanceUsageAuditLog", "Admin-only Task Log Monitoring."),
    ("os-keypairs", "Keypairs", "Keypair Support."),
    ("os-lock-server", "LockServer", "Enable lock/unlock server actions."),
    ("os-migrate-server", "MigrateServer", "Enable migrate and live-migrate server actions."),
    ("os-migrations", "Migrations", "Provide data on migrations."),
    ("os-multiple-create", "MultipleCreate", "Allow multiple create in the Create Server v2.1 API."),
    ("os-networks", "Networks", "Admin-only Network Management Extension."),
    ("os-networks-associate", "NetworkAssociationSupport", "Network association support."),
    ("os-pause-server", "PauseServer", "Enable pause/unpause server actions."),
    ("os-personality", "Personality", "Personality support."),
    ("os-preserve-ephemeral-rebuild", "PreserveEphemeralOnRebuild", "Allow preservation of the ephemeral partition on rebuild."),
    ("os-quota-class-sets", "QuotaClasses", "Quota classes management support."),
    ("os-quota-sets", "Quotas", "Quotas management support."),
    ("os-rescue", "Rescue", "Instance rescue mode."),
    ("os-security-group-default-rules", "SecurityGroupDefaultRules", "Default rules for security group support."),
    ("os-security-groups", "SecurityGroups", "Security group support."),
    ("os-server-diagnostics", "ServerDiagnostics", "Allow Admins to view server diagnostics through server action."),
    ("os-server-external-events", "ServerExternalEvents", "Server External Event Triggers."),
    ("os-server-group-quotas", "ServerGroupQuotas", "Adds quota support to server groups."),
    ("os-server-groups", "ServerGroups", "Server group support."),
    ("os-server-list-multi-status", "ServerListMultiStatus", "Allow to filter the servers by a set of status values."),
    ("os-server-password", "ServerPassword", "Server password support."),
    ("os-server-sort-keys", "ServerSortKeys", "Add sorting support in get Server v2 API."),
    ("os-server-start-stop", "ServerStartStop", "Start/Stop instance compute API support."),
    ("os-services", "Services", "Services support."),
    ("os-shelve", "Shelve", "Instance shelve mode."),
    ("os-simple-tenant-usage", "SimpleTenantUsage", "Simple tenant usage extension."),
    ("os-suspend-server", "SuspendServer", "Enable suspend/resume server actions."),
    ("os-tenant-networks", "OSTenantNetworks", "Tenant-based Network Management Extension."),
    ("os-used-limits", "UsedLimits", "Provide data on limited resources that are being used."),
    ("os-used-limits-for-admin", "UsedLimitsForAdmin", "Provide data to admin on limited resources used by other tenants."),
    ("os-user-data", "UserData", "Add user_data to the Create Server API."),
    ("os-user-quotas", "UserQuotas", "Project user quota support."),
    ("os-virtual-interfaces", "VirtualInterfaces", "Virtual interface support."),
    ("os-volume-attachment-update", "VolumeAttachmentUpdate", "Support for updating a volume attachment."),
    ("os-volumes", "Volumes", "Volumes support."),
)

__all__ = ["EXTENSIONS", "add_routes", "diagnostics_legacy", "diagnostics_v248", "last_completed_audit_period"]

"""Nova's network proxies and smaller admin APIs through the in-process app (fake hypervisor,
fake network data plane), SQLite and PostgreSQL: os-floating-ips (+ pools, addFloatingIp /
removeFloatingIp up to 2.43), os-networks and os-tenant-networks (up to 2.35), /extensions,
os-hosts (up to 2.42), os-instance_usage_audit_log, os-server-external-events, server
diagnostics, createBackup (+ rotation) and restore."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest_asyncio

from mcloud.compute.api_servers_legacy import last_completed_audit_period
from mcloud.compute.service_servers_backup import backups_of, rotate_backups
from tests.api.compute_helpers import ComputeWorld, assert_fault, boot_server, compute_world, uniq, wait_for

UNKNOWN = "6b8a2b0f-1a2b-4c3d-9e8f-000000000000"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[ComputeWorld]:
    async with compute_world(cloud) as world:
        yield world


async def _public(w: ComputeWorld) -> dict[str, Any]:
    """An external network (a pool) routed to the member's network."""
    admin = w.neutron["admin"]
    name = uniq("pool")
    public = (await admin.post("/networks", {"network": {"name": name, "router:external": True}},
                               expect=201)).json()["network"]
    await admin.subnet(public["id"], cidr="198.18.%d.0/24" % (hash(name) % 200))
    member = w.neutron["member"]
    subnet = (await member.get("/subnets", params={"network_id": w.network_id}, expect=200)).json()["subnets"][0]
    router = (await member.post("/routers", {"router": {"name": uniq("r"), "external_gateway_info": {
        "network_id": public["id"]}}}, expect=201)).json()["router"]
    await member.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]}, expect=200)
    return public


async def test_floating_ips(w: ComputeWorld) -> None:
    public = await _public(w)
    member, old = w["member"].at("2.35"), w["member"].at("2.43")
    assert_fault(await w["member"].at("2.36").get("/os-floating-ips"), 404)
    pools = (await member.get("/os-floating-ip-pools", expect=200)).json()["floating_ip_pools"]
    assert {"name": public["name"]} in pools
    assert_fault(await member.post("/os-floating-ips", {"pool": "no-such-pool"}), 404)
    fip = (await member.post("/os-floating-ips", {"pool": public["name"]}, expect=200)).json()["floating_ip"]
    assert set(fip) == {"id", "ip", "fixed_ip", "instance_id", "pool"}
    assert fip["pool"] == public["name"] and fip["instance_id"] is None and fip["fixed_ip"] is None
    assert fip["ip"].startswith("198.18.")
    shown = (await w["reader"].at("2.35").get(f"/os-floating-ips/{fip['id']}", expect=200)).json()["floating_ip"]
    assert shown == fip
    assert fip in (await member.get("/os-floating-ips", expect=200)).json()["floating_ips"]
    assert_fault(await w["other"].at("2.35").get(f"/os-floating-ips/{fip['id']}"), 404)
    assert fip not in (await w["other"].at("2.35").get("/os-floating-ips", expect=200)).json()["floating_ips"]
    assert_fault(await w["reader"].at("2.35").post("/os-floating-ips", {"pool": public["name"]}), 403)
    # associate with a server (up to 2.43): its first fixed IPv4 address
    sid, sid2 = await boot_server(w), await boot_server(w)
    await old.action(sid, "addFloatingIp", {"address": fip["ip"]}, expect=202)
    shown = (await member.get(f"/os-floating-ips/{fip['id']}", expect=200)).json()["floating_ip"]
    assert shown["instance_id"] == sid and shown["fixed_ip"]
    addresses = (await member.get(f"/servers/{sid}", expect=200)).json()["server"]["addresses"]
    assert {"floating"} <= {a["OS-EXT-IPS:type"] for net in addresses.values() for a in net}
    # a second floating IP on the same fixed address: Neutron refuses, Nova's 400
    fip2 = (await member.post("/os-floating-ips", {"pool": public["id"]}, expect=200)).json()["floating_ip"]
    assert_fault(await old.action(sid, "addFloatingIp", {"address": fip2["ip"]}), 400)
    assert_fault(await old.action(sid, "addFloatingIp", {"address": "0.0.0.0"}), 404)
    assert_fault(await old.action(sid, "addFloatingIp", {"address": ""}), 400)
    assert_fault(await old.action(sid, "addFloatingIp", {"address": fip2["ip"], "fixed_address": "10.9.9.9"}), 400,
                 contains="not assigned")
    assert_fault(await w["member"].at("2.44").action(sid, "addFloatingIp", {"address": fip2["ip"]}), 404)
    assert_fault(await w["reader"].at("2.43").action(sid, "addFloatingIp", {"address": fip2["ip"]}), 403)
    # moved to another server: no longer on the first
    await old.action(sid2, "addFloatingIp", {"address": fip["ip"]}, expect=202)
    assert_fault(await old.action(sid, "removeFloatingIp", {"address": fip["ip"]}), 409)
    assert_fault(await old.action(sid, "removeFloatingIp", {"address": "0.0.0.0"}), 404)
    await old.action(sid2, "removeFloatingIp", {"address": fip["ip"]}, expect=202)
    shown = (await member.get(f"/os-floating-ips/{fip['id']}", expect=200)).json()["floating_ip"]
    assert shown["instance_id"] is None and shown["fixed_ip"] is None
    # release: 202, then gone
    for made in (fip, fip2):
        await member.delete(f"/os-floating-ips/{made['id']}", expect=202)
        assert_fault(await member.get(f"/os-floating-ips/{made['id']}"), 404)
    assert_fault(await member.delete(f"/os-floating-ips/{UNKNOWN}"), 404)


async def test_networks_proxies(w: ComputeWorld) -> None:
    member = w["member"].at("2.35")
    nets = (await member.get("/os-networks", expect=200)).json()["networks"]
    mine = next(n for n in nets if n["id"] == w.network_id)
    assert mine["label"] and mine["cidr"] is None and "project_id" not in mine
    shown = (await member.get(f"/os-networks/{w.network_id}", expect=200)).json()["network"]
    assert shown == mine
    admin_view = (await w.admin.at("2.35").get(f"/os-networks/{w.network_id}", expect=200)).json()["network"]
    assert admin_view["label"] == mine["label"] and "project_id" in admin_view and "mtu" in admin_view
    assert_fault(await member.get(f"/os-networks/{UNKNOWN}"), 404, contains="Network not found")
    assert_fault(await w["other"].at("2.35").get(f"/os-networks/{w.network_id}"), 404)
    assert_fault(await w.admin.at("2.35").post("/os-networks", {"network": {"label": "x"}}), 410)
    assert_fault(await w.admin.at("2.35").delete(f"/os-networks/{w.network_id}"), 410)
    assert_fault(await w["member"].at("2.36").get("/os-networks"), 404)
    tenant = (await member.get("/os-tenant-networks", expect=200)).json()["networks"]
    assert {"id": w.network_id, "cidr": "None", "label": mine["label"]} in tenant
    assert (await member.get(f"/os-tenant-networks/{w.network_id}", expect=200)).json()["network"]["id"] == \
        w.network_id
    assert_fault(await w["member"].at("2.36").get("/os-tenant-networks"), 404)


async def test_extensions(w: ComputeWorld) -> None:
    exts = (await w["member"].get("/extensions", expect=200)).json()["extensions"]
    aliases = [e["alias"] for e in exts]
    assert len(exts) == 99 and "OS-DCF" in aliases and "os-floating-ips" in aliases
    assert all(set(e) == {"alias", "description", "links", "name", "namespace", "updated"} for e in exts)
    one = (await w["reader"].at("2.1").get("/extensions/OS-DCF", expect=200)).json()["extension"]
    assert one["name"] == "DiskConfig" and one == next(e for e in exts if e["alias"] == "OS-DCF")
    assert_fault(await w["member"].get("/extensions/no-such"), 404)


async def test_os_hosts(w: ComputeWorld) -> None:
    admin = w.admin.at("2.42")
    sid = await boot_server(w)
    host = (await w.admin.get(f"/servers/{sid}", expect=200)).json()["server"]["OS-EXT-SRV-ATTR:host"]
    hosts = (await admin.get("/os-hosts", expect=200)).json()["hosts"]
    assert {"host_name": host, "service": "compute", "zone": "nova"} in hosts or \
        any(h["host_name"] == host and h["service"] == "compute" for h in hosts)
    assert {h["service"] for h in hosts} >= {"compute", "scheduler", "conductor"}
    zone = next(h["zone"] for h in hosts if h["host_name"] == host and h["service"] == "compute")
    assert all(h["zone"] == zone for h in (await admin.get("/os-hosts", params={"zone": zone},
                                                            expect=200)).json()["hosts"])
    assert (await admin.get("/os-hosts", params={"zone": "no-such-zone"}, expect=200)).json() == {"hosts": []}
    detail = (await admin.get(f"/os-hosts/{host}", expect=200)).json()["host"]
    by_project = {r["resource"]["project"]: r["resource"] for r in detail}
    assert {"(total)", "(used_now)", "(used_max)", w.projects["a"]} <= set(by_project)
    assert by_project["(total)"]["cpu"] > 0 and by_project[w.projects["a"]]["memory_mb"] >= 512
    assert by_project["(used_max)"]["cpu"] >= by_project[w.projects["a"]]["cpu"] >= 1
    assert_fault(await admin.get("/os-hosts/no-such-host"), 404)
    assert_fault(await w["member"].at("2.42").get("/os-hosts"), 403)
    assert_fault(await w["member"].at("2.42").get(f"/os-hosts/{host}"), 403)
    assert_fault(await w.admin.at("2.43").get("/os-hosts"), 404)
    # enabling, maintenance and power: Nova's 501 with its libvirt driver, after its checks
    assert_fault(await admin.put(f"/os-hosts/{host}", {"status": "invalid"}), 400)
    assert_fault(await admin.put(f"/os-hosts/{host}", {}), 400)
    assert_fault(await admin.put("/os-hosts/no-such-host", {"status": "enable"}), 404)
    assert_fault(await w["member"].at("2.42").put(f"/os-hosts/{host}", {"status": "enable"}), 403)
    assert_fault(await admin.put(f"/os-hosts/{host}", {"status": "disable", "maintenance_mode": "enable"}), 501)
    for action in ("startup", "shutdown", "reboot"):
        assert_fault(await admin.get(f"/os-hosts/{host}/{action}"), 501)
        assert_fault(await admin.get(f"/os-hosts/no-such-host/{action}"), 404)
        assert_fault(await w["member"].at("2.42").get(f"/os-hosts/{host}/{action}"), 403)


async def test_instance_usage_audit_log(w: ComputeWorld) -> None:
    log = (await w.admin.get("/os-instance_usage_audit_log", expect=200)).json()["instance_usage_audit_logs"]
    begin, end = last_completed_audit_period()
    assert log["period_beginning"] == str(begin) and log["period_ending"] == str(end)
    assert log["num_hosts"] >= 1 and log["num_hosts_not_run"] == log["num_hosts"] == len(log["hosts_not_run"])
    assert log["overall_status"] == f"0 of {log['num_hosts']} hosts done. 0 errors." and log["log"] == {}
    shown = (await w.admin.get("/os-instance_usage_audit_log/2026-03-15 10:00:00", expect=200)).json()[
        "instance_usage_audit_log"]
    assert shown["period_beginning"] == "2026-02-01 00:00:00" and shown["period_ending"] == "2026-03-01 00:00:00"
    assert last_completed_audit_period(datetime(2026, 1, 5))[0] == datetime(2025, 12, 1)
    assert_fault(await w.admin.get("/os-instance_usage_audit_log/yesterday"), 400, contains="Invalid timestamp")
    assert_fault(await w["member"].get("/os-instance_usage_audit_log"), 403)
    assert_fault(await w["member"].get("/os-instance_usage_audit_log/2026-03-15 10:00:00"), 403)


async def test_server_external_events(w: ComputeWorld) -> None:
    sid = await boot_server(w)
    r = await w.admin.post("/os-server-external-events", {"events": [{"name": "network-vif-plugged",
                                                                     "server_uuid": sid, "tag": "p1"}]}, expect=200)
    assert r.json() == {"events": [{"name": "network-vif-plugged", "server_uuid": sid, "tag": "p1",
                                    "status": "completed", "code": 200}]}
    r = await w.admin.post("/os-server-external-events", {"events": [
        {"name": "network-changed", "server_uuid": sid}, {"name": "network-changed", "server_uuid": UNKNOWN},
        {"name": "power-update", "server_uuid": sid}]}, expect=207)
    codes = [(e["code"], e["status"]) for e in r.json()["events"]]
    assert codes == [(200, "completed"), (404, "failed"), (400, "failed")]
    assert_fault(await w.admin.at("2.75").post("/os-server-external-events", {"events": [
        {"name": "power-update", "server_uuid": sid, "tag": "POWER_OFF"}]}), 400)
    assert_fault(await w.admin.post("/os-server-external-events", {"events": []}), 400)
    assert_fault(await w["member"].post("/os-server-external-events", {"events": [
        {"name": "network-changed", "server_uuid": sid}]}), 403)


async def test_server_diagnostics(w: ComputeWorld) -> None:
    from mcloud.compute.drivers.fake import FakeDriver

    sid = await boot_server(w)
    assert_fault(await w["member"].get(f"/servers/{sid}/diagnostics"), 403)
    assert_fault(await w["other"].get(f"/servers/{sid}/diagnostics"), 404)
    assert_fault(await w.admin.get(f"/servers/{UNKNOWN}/diagnostics"), 404)
    r = await w.admin.get(f"/servers/{sid}/diagnostics")
    if hasattr(FakeDriver, "diagnostics"):  # once the hosts answer the "diagnostics" op
        assert r.status_code == 200, r.text
        body = r.json()
        assert {"state", "driver", "memory_details", "cpu_details", "nic_details", "disk_details"} <= set(body)
        assert body["memory_details"]["maximum"] is not None
        old = (await w.admin.at("2.47").get(f"/servers/{sid}/diagnostics", expect=200)).json()
        assert old and "memory_details" not in old
    else:  # Nova's answer for a driver that cannot tell
        assert_fault(r, 501, "notImplemented", contains="not supported")


async def test_create_backup_and_restore(w: ComputeWorld) -> None:
    member = w["member"]
    sid = await boot_server(w, networks="none")
    assert_fault(await member.action(sid, "createBackup", {"name": "b", "backup_type": "daily", "rotation": -1}), 400)
    assert_fault(await member.action(sid, "createBackup", {"name": "b", "rotation": 1}), 400)
    assert_fault(await w["reader"].action(sid, "createBackup", {"name": "b", "backup_type": "daily",
                                                                "rotation": 1}), 403)
    made = []
    for n in range(2):
        r = await member.action(sid, "createBackup", {"name": f"backup-{n}", "backup_type": "daily", "rotation": 2},
                                expect=202)
        made.append(r.json()["image_id"])
        await wait_for(member, sid, "ACTIVE")
    r = await member.at("2.44").action(sid, "createBackup", {"name": "backup-2", "backup_type": "daily",
                                                             "rotation": "2"}, expect=202)
    made.append(r.headers["location"].rsplit("/", 1)[-1])
    await wait_for(member, sid, "ACTIVE")
    glance = {"X-Auth-Token": member.token}
    image = (await w.ks.client.get(f"/image/v2/images/{made[2]}", headers=glance)).json()
    assert image["image_type"] == "backup" and image["backup_type"] == "daily" and image["instance_uuid"] == sid
    assert image["status"] == "active"
    # rotation 2: once the third is uploaded the oldest is deleted (the conductor calls rotate_backups)
    assert (await w.ks.client.get(f"/image/v2/images/{made[0]}", headers=glance)).status_code == 404
    compute = w.cloud.compute
    assert await backups_of(compute, sid, "daily") == [made[2], made[1]]
    actions = [a["action"] for a in (await member.get(f"/servers/{sid}/os-instance-actions",
                                                      expect=200)).json()["instanceActions"]]
    assert actions[:3] == ["createBackup"] * 3
    r = await member.at("2.44").action(sid, "createBackup", {"name": "weekly-0", "backup_type": "weekly",
                                                             "rotation": 0}, expect=202)
    assert "location" not in r.headers
    await wait_for(member, sid, "ACTIVE")
    assert await backups_of(compute, sid, "weekly") == []  # rotation 0 keeps none, the new one included (Nova's)
    assert await rotate_backups(compute, sid, "daily", 1) == [made[1]]
    assert await backups_of(compute, sid, "daily") == [made[2]]
    # restore: no server is ever soft-deleted here, so Nova's 409
    assert_fault(await member.action(sid, "restore", None), 409, contains="Cannot 'restore' instance")
    assert_fault(await member.action(UNKNOWN, "restore", None), 404)
    await member.delete(f"/servers/{sid}", expect=204)


async def test_security_groups_are_the_ports(w: ComputeWorld) -> None:
    member = w["member"]
    sid = await boot_server(w)
    assert (await member.get(f"/servers/{sid}", expect=200)).json()["server"]["security_groups"] == [
        {"name": "default"}]
    await member.action(sid, "removeSecurityGroup", {"name": "default"}, expect=202)
    # no group left on its ports: no security_groups at all, as Nova reads them from Neutron
    assert "security_groups" not in (await member.get(f"/servers/{sid}", expect=200)).json()["server"]
    await member.action(sid, "addSecurityGroup", {"name": "default"}, expect=202)
    listed = (await member.get("/servers/detail", expect=200)).json()["servers"]
    assert next(s for s in listed if s["id"] == sid)["security_groups"] == [{"name": "default"}]


async def test_move_destinations_must_be_hosts(w: ComputeWorld) -> None:
    sid = await boot_server(w, networks="none")
    admin = w.admin
    assert_fault(await admin.action(sid, "os-migrateLive", {"host": "no-such-host", "block_migration": "auto"}), 400,
                 contains="Compute host no-such-host could not be found.")
    assert_fault(await admin.action(sid, "os-migrateLive", {"host": None, "block_migration": "auto", "force": True}),
                 400, contains="Can't force to a non-provided destination")
    assert_fault(await admin.action(sid, "migrate", {"host": "no-such-host"}), 400, contains="could not be found")
    server = (await admin.get(f"/servers/{sid}", expect=200)).json()["server"]
    assert server["status"] == "ACTIVE" and server["OS-EXT-STS:task_state"] is None


async def test_pinned_zone_update(w: ComputeWorld) -> None:
    member = w["member"]
    sid = await boot_server(w, networks="none", availability_zone="nova")
    assert (await member.get(f"/servers/{sid}", expect=200)).json()["server"]["pinned_availability_zone"] == "nova"
    assert_fault(await member.at("2.103").put(f"/servers/{sid}", {"server": {"pinned_availability_zone": None}}), 400)
    assert_fault(await member.put(f"/servers/{sid}", {"server": {"pinned_availability_zone": "elsewhere"}}), 409,
                 contains="Unpin first")
    updated = (await member.put(f"/servers/{sid}", {"server": {"pinned_availability_zone": None}},
                                expect=200)).json()["server"]
    assert updated["pinned_availability_zone"] is None
    await member.put(f"/servers/{sid}", {"server": {"pinned_availability_zone": None}}, expect=200)
    assert_fault(await member.put(f"/servers/{sid}", {"server": {"pinned_availability_zone": "elsewhere"}}), 409,
                 contains="current availability zone 'nova'")
    updated = (await member.put(f"/servers/{sid}", {"server": {"pinned_availability_zone": "nova"}},
                                expect=200)).json()["server"]
    assert updated["pinned_availability_zone"] == "nova"
    assert (await member.get(f"/servers/{sid}", expect=200)).json()["server"]["pinned_availability_zone"] == "nova"


async def test_disk_config_follows_rebuild_and_resize(w: ComputeWorld) -> None:
    member = w["member"]
    sid = await boot_server(w, networks="none")
    assert (await member.get(f"/servers/{sid}", expect=200)).json()["server"]["OS-DCF:diskConfig"] == "MANUAL"
    r = await member.action(sid, "rebuild", {"imageRef": w.image_id, "OS-DCF:diskConfig": "AUTO"}, expect=202)
    assert r.json()["server"]["OS-DCF:diskConfig"] == "AUTO"
    await wait_for(member, sid, "ACTIVE")
    assert (await member.get(f"/servers/{sid}", expect=200)).json()["server"]["OS-DCF:diskConfig"] == "AUTO"
    flavor = (await w.admin.post("/flavors", {"flavor": {"name": uniq("f"), "vcpus": 1, "ram": 512, "disk": 2}},
                                 expect=200)).json()["flavor"]["id"]
    await member.action(sid, "resize", {"flavorRef": flavor, "OS-DCF:diskConfig": "MANUAL"}, expect=202)
    server = await wait_for(member, sid, "VERIFY_RESIZE")
    assert server["OS-DCF:diskConfig"] == "MANUAL"
    await member.action(sid, "confirmResize", None, expect=204)

"""The servers' smaller APIs through the in-process app (fake hypervisor, fake network data
plane), SQLite and PostgreSQL: os-interface (attach by network and by port, awaited as Nova's API
waits on the host; list, show, detach; Nova's 400/404/409), os-simple-tenant-usage (hours per
project, admin list, a member's own), os-migrations and /servers/{id}/migrations, the server
password, and /servers/{id}/remote-consoles' checks and gates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest_asyncio

from tests.api.compute_helpers import ComputeWorld, assert_fault, boot_server, compute_world, uniq, wait_for


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[ComputeWorld]:
    async with compute_world(cloud) as world:
        yield world


boot = boot_server


async def test_interfaces_attach_list_show_detach(w: ComputeWorld) -> None:
    member = w["member"]
    sid = await boot(w)
    (first,) = (await member.get(f"/servers/{sid}/os-interface", expect=200)).json()["interfaceAttachments"]
    assert first["net_id"] == w.network_id and first["port_state"] in ("ACTIVE", "DOWN")
    assert first["fixed_ips"][0]["subnet_id"] and first["mac_addr"].startswith("fa:16:3e") and "tag" in first
    assert "tag" not in (await member.at("2.69").get(f"/servers/{sid}/os-interface", expect=200)).json()[
        "interfaceAttachments"][0]
    # attach on a network: answered once the host has it, with the new port
    r = await member.post(f"/servers/{sid}/os-interface", {"interfaceAttachment": {"net_id": w.network_id,
                                                                                   "tag": "second"}}, expect=200)
    added = r.json()["interfaceAttachment"]
    assert added["net_id"] == w.network_id and added["port_id"] != first["port_id"] and added["tag"] == "second"
    listed = (await member.get(f"/servers/{sid}/os-interface", expect=200)).json()["interfaceAttachments"]
    assert {i["port_id"] for i in listed} == {first["port_id"], added["port_id"]}
    shown = (await member.get(f"/servers/{sid}/os-interface/{added['port_id']}", expect=200)).json()
    assert shown["interfaceAttachment"]["port_id"] == added["port_id"]
    server = (await member.get(f"/servers/{sid}", expect=200)).json()["server"]
    assert sum(len(a) for a in server["addresses"].values()) == 2
    actions = [a["action"] for a in (await member.get(f"/servers/{sid}/os-instance-actions",
                                                      expect=200)).json()["instanceActions"]]
    assert actions[0] == "attach_interface"
    # attach a port of the caller's
    port = (await w.neutron["member"].post("/ports", {"port": {"network_id": w.network_id}}, expect=201)).json()["port"]
    r = await member.post(f"/servers/{sid}/os-interface", {"interfaceAttachment": {"port_id": port["id"]}}, expect=200)
    assert r.json()["interfaceAttachment"]["port_id"] == port["id"]
    # Nova's refusals
    unknown = "6b8a2b0f-1a2b-4c3d-9e8f-000000000000"
    assert_fault(await member.post(f"/servers/{sid}/os-interface", {"interfaceAttachment": {
        "net_id": w.network_id, "port_id": port["id"]}}), 400, contains="Must not input both")
    assert_fault(await member.post(f"/servers/{sid}/os-interface", {"interfaceAttachment": {
        "port_id": port["id"], "fixed_ips": [{"ip_address": "10.0.0.9"}]}}), 400, contains="Must input network_id")
    assert_fault(await member.post(f"/servers/{sid}/os-interface", {"interfaceAttachment": {"port_id": port["id"]}}),
                 409, contains="still in use")
    assert_fault(await member.post(f"/servers/{sid}/os-interface", {"interfaceAttachment": {"net_id": unknown}}), 404)
    assert_fault(await member.at("2.48").post(f"/servers/{sid}/os-interface", {"interfaceAttachment": {
        "net_id": w.network_id, "tag": "x"}}), 400)
    assert_fault(await member.get(f"/servers/{sid}/os-interface/{unknown}"), 404)
    assert_fault(await w["reader"].post(f"/servers/{sid}/os-interface", {"interfaceAttachment": {
        "net_id": w.network_id}}), 403)
    assert_fault(await w["other"].get(f"/servers/{sid}/os-interface"), 404)
    # detach: 202, then the port is gone from the server (the made one deleted, the given one freed)
    await member.delete(f"/servers/{sid}/os-interface/{added['port_id']}", expect=202)
    await member.delete(f"/servers/{sid}/os-interface/{port['id']}", expect=202)
    for _ in range(200):
        ids = {i["port_id"] for i in (await member.get(f"/servers/{sid}/os-interface",
                                                       expect=200)).json()["interfaceAttachments"]}
        if ids == {first["port_id"]}:
            break
        await asyncio.sleep(0.05)
    assert ids == {first["port_id"]}
    freed = (await w.neutron["member"].get(f"/ports/{port['id']}", expect=200)).json()["port"]
    assert freed["device_id"] == ""
    await w.neutron["member"].get(f"/ports/{added['port_id']}", expect=404)


async def test_simple_tenant_usage(w: ComputeWorld) -> None:
    sid = await boot(w, networks="none")
    start = (datetime.utcnow() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    end = (datetime.utcnow() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    project = w.projects["a"]
    mine = (await w["reader"].get(f"/os-simple-tenant-usage/{project}", params={"start": start, "end": end},
                                  expect=200)).json()["tenant_usage"]
    usages = {u["instance_id"]: u for u in mine["server_usages"]}
    assert mine["tenant_id"] == project and sid in usages
    usage = usages[sid]
    assert usage["flavor"] == "m1.tiny" and usage["vcpus"] == 1 and usage["memory_mb"] == 512
    assert usage["state"] == "active" and usage["ended_at"] is None and 0 < usage["hours"] < 1
    assert mine["total_hours"] >= usage["hours"] and mine["total_vcpus_usage"] >= usage["hours"]
    everyone = (await w.admin.get("/os-simple-tenant-usage", params={"start": start, "end": end, "detailed": "1"},
                                  expect=200)).json()["tenant_usages"]
    assert project in {u["tenant_id"] for u in everyone}
    brief = (await w.admin.get("/os-simple-tenant-usage", params={"start": start, "end": end}, expect=200)).json()
    assert all("server_usages" not in u for u in brief["tenant_usages"])
    assert_fault(await w["member"].get("/os-simple-tenant-usage"), 403)
    assert_fault(await w["other"].get(f"/os-simple-tenant-usage/{project}"), 403)
    assert_fault(await w["member"].get(f"/os-simple-tenant-usage/{project}", params={"start": "yesterday"}), 400)
    assert_fault(await w["member"].get(f"/os-simple-tenant-usage/{project}", params={"start": end, "end": start}),
                 400, contains="cannot occur after")
    # a period before the server was launched holds none of it
    old = (await w["member"].get(f"/os-simple-tenant-usage/{project}", params={
        "start": "2000-01-01T00:00:00", "end": "2000-01-02T00:00:00"}, expect=200)).json()
    assert old == {"tenant_usage": {}}
    # 2.40: pages
    page = (await w.admin.at("2.40").get("/os-simple-tenant-usage", params={"start": start, "end": end, "limit": 1},
                                         expect=200)).json()
    assert "tenant_usages_links" in page


async def test_migrations_password_and_consoles(w: ComputeWorld) -> None:
    member = w["member"]
    sid = await boot(w, networks="none")
    flavor = (await w.admin.post("/flavors", {"flavor": {"name": uniq("f"), "vcpus": 1, "ram": 512, "disk": 3}},
                                 expect=200)).json()["flavor"]["id"]
    await member.action(sid, "resize", {"flavorRef": flavor}, expect=202)
    await wait_for(member, sid, "VERIFY_RESIZE")
    await member.action(sid, "confirmResize", None, expect=204)
    await wait_for(member, sid, "ACTIVE")
    rows = (await w.admin.get("/os-migrations", params={"instance_uuid": sid}, expect=200)).json()["migrations"]
    assert len(rows) == 1 and rows[0]["migration_type"] == "resize" and rows[0]["instance_uuid"] == sid
    assert rows[0]["source_compute"] and "uuid" in rows[0] and "links" not in rows[0]
    old = (await w.admin.at("2.1").get("/os-migrations", params={"instance_uuid": sid}, expect=200)).json()
    assert "migration_type" not in old["migrations"][0] and "uuid" not in old["migrations"][0]
    assert_fault(await member.get("/os-migrations"), 403)
    # /servers/{id}/migrations: in-progress live migrations only (2.23+)
    assert (await w.admin.get(f"/servers/{sid}/migrations", expect=200)).json() == {"migrations": []}
    assert_fault(await w.admin.get(f"/servers/{sid}/migrations/{rows[0]['id']}"), 404, contains="In-progress")
    assert_fault(await w.admin.at("2.22").get(f"/servers/{sid}/migrations"), 404)
    assert_fault(await w.admin.post(f"/servers/{sid}/migrations/{rows[0]['id']}/action", {"force_complete": None}),
                 409)
    # the server password: empty until a guest posts one; clearing it is a 204
    assert (await member.get(f"/servers/{sid}/os-server-password", expect=200)).json() == {"password": ""}
    await member.delete(f"/servers/{sid}/os-server-password", expect=204)
    assert_fault(await w["other"].get(f"/servers/{sid}/os-server-password"), 404)
    # remote consoles from 2.6, Nova's checks; without a console proxy on the host a clear 409
    body = {"remote_console": {"protocol": "vnc", "type": "novnc"}}
    assert_fault(await member.at("2.5").post(f"/servers/{sid}/remote-consoles", body), 404)
    assert_fault(await member.post(f"/servers/{sid}/remote-consoles", {"remote_console": {
        "protocol": "spice", "type": "spice-html5"}}), 400, contains="Unavailable console type")
    assert_fault(await member.post(f"/servers/{sid}/remote-consoles", {"remote_console": {"protocol": "x"}}), 400)
    r = await member.post(f"/servers/{sid}/remote-consoles", body)
    if r.status_code == 200:  # once the host's console proxy gives URLs
        assert r.json()["remote_console"]["url"].startswith("http")
    else:
        assert_fault(r, 409, contains="console")

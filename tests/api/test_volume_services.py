"""The volume service's machinery through the Cinder API: os-services (list, filters, disable with
a reason, enable, freeze/thaw), os-hosts, scheduler-stats/get_pools (with capabilities, filters
3.28), capabilities/{host}, availability zones, and user messages (3.3) recorded by the other
parts through volume.messages.record."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from mcloud.volume import service_messages as msg
from tests.api.volume_helpers import VolumeWorld, assert_fault, volume_world


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[VolumeWorld]:
    async with volume_world(cloud) as world:
        yield world


async def test_services_hosts_pools_zones(w: VolumeWorld) -> None:
    services = (await w.admin.get("/os-services", expect=200)).json()["services"]
    binaries = {s["binary"] for s in services}
    assert {"cinder-scheduler", "cinder-volume", "cinder-backup"} <= binaries
    vol = next(s for s in services if s["binary"] == "cinder-volume")
    host, backend_host = vol["host"].split("@")[0], vol["host"]
    assert (vol["state"], vol["status"], vol["zone"], vol["frozen"]) == ("up", "enabled", "nova", False)
    assert "backend_state" not in vol and "cluster" not in vol
    latest = (await w.admin.at("3.49").get("/os-services?binary=cinder-volume")).json()["services"]
    assert all(s["backend_state"] == "up" and s["cluster"] is None for s in latest)
    assert {s["binary"] for s in (await w.admin.get(f"/os-services?host={host}")).json()["services"]} == binaries
    assert_fault(await w["member"].get("/os-services"), 403, "forbidden")
    # disable with a reason, then enable
    r = await w.admin.put("/os-services/disable-log-reason", {"host": backend_host, "binary": "cinder-volume",
                                                              "disabled_reason": "maintenance"}, expect=200)
    assert r.json()["status"] == "disabled" and r.json()["disabled_reason"] == "maintenance"
    shown = (await w.admin.get(f"/os-services?host={backend_host}&binary=cinder-volume")).json()["services"][0]
    assert (shown["status"], shown["disabled_reason"]) == ("disabled", "maintenance")
    assert (await w.admin.put("/os-services/enable", {"host": backend_host, "binary": "cinder-volume"},
                              expect=200)).json()["status"] == "enabled"
    await w.admin.put("/os-services/freeze", {"host": backend_host}, expect=200)
    assert (await w.admin.get(f"/os-services?host={backend_host}")).json()["services"][0]["frozen"] is True
    await w.admin.put("/os-services/thaw", {"host": backend_host}, expect=200)
    # freeze and thaw of an unknown host: Cinder's 400 (ServiceNotFound made InvalidInput), not a 404
    for action in ("freeze", "thaw"):
        assert_fault(await w.admin.put(f"/os-services/{action}", {"host": "invalid_host"}), 400, "badRequest",
                     "No service found with host=invalid_host")
    assert_fault(await w.admin.put("/os-services/enable", {"host": "nowhere", "binary": "cinder-volume"}), 404,
                 contains="Host nowhere could not be found.")
    assert_fault(await w.admin.put("/os-services/enable", {"host": backend_host, "binary": "cinder-nothing"}), 404)
    assert_fault(await w.admin.put("/os-services/disable-log-reason", {"host": backend_host,
                                                                        "binary": "cinder-volume"}), 400)
    assert_fault(await w.admin.put("/os-services/enable", {"binary": "cinder-volume"}), 400)
    # hosts
    hosts = (await w.admin.get("/os-hosts", expect=200)).json()["hosts"]
    assert {"host_name": backend_host, "service": "cinder-volume", "zone": "nova", "service-status": "available",
            "service-state": "enabled"}.items() <= next(h for h in hosts if h["host_name"] == backend_host).items()
    total = (await w.admin.get(f"/os-hosts/{backend_host}", expect=200)).json()["host"][0]["resource"]
    assert total["project"] == "(total)" and total["host"] == backend_host
    assert_fault(await w.admin.get("/os-hosts/nowhere"), 404)
    # pools
    pools = (await w.admin.get("/scheduler-stats/get_pools", expect=200)).json()["pools"]
    assert pools and all(set(p) == {"name"} for p in pools) and pools[0]["name"].startswith(backend_host.split("@")[0])
    detail = (await w.admin.get("/scheduler-stats/get_pools?detail=true", expect=200)).json()["pools"]
    caps = detail[0]["capabilities"]
    for key in ("total_capacity_gb", "free_capacity_gb", "allocated_capacity_gb", "volume_backend_name",
                "storage_protocol", "vendor_name", "driver_version", "pool_name", "thin_provisioning_support"):
        assert key in caps, key
    name = detail[0]["name"]
    assert [p["name"] for p in (await w.admin.at("3.28").get("/scheduler-stats/get_pools", params={"name": name})).json()[
        "pools"]] == [name]
    assert_fault(await w["member"].get("/scheduler-stats/get_pools"), 403)
    capabilities = (await w.admin.get(f"/capabilities/{name.split('#')[0]}", expect=200)).json()
    assert capabilities["namespace"] == f"OS::Storage::Capabilities::{name.split('#')[0]}"
    assert capabilities["volume_backend_name"] == caps["volume_backend_name"]
    assert_fault(await w.admin.get("/capabilities/nowhere"), 404)
    zones = (await w["member"].get("/os-availability-zone", expect=200)).json()["availabilityZoneInfo"]
    assert {"zoneName": "nova", "zoneState": {"available": True}} in zones


async def test_user_messages(w: VolumeWorld) -> None:
    volume = w.cloud.volume
    a = w.projects["a"]
    async with volume.db.write() as session:
        row = await volume.messages.record(session, a, msg.VOLUME, "0b8f5a3e-8b2a-4a39-9d4b-2a0d0c7cf001",
                                           msg.SCHEDULE_ALLOCATE_VOLUME, msg.NO_BACKEND_AVAILABLE)
        mid = row.id
    member = w["member"].at("3.3")
    assert_fault(await w["member"].get("/messages"), 404)
    listed = (await member.get("/messages", expect=200)).json()["messages"]
    mine = next(m for m in listed if m["id"] == mid)
    assert mine["event_id"] == "VOLUME_VOLUME_001_003"
    assert mine["user_message"] == "schedule allocate volume:Could not find any available weighted backend."
    assert (mine["message_level"], mine["resource_type"]) == ("ERROR", "VOLUME")
    assert mine["guaranteed_until"] > mine["created_at"]
    shown = (await member.get(f"/messages/{mid}", expect=200)).json()["message"]
    assert shown["resource_uuid"] == "0b8f5a3e-8b2a-4a39-9d4b-2a0d0c7cf001"
    assert (await member.get("/messages?event_id=VOLUME_VOLUME_001_003")).json()["messages"][0]["id"] == mid
    assert_fault(await w["other"].at("3.3").get(f"/messages/{mid}"), 404, contains=f"Message {mid} could not be found.")
    assert mid not in [m["id"] for m in (await w["other"].at("3.3").get("/messages")).json()["messages"]]
    assert mid in [m["id"] for m in (await w.admin.at("3.3").get("/messages")).json()["messages"]]
    assert_fault(await w["reader"].at("3.3").delete(f"/messages/{mid}"), 403)
    await member.delete(f"/messages/{mid}", expect=204)
    assert_fault(await member.get(f"/messages/{mid}"), 404)

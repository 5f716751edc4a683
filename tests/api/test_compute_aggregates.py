"""Host aggregates and availability zones through the API: CRUD, hosts from the hosts registry,
metadata, Nova's rule that a host is in one zone, the zones os-availability-zone lists, the
Placement aggregate a host joins, and admin-only policy."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.api.compute_helpers import ComputeWorld, assert_fault, compute_world, uniq


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[ComputeWorld]:
    async with compute_world(cloud) as world:
        yield world


async def a_host(w: ComputeWorld) -> str:
    await w.admin.get("/os-availability-zone", expect=200)  # the first request starts the local host
    async with w.cloud.compute.db.read() as session:
        hosts = await w.cloud.compute.hosts.candidates_state(session)
    assert hosts, "the test cloud runs a local compute host"
    return sorted(hosts)[0]


async def test_aggregate_crud_metadata_and_zones(w: ComputeWorld) -> None:
    admin, host = w.admin, await a_host(w)
    zones = (await w["member"].get("/os-availability-zone", expect=200)).json()["availabilityZoneInfo"]
    assert {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None} in zones
    name, zone = uniq("agg"), uniq("az")
    made = (await admin.post("/os-aggregates", {"aggregate": {"name": name, "availability_zone": zone}},
                             expect=200)).json()["aggregate"]
    assert made["availability_zone"] == zone and "hosts" not in made and "metadata" not in made
    assert made["deleted"] is False and len(made["uuid"]) == 36
    assert "uuid" not in (await admin.at("2.40").get(f"/os-aggregates/{made['id']}")).json()["aggregate"]
    agg_id = made["id"]
    assert_fault(await admin.post("/os-aggregates", {"aggregate": {"name": name}}), 409)
    added = (await admin.post(f"/os-aggregates/{agg_id}/action", {"add_host": {"host": host}},
                              expect=200)).json()["aggregate"]
    assert added["hosts"] == [host] and added["metadata"] == {"availability_zone": zone}
    assert_fault(await admin.post(f"/os-aggregates/{agg_id}/action", {"add_host": {"host": host}}), 409)
    assert_fault(await admin.post(f"/os-aggregates/{agg_id}/action", {"add_host": {"host": "no-such-host"}}), 404,
                 contains="Compute host no-such-host could not be found.")
    # the host's provider joined the Placement aggregate of the same uuid
    async with w.cloud.compute.db.read() as session:
        provider = await w.cloud.compute.hosts.provider_of(session, host)
    if provider:
        _, aggregates = await w.cloud.placement.get_aggregates(provider)
        assert made["uuid"] in aggregates
    # the zone is listed; its host shows in the admin's detail
    zones = (await w["member"].get("/os-availability-zone")).json()["availabilityZoneInfo"]
    assert zone in [z["zoneName"] for z in zones]
    detail = (await admin.get("/os-availability-zone/detail", expect=200)).json()["availabilityZoneInfo"]
    mine = next(z for z in detail if z["zoneName"] == zone)
    assert host in mine["hosts"] and mine["hosts"][host]["nova-compute"]["active"] is True
    assert_fault(await w["member"].get("/os-availability-zone/detail"), 403)
    # the controller's services are in the internal zone, which only the detail shows
    internal = next(z for z in detail if z["zoneName"] == "internal")
    assert {"nova-scheduler", "nova-conductor"} <= {b for svcs in internal["hosts"].values() for b in svcs}
    assert "internal" not in [z["zoneName"] for z in zones]
    # one zone per host: another aggregate with another zone cannot take it
    other = (await admin.post("/os-aggregates", {"aggregate": {"name": uniq("agg"), "availability_zone": "elsewhere"}},
                              expect=200)).json()["aggregate"]
    assert_fault(await admin.post(f"/os-aggregates/{other['id']}/action", {"add_host": {"host": host}}), 409,
                 contains="already in availability zone(s)")
    meta = (await admin.post(f"/os-aggregates/{agg_id}/action", {"set_metadata": {"metadata": {
        "ssd": "true", "gpu": "1"}}}, expect=200)).json()["aggregate"]["metadata"]
    assert meta == {"availability_zone": zone, "ssd": "true", "gpu": "1"}
    meta = (await admin.post(f"/os-aggregates/{agg_id}/action", {"set_metadata": {"metadata": {"gpu": None}}},
                             expect=200)).json()["aggregate"]["metadata"]
    assert meta == {"availability_zone": zone, "ssd": "true"}
    renamed = (await admin.put(f"/os-aggregates/{agg_id}", {"aggregate": {"name": name + "-x"}},
                               expect=200)).json()["aggregate"]
    assert renamed["name"] == name + "-x" and renamed["updated_at"]
    assert_fault(await admin.put(f"/os-aggregates/{agg_id}", {"aggregate": {}}), 400)
    assert_fault(await admin.put(f"/os-aggregates/{agg_id}", {"aggregate": {"availability_zone": "a:b"}}), 400)
    assert_fault(await admin.delete(f"/os-aggregates/{agg_id}"), 400, contains="not empty")
    listed = (await admin.get("/os-aggregates", expect=200)).json()["aggregates"]
    assert agg_id in [a["id"] for a in listed]
    assert_fault(await w["member"].get("/os-aggregates"), 403)
    assert_fault(await w["member"].post("/os-aggregates", {"aggregate": {"name": "x"}}), 403)
    removed = (await admin.post(f"/os-aggregates/{agg_id}/action", {"remove_host": {"host": host}},
                                expect=200)).json()["aggregate"]
    assert removed["hosts"] == []
    assert_fault(await admin.post(f"/os-aggregates/{agg_id}/action", {"remove_host": {"host": host}}), 404)
    if provider:
        _, aggregates = await w.cloud.placement.get_aggregates(provider)
        assert made["uuid"] not in aggregates
    for a in (agg_id, other["id"]):
        assert (await admin.delete(f"/os-aggregates/{a}")).status_code == 200
    assert_fault(await admin.get(f"/os-aggregates/{agg_id}"), 404)
    assert_fault(await admin.get("/os-aggregates/abc"), 400)
    for body in ({}, {"aggregate": {}}, {"aggregate": {"name": ""}}, {"aggregate": {"name": "x", "bogus": 1}},
                 {"aggregate": {"name": "x", "availability_zone": ""}}):
        assert_fault(await admin.post("/os-aggregates", body), 400)
    assert_fault(await admin.post("/os-aggregates/1/action", {"dance": {}}), 400)

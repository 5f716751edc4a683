"""os-services through the API: the hosts and the controller's services as Nova lists them,
enable/disable/force-down in both the legacy (≤ 2.52) and the uuid (≥ 2.53) forms, delete,
and admin-only access, with Nova's faults."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from mcloud.compute.drivers import fake
from tests.api.compute_helpers import ComputeWorld, assert_fault, compute_world, remove_hosts, uniq


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[ComputeWorld]:
    async with compute_world(cloud) as world:
        await world.admin.get("/os-services", expect=200)  # starts compute (the local host)
        world.extra_hosts = []  # type: ignore[attr-defined]
        yield world
        await remove_hosts(world, world.extra_hosts)  # type: ignore[attr-defined]


async def extra_host(w: ComputeWorld) -> str:
    name = uniq("cn")
    driver = fake.create({}, w.cloud.config.data_dir, hostname=name)
    await w.cloud.compute.hosts.register(name, driver.host_info(), transport="http")
    w.extra_hosts.append(name)  # type: ignore[attr-defined]
    return name


async def test_list_shows_compute_and_controller_services(w):
    host = await extra_host(w)
    services = (await w.admin.get("/os-services", expect=200)).json()["services"]
    mine = [s for s in services if s["host"] == host]
    assert len(mine) == 1
    s = mine[0]
    assert s["binary"] == "nova-compute" and s["zone"] == "nova" and s["status"] == "enabled"
    assert s["state"] == "up" and s["forced_down"] is False and s["disabled_reason"] is None
    uuid.UUID(s["id"])
    assert s["updated_at"]
    binaries = {x["binary"] for x in services}
    assert {"nova-compute", "nova-scheduler", "nova-conductor"} <= binaries
    assert all(x["zone"] == "internal" for x in services if x["binary"] != "nova-compute")
    old = (await w.admin.at("2.1").get("/os-services", params={"host": host}, expect=200)).json()["services"]
    assert len(old) == 1 and isinstance(old[0]["id"], int) and "forced_down" not in old[0]
    only = (await w.admin.get("/os-services", params={"binary": "nova-scheduler"}, expect=200)).json()["services"]
    assert only and all(x["binary"] == "nova-scheduler" for x in only)
    assert_fault(await w.admin.get("/os-services", params={"colour": "blue"}), 400)


async def test_update_by_uuid(w):
    host = await extra_host(w)
    sid = (await w.admin.get("/os-services", params={"host": host}, expect=200)).json()["services"][0]["id"]
    r = await w.admin.put(f"/os-services/{sid}", {"status": "disabled", "disabled_reason": "maintenance"}, expect=200)
    s = r.json()["service"]
    assert s["status"] == "disabled" and s["disabled_reason"] == "maintenance" and s["id"] == sid
    r = await w.admin.put(f"/os-services/{sid}", {"forced_down": True}, expect=200)
    assert r.json()["service"]["state"] == "down" and r.json()["service"]["forced_down"] is True
    state = (await _state(w, host))
    assert not state.up and not state.enabled
    r = await w.admin.put(f"/os-services/{sid}", {"status": "enabled", "forced_down": False}, expect=200)
    s = r.json()["service"]
    assert s["status"] == "enabled" and s["state"] == "up" and s["disabled_reason"] is None
    assert_fault(await w.admin.put(f"/os-services/{sid}", {"status": "enabled", "disabled_reason": "x"}), 400,
                 contains="disabled_reason")
    assert_fault(await w.admin.put(f"/os-services/{sid}", {}), 400, contains="No updates were requested")
    assert_fault(await w.admin.put(f"/os-services/{sid}", {"status": "sleeping"}), 400)
    assert_fault(await w.admin.put("/os-services/not-a-uuid", {"status": "enabled"}), 400, contains="Invalid uuid")
    assert_fault(await w.admin.put(f"/os-services/{uuid.uuid4()}", {"status": "enabled"}), 404)
    sched = (await w.admin.get("/os-services", params={"binary": "nova-scheduler"}, expect=200)).json()["services"][0]
    assert_fault(await w.admin.put(f"/os-services/{sched['id']}", {"status": "disabled"}), 400,
                 contains="Only nova-compute services can be updated")


async def _state(w, host):
    async with w.cloud.db.read() as session:
        return (await w.cloud.compute.hosts.candidates_state(session))[host]


async def test_legacy_actions(w):
    host = await extra_host(w)
    old = w.admin.at("2.11")
    r = await old.put("/os-services/disable-log-reason",
                      {"host": host, "binary": "nova-compute", "disabled_reason": "bad disk"}, expect=200)
    assert r.json() == {"service": {"host": host, "binary": "nova-compute", "status": "disabled",
                                    "disabled_reason": "bad disk"}}
    assert not (await _state(w, host)).enabled
    r = await old.put("/os-services/enable", {"host": host, "binary": "nova-compute"}, expect=200)
    assert r.json() == {"service": {"host": host, "binary": "nova-compute", "status": "enabled"}}
    r = await old.put("/os-services/force-down", {"host": host, "binary": "nova-compute", "forced_down": "true"},
                      expect=200)
    assert r.json()["service"]["forced_down"] is True and (await _state(w, host)).forced_down
    await old.put("/os-services/force-down", {"host": host, "binary": "nova-compute", "forced_down": False},
                  expect=200)
    assert_fault(await w.admin.at("2.10").put("/os-services/force-down",
                                              {"host": host, "binary": "nova-compute", "forced_down": True}), 404)
    assert_fault(await old.put("/os-services/disable-log-reason", {"host": host, "binary": "nova-compute"}), 400)
    assert_fault(await old.put("/os-services/disable", {"host": "nope", "binary": "nova-compute"}), 404)
    assert_fault(await old.put("/os-services/disable", {"host": host}), 400)
    assert_fault(await old.put("/os-services/disable", {"host": host, "binary": "nova-scheduler"}), 400)
    assert_fault(await old.put("/os-services/reboot", {"host": host, "binary": "nova-compute"}), 404)


async def test_delete(w):
    host = await extra_host(w)
    s = (await w.admin.get("/os-services", params={"host": host}, expect=200)).json()["services"][0]
    r = await w.admin.delete(f"/os-services/{s['id']}")
    assert r.status_code == 204, r.text
    assert (await w.admin.get("/os-services", params={"host": host}, expect=200)).json()["services"] == []
    assert_fault(await w.admin.delete(f"/os-services/{s['id']}"), 404)
    assert_fault(await w.admin.delete("/os-services/abc"), 400)
    assert_fault(await w.admin.at("2.52").delete("/os-services/abc"), 400)
    host2 = await extra_host(w)
    old = (await w.admin.at("2.52").get("/os-services", params={"host": host2}, expect=200)).json()["services"][0]
    await w.admin.at("2.52").delete(f"/os-services/{old['id']}", expect=204)


@pytest.mark.parametrize("who", ["member", "reader", "other"])
async def test_admin_only(w, who):
    assert_fault(await w[who].get("/os-services"), 403)
    assert_fault(await w[who].put(f"/os-services/{uuid.uuid4()}", {"status": "disabled"}), 403)
    assert_fault(await w[who].delete(f"/os-services/{uuid.uuid4()}"), 403)

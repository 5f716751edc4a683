"""os-hypervisors through the API: list/detail/show with the fields of each microversion
(integer ids and usage before 2.53/2.88, uuids, uptime after), paging, the hostname pattern and
with_servers, the legacy search/servers/uptime/statistics routes, and admin-only access."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import sqlalchemy as sa

from mcloud.compute.drivers import fake
from mcloud.compute.models import Instance
from tests.api.compute_helpers import ComputeWorld, assert_fault, compute_world, remove_hosts, uniq


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[ComputeWorld]:
    async with compute_world(cloud) as world:
        await world.admin.get("/os-hypervisors", expect=200)
        world.hv = uniq("hv")  # type: ignore[attr-defined]
        driver = fake.create({"vcpus": 6, "memory_mb": 8192, "disk_gb": 50}, world.cloud.config.data_dir,
                             hostname=world.hv)  # type: ignore[attr-defined]
        node = await world.cloud.compute.hosts.register(world.hv, driver.host_info(), transport="http")  # type: ignore[attr-defined]
        world.node = node  # type: ignore[attr-defined]
        async with world.cloud.db.write() as session:
            world.server = str(uuid.uuid4())  # type: ignore[attr-defined]
            session.add(Instance(uuid=world.server, project_id="p", user_id="u", name="on-hv", hostname="on-hv",  # type: ignore[attr-defined]
                                 image_ref="", flavor={"vcpus": 2, "memory_mb": 1024, "root_gb": 5, "ephemeral_gb": 1},
                                 host=world.hv, node=world.hv, vm_state="active"))  # type: ignore[attr-defined]
        yield world
        async with world.cloud.db.write() as session:
            await session.execute(sa.update(Instance).where(Instance.uuid == world.server).values(deleted=True))  # type: ignore[attr-defined]
        await remove_hosts(world, [world.hv])  # type: ignore[attr-defined]


async def test_list_and_detail(w):
    hvs = (await w.admin.get("/os-hypervisors", expect=200)).json()["hypervisors"]
    mine = [h for h in hvs if h["hypervisor_hostname"] == w.hv]
    assert mine == [{"id": w.node.uuid, "hypervisor_hostname": w.hv, "state": "up", "status": "enabled"}]
    detail = (await w.admin.get("/os-hypervisors/detail", expect=200)).json()["hypervisors"]
    d = next(h for h in detail if h["hypervisor_hostname"] == w.hv)
    assert d["hypervisor_type"] == "fake" and d["hypervisor_version"] == 1000 and d["host_ip"]
    assert d["service"]["host"] == w.hv and d["service"]["disabled_reason"] is None
    assert "uptime" in d and " up 0 days" in d["uptime"] and "vcpus" not in d
    old = (await w.admin.at("2.87").get(f"/os-hypervisors/{w.node.uuid}", expect=200)).json()["hypervisor"]
    assert (old["vcpus"], old["memory_mb"], old["local_gb"]) == (6, 8192, 50)
    assert old["vcpus_used"] == 2 and old["memory_mb_used"] == 512 + 1024 and old["local_gb_used"] == 6
    assert old["running_vms"] == 1 and old["free_ram_mb"] == 8192 - 1536 and old["free_disk_gb"] == 44
    assert old["cpu_info"]["arch"] == "x86_64" and "uptime" not in old
    legacy = (await w.admin.at("2.1").get("/os-hypervisors/detail", expect=200)).json()["hypervisors"]
    lg = next(h for h in legacy if h["hypervisor_hostname"] == w.hv)
    assert isinstance(lg["id"], int) and isinstance(lg["service"]["id"], int) and isinstance(lg["cpu_info"], str)
    await w.admin.at("2.1").get(f"/os-hypervisors/{lg['id']}", expect=200)


async def test_pattern_servers_and_paging(w):
    r = (await w.admin.get("/os-hypervisors", params={"hypervisor_hostname_pattern": w.hv, "with_servers": "true"},
                           expect=200)).json()["hypervisors"]
    assert len(r) == 1 and r[0]["servers"] == [{"name": r[0]["servers"][0]["name"], "uuid": w.server}]
    assert r[0]["servers"][0]["name"].startswith("instance-")
    assert_fault(await w.admin.get("/os-hypervisors", params={"hypervisor_hostname_pattern": "no-such-hv"}), 404)
    assert_fault(await w.admin.get("/os-hypervisors", params={"hypervisor_hostname_pattern": w.hv, "limit": 1}), 400)
    page = (await w.admin.get("/os-hypervisors", params={"limit": 1}, expect=200)).json()
    assert len(page["hypervisors"]) == 1 and "marker=" in page["hypervisors_links"][0]["href"]
    nxt = (await w.admin.get("/os-hypervisors", params={"limit": 1, "marker": page["hypervisors"][0]["id"]},
                             expect=200)).json()["hypervisors"]
    assert nxt and nxt[0]["id"] != page["hypervisors"][0]["id"]
    assert_fault(await w.admin.get("/os-hypervisors", params={"marker": str(uuid.uuid4())}), 400)
    shown = (await w.admin.get(f"/os-hypervisors/{w.node.uuid}", params={"with_servers": "1"}, expect=200)).json()
    assert shown["hypervisor"]["servers"][0]["uuid"] == w.server


async def test_legacy_routes(w):
    old = w.admin.at("2.52")
    found = (await old.get(f"/os-hypervisors/{w.hv}/search", expect=200)).json()["hypervisors"]
    assert [h["hypervisor_hostname"] for h in found] == [w.hv]
    servers = (await old.get(f"/os-hypervisors/{w.hv}/servers", expect=200)).json()["hypervisors"]
    assert servers[0]["servers"][0]["uuid"] == w.server
    assert_fault(await w.admin.get(f"/os-hypervisors/{w.hv}/search"), 404)
    up = (await w.admin.at("2.53").get(f"/os-hypervisors/{w.node.uuid}/uptime", expect=200)).json()["hypervisor"]
    assert " up " in up["uptime"]
    assert_fault(await w.admin.get(f"/os-hypervisors/{w.node.uuid}/uptime"), 404)
    stats = (await w.admin.at("2.87").get("/os-hypervisors/statistics", expect=200)).json()["hypervisor_statistics"]
    assert stats["count"] >= 2 and stats["vcpus"] >= 6 and stats["running_vms"] >= 1
    assert_fault(await w.admin.get("/os-hypervisors/statistics"), 404)


async def test_bad_ids(w):
    assert_fault(await w.admin.get("/os-hypervisors/abc"), 400, contains="Invalid uuid")
    assert_fault(await w.admin.get(f"/os-hypervisors/{uuid.uuid4()}"), 404)
    assert_fault(await w.admin.at("2.1").get("/os-hypervisors/abc"), 404)
    assert_fault(await w.admin.at("2.1").get("/os-hypervisors/999999"), 404)


@pytest.mark.parametrize("who", ["member", "reader", "other"])
async def test_admin_only(w, who):
    assert_fault(await w[who].get("/os-hypervisors"), 403)
    assert_fault(await w[who].get("/os-hypervisors/detail"), 403)
    assert_fault(await w[who].get(f"/os-hypervisors/{w.node.uuid}"), 403)

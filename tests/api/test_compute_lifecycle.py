"""Servers driven through the Nova API to each action's end state with the real hosts registry,
the in-process agent and the fake hypervisor driver: build (ports, host, events), the power
actions, pause, suspend, reboot, rescue, delete (ports and allocations gone), a spawn failure's
fault, and the power-state sync noticing a guest that stopped by itself. Each module of these
tests runs a cloud of its own (``own_cloud_world``), so that no host another module registered
in the session's cloud (and left without an agent) is ever chosen."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from mcloud import migrations
from mcloud.app import Cloud
from mcloud.core.config import Config
from tests.api.compute_helpers import ComputeWorld, Nova, compute_world, uniq
from tests.conftest import ADMIN_PASSWORD, DEMO_PASSWORD, TEST_ENV

async def own_database(database: str, tmp: Path) -> str:
    """A fresh database beside the session's: a new SQLite file, or a new PostgreSQL database."""
    if database.startswith("sqlite"):
        return f"sqlite:///{tmp / 'scheduling.db'}"
    import asyncpg

    url = make_url(database)
    name = f"sched_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(host=url.host, port=url.port, user=url.username, database=url.database)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def own_cloud_world(database: str, data_dir: Path, hosts: int = 4, vcpus: int = 10) -> AsyncIterator[ComputeWorld]:
    """A cloud of its own (own database, ``hosts`` fake hosts of ``vcpus`` each, CPU ratio 1: no
    host of another test module can be chosen) and its world, project a's quota raised, a
    one-VCPU flavor as ``flavor_id`` (and a two-VCPU one as ``flavor2``)."""
    url = await own_database(database, data_dir)
    config = Config(data_dir=data_dir, overrides={
        "database": {"url": url},
        "compute": {"host": "sched", "cpu_allocation_ratio": 1.0,
                    "fake": {"hosts": hosts, "vcpus": vcpus, "memory_mb": 65536}}},
        environ={**TEST_ENV, "MCLOUD_SERVER_PORT": "8080"})
    migrations.upgrade(config.database_url)
    cloud = Cloud(config)
    await cloud.bootstrap(ADMIN_PASSWORD, DEMO_PASSWORD)
    try:
        async with compute_world(cloud) as world:
            await world.admin.put(f"/os-quota-sets/{world.projects['a']}", {"quota_set": {
                "instances": 1000, "cores": 1000, "ram": 10 ** 7}}, expect=200)
            for attr, vcpus, disk in (("flavor_id", 1, 1), ("flavor2", 2, 2)):
                r = await world.admin.post("/flavors", {"flavor": {
                    "name": uniq("f"), "vcpus": vcpus, "ram": 64, "disk": disk}}, expect=200)
                setattr(world, attr, r.json()["flavor"]["id"])
            yield world
    finally:
        await cloud.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(database: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ComputeWorld]:
    async with own_cloud_world(database, tmp_path_factory.mktemp("life"), hosts=2) as world:
        yield world


async def wait_for(nova: Nova, server_id: str, status: str | None = None, *, gone: bool = False,
                   timeout: float = 30.0) -> dict[str, Any]:
    """Poll the server until it reaches ``status`` with no task under way (ERROR, unless wanted,
    fails at once), or is gone (404)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    server: dict[str, Any] = {}
    while loop.time() < deadline:
        r = await nova.get(f"/servers/{server_id}")
        if gone and r.status_code == 404:
            return {}
        assert r.status_code == 200, r.text
        server = r.json()["server"]
        settled = server.get("OS-EXT-STS:task_state") is None
        if not gone and settled and server["status"] == status:
            return server
        if not gone and settled and server["status"] == "ERROR" != status:
            raise AssertionError(f"server {server_id} is {server['status']}, not {status}: {server.get('fault')}")
        await asyncio.sleep(0.05)
    raise AssertionError(f"server {server_id} did not reach {status or 'deletion'}: {server}")


async def boot(w: ComputeWorld, who: str = "member", **server: Any) -> str:
    body = {"name": uniq("vm"), "imageRef": w.image_id, "flavorRef": w.flavor_id,
            "networks": [{"uuid": w.network_id}], **server}
    r = await w[who].post("/servers", {"server": body}, expect=202)
    return r.json()["server"]["id"]


async def events_of(w: ComputeWorld, server_id: str, request_id: str | None = None) -> dict[str, list[Any]]:
    actions = (await w.admin.get(f"/servers/{server_id}/os-instance-actions", expect=200)).json()["instanceActions"]
    out: dict[str, list[Any]] = {}
    for a in actions:
        if request_id and a["request_id"] != request_id:
            continue
        full = (await w.admin.get(f"/servers/{server_id}/os-instance-actions/{a['request_id']}",
                                  expect=200)).json()["instanceAction"]
        out.setdefault(a["action"], []).extend((e["event"], e["result"]) for e in full.get("events", []))
    return out


async def test_a_server_builds_to_active_with_its_port_and_allocation(w: ComputeWorld) -> None:
    sid = await boot(w)
    server = await wait_for(w.admin, sid, "ACTIVE")
    assert server["OS-EXT-STS:vm_state"] == "active" and server["OS-EXT-STS:power_state"] == 1
    assert server["OS-EXT-SRV-ATTR:host"] and server["OS-EXT-AZ:availability_zone"] == "nova"
    assert server["OS-SRV-USG:launched_at"]
    ports = (await w.neutron["admin"].get("/ports", params={"device_id": sid}, expect=200)).json()["ports"]
    assert len(ports) == 1 and ports[0]["device_owner"] == "compute:nova"
    assert ports[0]["binding:host_id"] == server["OS-EXT-SRV-ATTR:host"]
    allocs = await w.cloud.placement.consumer_allocations(sid)
    assert [r["resources"] for r in allocs["providers"].values()] == [{"VCPU": 1, "MEMORY_MB": 64, "DISK_GB": 1}]
    events = await events_of(w, sid)
    assert events["create"] == [("conductor_schedule_and_build_instances", "Success"),
                                ("compute__do_build_and_run_instance", "Success")]
    await w["member"].delete(f"/servers/{sid}", expect=204)
    await wait_for(w["member"], sid, gone=True)
    assert (await w.neutron["member"].get("/ports", params={"device_id": sid}, expect=200)).json()["ports"] == []
    assert await w.cloud.placement.consumer_allocations(sid) is None


async def test_power_pause_suspend_reboot_rescue_reach_their_states(w: ComputeWorld) -> None:
    sid = await boot(w)
    await wait_for(w["member"], sid, "ACTIVE")
    m = w["member"]
    steps = [("os-stop", None, "SHUTOFF", 4), ("os-start", None, "ACTIVE", 1), ("pause", None, "PAUSED", 3),
             ("unpause", None, "ACTIVE", 1), ("suspend", None, "SUSPENDED", (4, 7)), ("resume", None, "ACTIVE", 1),
             ("reboot", {"type": "HARD"}, "ACTIVE", 1), ("reboot", {"type": "SOFT"}, "ACTIVE", 1),
             ("rescue", {}, "RESCUE", 1), ("unrescue", None, "ACTIVE", 1)]
    for name, body, status, power in steps:
        await m.action(sid, name, body, expect=200 if name == "rescue" else 202)
        server = await wait_for(w.admin, sid, status)
        # suspended: Nova's libvirt says shutdown (a managed save), a driver may say suspended
        assert server["OS-EXT-STS:power_state"] in (power if isinstance(power, tuple) else (power,)), (name, server)
    events = await events_of(w, sid)
    for action, event in [("stop", "compute_stop_instance"), ("start", "compute_start_instance"),
                          ("pause", "compute_pause_instance"), ("suspend", "compute_suspend_instance"),
                          ("reboot", "compute_reboot_instance"), ("rescue", "compute_rescue_instance")]:
        assert (event, "Success") in events[action], (action, events)
    await m.delete(f"/servers/{sid}", expect=204)
    await wait_for(m, sid, gone=True)


async def test_a_guest_that_stops_by_itself_is_shutoff(w: ComputeWorld) -> None:
    sid = await boot(w)
    server = await wait_for(w.admin, sid, "ACTIVE")
    agent = w.cloud.compute.hosts.agent(server["OS-EXT-SRV-ATTR:host"])
    agent.driver.set_power_state(sid, 4)
    await agent.sync_power_states()
    server = await wait_for(w.admin, sid, "SHUTOFF", timeout=10)
    assert server["OS-EXT-STS:power_state"] == 4 and server["OS-EXT-STS:vm_state"] == "stopped"
    await w["member"].delete(f"/servers/{sid}", expect=204)
    await wait_for(w["member"], sid, gone=True)


async def test_a_spawn_that_fails_everywhere_is_error_with_a_fault_and_holds_nothing(w: ComputeWorld) -> None:
    hosts = w.cloud.compute.hosts
    for name in hosts.agents:  # each host fails the one spawn it will be given (a failed host is not retried)
        hosts.agent(name).driver.inject("spawn", "injected: the hypervisor said no", count=1)
    sid = await boot(w)
    server = await wait_for(w.admin, sid, "ERROR")
    assert [x for d in (hosts.agent(n).driver for n in hosts.agents) for x in d.calls].count(("spawn", sid)) == \
        len(hosts.agents)
    assert server["fault"]["code"] == 500
    # every host failed once (the driver's message is each try's fault), then Nova's MaxRetriesExceeded
    assert server["fault"]["message"] == ("Exceeded maximum number of retries. Exhausted all hosts available "
                                          f"for retrying build failures for instance {sid}.")
    assert server["OS-EXT-SRV-ATTR:host"] is None
    assert (await w.neutron["member"].get("/ports", params={"device_id": sid}, expect=200)).json()["ports"] == []
    assert await w.cloud.placement.consumer_allocations(sid) is None
    await w["member"].delete(f"/servers/{sid}", expect=204)
    await wait_for(w["member"], sid, gone=True)


async def test_a_server_deleted_while_it_spawns_leaves_nothing(w: ComputeWorld) -> None:
    hosts = w.cloud.compute.hosts
    drivers = [hosts.agent(name).driver for name in hosts.agents]
    for d in drivers:
        d.delay = 0.3
    try:
        sid = await boot(w)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while (await w.admin.get(f"/servers/{sid}", expect=200)).json()["server"]["OS-EXT-STS:task_state"] \
                != "spawning":
            assert loop.time() < deadline
            await asyncio.sleep(0.02)
        await w["member"].delete(f"/servers/{sid}", expect=204)
        await wait_for(w["member"], sid, gone=True)
    finally:
        for d in drivers:
            d.delay = 0.0
    assert (await w.neutron["admin"].get("/ports", params={"device_id": sid}, expect=200)).json()["ports"] == []
    assert await w.cloud.placement.consumer_allocations(sid) is None
    assert all(sid not in d.instances for d in drivers)
    r = await w.admin.get(f"/servers/{sid}/os-instance-actions", expect=200)
    assert {a["action"] for a in r.json()["instanceActions"]} == {"create", "delete"}


async def test_ports_get_the_security_groups_asked_for(w: ComputeWorld) -> None:
    r = await w.neutron["member"].post("/security-groups", {"security_group": {"name": uniq("web")}})
    assert r.status_code == 201, r.text
    web = r.json()["security_group"]
    sid = await boot(w, security_groups=[{"name": web["name"]}])
    await wait_for(w["member"], sid, "ACTIVE")
    ports = (await w.neutron["member"].get("/ports", params={"device_id": sid}, expect=200)).json()["ports"]
    assert [p["security_groups"] for p in ports] == [[web["id"]]]
    sid2 = await boot(w)  # none asked: the project's default group
    await wait_for(w["member"], sid2, "ACTIVE")
    ports = (await w.neutron["member"].get("/ports", params={"device_id": sid2}, expect=200)).json()["ports"]
    default = (await w.neutron["member"].get("/security-groups", params={"name": "default"},
                                             expect=200)).json()["security_groups"]
    assert [p["security_groups"] for p in ports] == [[default[0]["id"]]]
    for s in (sid, sid2):
        await w["member"].delete(f"/servers/{s}", expect=204)
        await wait_for(w["member"], s, gone=True)

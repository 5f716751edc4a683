"""The agent routes (/compute/agent/v1) through the API: a host registers, long-polls the ops
sent to it, reports a result the sender's wait() sees; only admins and the service role may.
What the fake hosts answer through Nova's API: a guest's boot console, its diagnostics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio

from tests.api.compute_helpers import ROOT, ComputeWorld, assert_fault, boot_server, compute_world, uniq, wait_for

INFO = {"vcpus": 4, "memory_mb": 4096, "disk_gb": 40, "hypervisor_type": "fake", "hypervisor_version": 1000,
        "cpu_info": {"arch": "x86_64"}, "traits": ["COMPUTE_NET_ATTACH_INTERFACE"]}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[ComputeWorld]:
    async with compute_world(cloud) as world:
        yield world


async def test_register_pull_complete(w):
    host = uniq("agent")
    agent = w.admin
    r = await agent.post(f"{ROOT}/agent/v1/hosts/{host}", {"info": {**INFO, "hypervisor_hostname": host}}, expect=201)
    node = r.json()["node"]
    assert (await w.cloud.placement.get_provider(node)).name == host
    hosts = w.cloud.compute.hosts

    async with w.cloud.db.write() as session:
        op_id = await hosts.send(session, host, "console_output", "inst-1", {"length": 5})
    waiting = asyncio.ensure_future(hosts.wait(op_id, timeout=10))
    ops = (await agent.get(f"{ROOT}/agent/v1/hosts/{host}/ops", params={"wait": 5}, expect=200)).json()["ops"]
    assert ops == [{"id": op_id, "op": "console_output", "instance_uuid": "inst-1", "payload": {"length": 5}}]
    await agent.post(f"{ROOT}/agent/v1/ops/{op_id}", {"host": host, "result": {"output": "hello\n"}}, expect=204)
    assert await waiting == {"output": "hello\n"}
    # an empty long poll returns after its wait
    assert (await agent.get(f"{ROOT}/agent/v1/hosts/{host}/ops", params={"wait": 0.2},
                            expect=200)).json()["ops"] == []
    assert (await agent.post(f"{ROOT}/agent/v1/hosts/{host}/heartbeat", expect=200)).json() == {"known": True}
    assert (await agent.post(f"{ROOT}/agent/v1/hosts/{uniq('x')}/heartbeat", expect=200)).json() == {"known": False}
    assert_fault(await agent.post(f"{ROOT}/agent/v1/ops/{op_id}", {"host": "someone-else", "result": {}}), 404)
    assert_fault(await agent.post(f"{ROOT}/agent/v1/hosts/{host}", {"info": {"vcpus": "many"}}), 400)
    assert_fault(await agent.get(f"{ROOT}/agent/v1/hosts/{host}/ops", params={"wait": "soon"}), 400)


async def test_members_may_not(w):
    for who in ("member", "reader", "other"):
        assert_fault(await w[who].get(f"{ROOT}/agent/v1/hosts/h/ops"), 403)
        assert_fault(await w[who].post(f"{ROOT}/agent/v1/hosts/h", {"info": {**INFO, "hypervisor_hostname": "h"}}),
                     403)


async def test_console_and_diagnostics_of_a_fake_guest(w):
    sid = await boot_server(w, user_data="aGVsbG8=")
    flavor = (await w.admin.get(f"/flavors/{w.flavor_id}", expect=200)).json()["flavor"]
    # the whole console: a boot as a guest prints it (Tempest wants more than 3 lines)
    out = (await w["member"].action(sid, "os-getConsoleOutput", {}, expect=200)).json()["output"]
    lines = out.splitlines()
    assert len(lines) > 3 and lines[0].startswith("fake: starting") and lines[-1] == "fake: ready"
    assert f"fake: booted instance {sid}" in lines and "hello" in lines
    tail = (await w["member"].action(sid, "os-getConsoleOutput", {"length": 2}, expect=200)).json()["output"]
    assert tail.split("\n") == out.split("\n")[-2:]  # Nova's tail: the output ends with a newline
    # Nova's 2.48 diagnostics, with the values Tempest's schema allows
    d = (await w.admin.at("2.48").get(f"/servers/{sid}/diagnostics", expect=200)).json()
    assert (d["state"], d["driver"], d["config_drive"]) == ("running", "libvirt", True)
    assert isinstance(d["uptime"], int) and d["hypervisor"] == "fake"
    assert (d["num_cpus"], d["num_nics"], d["num_disks"]) == (flavor["vcpus"], 1, 2)
    assert [c["id"] for c in d["cpu_details"]] == list(range(flavor["vcpus"]))
    port = (await w.neutron["admin"].get("/ports", params={"device_id": sid}, expect=200)).json()["ports"][0]
    assert d["nic_details"][0]["mac_address"] == port["mac_address"]
    assert d["memory_details"] == {"maximum": flavor["ram"], "used": flavor["ram"]}
    assert all(set(disk) == {"read_bytes", "read_requests", "write_bytes", "write_requests", "errors_count"}
               for disk in d["disk_details"])
    await w["member"].action(sid, "os-stop", None, expect=202)
    await wait_for(w["member"], sid, "SHUTOFF")
    d = (await w.admin.at("2.48").get(f"/servers/{sid}/diagnostics", expect=200)).json()
    assert d["state"] == "shutdown" and d["uptime"] is None and d["memory_details"]["used"] == 0
    await w["member"].delete(f"/servers/{sid}", expect=204)

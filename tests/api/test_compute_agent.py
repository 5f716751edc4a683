"""The agent routes (/compute/agent/v1) through the API: a host registers, long-polls the ops
sent to it, reports a result the sender's wait() sees; only admins and the service role may."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio

from tests.api.compute_helpers import ROOT, ComputeWorld, assert_fault, compute_world, uniq

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

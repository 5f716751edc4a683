"""IPAM under concurrent requests, on every database the session runs (on PostgreSQL the requests
really run side by side in separate transactions): no address and no MAC is ever given twice,
the last addresses of a pool go to exactly as many ports as there are, and of racing requests
for one address or one MAC exactly one wins."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest_asyncio

from tests.api.network_helpers import World, assert_fault, make_world


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[World]:
    async with make_world(cloud) as world:
        yield world


async def test_concurrent_ports_never_share_an_address_or_mac(w: World) -> None:
    n = w["member"]
    net, sub = await n.net_with_subnet(cidr="10.90.0.0/27")  # 29 addresses in the pool
    results = await asyncio.gather(*(n.post("/ports", {"port": {"network_id": net["id"]}}) for _ in range(40)))
    made = [r.json()["port"] for r in results if r.status_code == 201]
    refused = [r for r in results if r.status_code != 201]
    assert len(made) == 29, Counter(r.status_code for r in results)
    for r in refused:
        assert_fault(r, 409, "IpAddressGenerationFailure")
    addresses = [p["fixed_ips"][0]["ip_address"] for p in made]
    assert len(set(addresses)) == 29 and len({p["mac_address"] for p in made}) == 29
    listed = (await n.get("/ports", params={"network_id": net["id"]}, expect=200)).json()["ports"]
    assert sorted(p["id"] for p in listed) == sorted(p["id"] for p in made)


async def test_racing_for_one_address_or_one_mac(w: World) -> None:
    n = w["member"]
    net, sub = await n.net_with_subnet(cidr="10.91.0.0/24")
    results = await asyncio.gather(*(n.post("/ports", {"port": {
        "network_id": net["id"], "fixed_ips": [{"subnet_id": sub["id"], "ip_address": "10.91.0.77"}]}})
        for _ in range(8)))
    assert [r.status_code for r in results].count(201) == 1
    for r in results:
        if r.status_code != 201:
            assert_fault(r, 409, "IpAddressAlreadyAllocated")
    results = await asyncio.gather(*(n.post("/ports", {"port": {"network_id": net["id"],
                                                                "mac_address": "fa:16:3e:aa:bb:cc"}})
                                     for _ in range(8)))
    assert [r.status_code for r in results].count(201) == 1
    for r in results:
        if r.status_code != 201:
            assert_fault(r, 409, "MacAddressInUse")
    assert len(await n.ids("ports", network_id=net["id"])) == 2


async def test_bulk_ports_and_concurrent_subnets(w: World) -> None:
    n = w["member"]
    net, _ = await n.net_with_subnet(cidr="10.92.0.0/24")
    r = await n.post("/ports", {"ports": [{"network_id": net["id"]} for _ in range(20)]}, expect=201)
    ports = r.json()["ports"]
    assert len({p["fixed_ips"][0]["ip_address"] for p in ports}) == 20
    # racing subnets with one CIDR on one network: one wins, the rest overlap
    other = await n.network()
    results = await asyncio.gather(*(n.post("/subnets", {"subnet": {"network_id": other["id"], "ip_version": 4,
                                                                     "cidr": "10.93.0.0/24"}}) for _ in range(5)))
    assert [x.status_code for x in results].count(201) == 1, [x.text for x in results]


async def test_a_drawn_mac_that_a_port_anywhere_has_is_drawn_again(w: World, monkeypatch) -> None:
    """New MACs are random: a draw that some port has (here: one of another project's network)
    is drawn again, and the port gets the next free one with nothing half-written left."""
    from mcloud.network import ipam

    other = w["other"]
    theirs = await other.port((await other.net_with_subnet())[0]["id"])
    n = w["member"]
    net, _ = await n.net_with_subnet()
    draws = iter([theirs["mac_address"], theirs["mac_address"], "fa:16:3e:12:34:56"])
    monkeypatch.setattr(ipam, "random_mac", lambda: next(draws))
    port = await n.port(net["id"])
    assert port["mac_address"] == "fa:16:3e:12:34:56"
    assert await n.ids("ports", network_id=net["id"]) == [port["id"]]
    shown = (await n.get(f"/ports/{port['id']}", expect=200)).json()["port"]
    assert shown == port

"""Claims racing for the last units of an inventory: exactly as many win as fit, the rest get a
409, and the provider's usage is exactly its capacity. In-process on every database of the
session (on PostgreSQL the claims run on separate pooled connections, truly in parallel)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.api.placement_helpers import Placement


@pytest.fixture
def pl(client: httpx.AsyncClient, admin_token: str) -> Placement:
    return Placement(client, admin_token)


@pytest.mark.parametrize("units,claims", [(1, 12), (5, 20)])
async def test_racing_claims_for_the_last_units(pl: Placement, units: int, claims: int) -> None:
    rp = (await pl.provider(VCPU=units + 3))["uuid"]
    await pl.allocate(str(uuid.uuid4()), {rp: {"VCPU": 3}})  # only `units` are left

    async def claim() -> int:
        r = await pl.allocate(str(uuid.uuid4()), {rp: {"VCPU": 1}}, expect=None)
        assert r.status_code in (204, 409), r.text
        return r.status_code

    results = await asyncio.gather(*(claim() for _ in range(claims)))
    assert results.count(204) == units
    assert results.count(409) == claims - units
    usage = (await pl.get(f"/resource_providers/{rp}/usages", expect=200)).json()["usages"]
    assert usage == {"VCPU": units + 3}
    held = (await pl.get(f"/resource_providers/{rp}/allocations", expect=200)).json()["allocations"]
    assert len(held) == units + 1
    # the candidate index agrees: nothing is left
    assert (await pl.candidates(resources="VCPU:1", in_tree=rp))["allocation_requests"] == []


async def test_racing_multi_provider_claims_never_oversubscribe(pl: Placement) -> None:
    a = (await pl.provider(VCPU=3, MEMORY_MB=3))["uuid"]
    b = (await pl.provider(VCPU=3, MEMORY_MB=3))["uuid"]

    async def claim(i: int) -> int:
        first, second = (a, b) if i % 2 else (b, a)  # opposite orders: no deadlock either
        r = await pl.allocate(str(uuid.uuid4()), {first: {"VCPU": 1}, second: {"MEMORY_MB": 1}}, expect=None)
        assert r.status_code in (204, 409), r.text
        return r.status_code

    results = await asyncio.gather(*(claim(i) for i in range(16)))
    # each direction fits 3 times (3 VCPU on one provider, 3 MEMORY_MB on the other)
    assert results.count(204) == 6
    for rp in (a, b):
        usage = (await pl.get(f"/resource_providers/{rp}/usages", expect=200)).json()["usages"]
        assert usage == {"VCPU": 3, "MEMORY_MB": 3}

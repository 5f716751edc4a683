"""GET /allocation_candidates: trees, sharing providers, granular groups and their policies.

Every test asks for resource classes it made itself, so providers of other tests never match."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.api.placement_helpers import Placement, assert_fault


@pytest.fixture
def pl(client: httpx.AsyncClient, admin_token: str) -> Placement:
    return Placement(client, admin_token)


def requests_of(body: dict) -> list[dict[str, dict[str, int]]]:
    """Each allocation request as {provider: {class: amount}}."""
    return [{rp: a["resources"] for rp, a in ar["allocations"].items()} for ar in body["allocation_requests"]]


def same(a: list, b: list) -> bool:
    key = lambda x: sorted((rp, sorted(r.items())) for rp, r in x.items())  # noqa: E731
    return sorted(map(key, a)) == sorted(map(key, b))


async def test_single_providers_capacity_and_limit(pl: Placement) -> None:
    cpu = await pl.resource_class()
    a = (await pl.provider(**{cpu: {"total": 4, "allocation_ratio": 2.0}}))["uuid"]
    b = (await pl.provider(**{cpu: {"total": 2, "max_unit": 1}}))["uuid"]
    c = (await pl.provider(**{cpu: {"total": 4, "reserved": 3}}))["uuid"]
    body = await pl.candidates(resources=f"{cpu}:1")
    assert same(requests_of(body), [{a: {cpu: 1}}, {b: {cpu: 1}}, {c: {cpu: 1}}])
    assert body["provider_summaries"][a]["resources"][cpu] == {"capacity": 8, "used": 0}
    assert body["provider_summaries"][a]["root_provider_uuid"] == a
    # 2 units: b's max_unit is 1, c has 1 left
    assert same(requests_of(await pl.candidates(resources=f"{cpu}:2")), [{a: {cpu: 2}}])
    # usage counts: a claim of 7 on a leaves 1
    await pl.allocate(str(uuid.uuid4()), {a: {cpu: 7}})
    assert same(requests_of(await pl.candidates(resources=f"{cpu}:2")), [])
    assert (await pl.candidates(resources=f"{cpu}:1"))["provider_summaries"][a]["resources"][cpu]["used"] == 7
    limited = await pl.candidates(resources=f"{cpu}:1", limit="2")
    assert len(limited["allocation_requests"]) == 2
    assert set(limited["provider_summaries"]) == {rp for ar in requests_of(limited) for rp in ar}
    assert_fault(await pl.get("/allocation_candidates", params={"resources": f"{cpu}:1", "limit": "0"}), 400)
    assert_fault(await pl.get("/allocation_candidates", params={"resources": "CUSTOM_NO_SUCH_RC_Q:1"}), 400)
    assert_fault(await pl.get("/allocation_candidates", params={"resources": f"{cpu}:-1"}), 400)
    assert_fault(await pl.get("/allocation_candidates"), 400)
    assert_fault(await pl.at("1.9").get("/allocation_candidates", params={"resources": f"{cpu}:1"}), 404)
    old = (await pl.at("1.10").get("/allocation_candidates", params={"resources": f"{cpu}:1"}, expect=200)).json()
    assert {"resource_provider": {"uuid": b}, "resources": {cpu: 1}} in \
        [x for ar in old["allocation_requests"] for x in ar["allocations"]]


async def test_required_and_forbidden_traits(pl: Placement) -> None:
    cpu, ssd, avx = await pl.resource_class(), await pl.trait(), await pl.trait()
    a = (await pl.provider(**{cpu: 4}))["uuid"]
    b = (await pl.provider(**{cpu: 4}))["uuid"]
    await pl.set_traits(a, ssd, avx)
    await pl.set_traits(b, avx)
    assert same(requests_of(await pl.candidates(resources=f"{cpu}:1", required=ssd)), [{a: {cpu: 1}}])
    assert same(requests_of(await pl.candidates(resources=f"{cpu}:1", required=f"{avx},!{ssd}")), [{b: {cpu: 1}}])
    body = await pl.candidates(resources=f"{cpu}:1", required=f"in:{ssd},{avx}")
    assert len(body["allocation_requests"]) == 2
    assert sorted(body["provider_summaries"][a]["traits"]) == sorted([ssd, avx])
    assert_fault(await pl.get("/allocation_candidates", params={"resources": f"{cpu}:1",
                                                                "required": f"{ssd},!{ssd}"}), 400)
    assert_fault(await pl.at("1.21").get("/allocation_candidates", params={"resources": f"{cpu}:1",
                                                                           "required": f"!{ssd}"}), 400)


async def test_nested_tree_spreads_one_request_over_providers(pl: Placement) -> None:
    cpu, vf, phys = await pl.resource_class(), await pl.resource_class(), await pl.trait()
    root = (await pl.provider(**{cpu: 8}))["uuid"]
    pf1 = (await pl.provider(parent=root, **{vf: 2}))["uuid"]
    pf2 = (await pl.provider(parent=root, **{vf: 1}))["uuid"]
    await pl.set_traits(pf2, phys)
    body = await pl.candidates(resources=f"{cpu}:1,{vf}:1")
    assert same(requests_of(body), [{root: {cpu: 1}, pf1: {vf: 1}}, {root: {cpu: 1}, pf2: {vf: 1}}])
    # every provider of the tree is summarised, with its parent and root
    assert set(body["provider_summaries"]) == {root, pf1, pf2}
    assert body["provider_summaries"][pf1]["parent_provider_uuid"] == root
    assert body["provider_summaries"][pf1]["root_provider_uuid"] == root
    # traits count on the providers that give resources, together
    assert same(requests_of(await pl.candidates(resources=f"{cpu}:1,{vf}:1", required=phys)),
                [{root: {cpu: 1}, pf2: {vf: 1}}])
    assert same(requests_of(await pl.candidates(resources=f"{cpu}:1,{vf}:2", required=phys)), [])
    # before 1.29 one request may not use two providers of a tree
    old = (await pl.at("1.28").get("/allocation_candidates", params={"resources": f"{cpu}:1,{vf}:1"},
                                   expect=200)).json()
    assert old["allocation_requests"] == []
    # in_tree (1.31) and root_required (1.35)
    assert len((await pl.candidates(resources=f"{cpu}:1,{vf}:1", in_tree=pf1))["allocation_requests"]) == 2
    assert (await pl.candidates(resources=f"{cpu}:1,{vf}:1", in_tree=str(uuid.uuid4())))["allocation_requests"] == []
    assert (await pl.candidates(resources=f"{cpu}:1,{vf}:1", root_required=phys))["allocation_requests"] == []
    await pl.set_traits(root, phys)
    assert len((await pl.candidates(resources=f"{cpu}:1,{vf}:1", root_required=phys))["allocation_requests"]) == 2
    assert (await pl.candidates(resources=f"{cpu}:1,{vf}:1", root_required=f"!{phys}"))["allocation_requests"] == []


async def test_sharing_provider_via_aggregate(pl: Placement) -> None:
    cpu, disk = await pl.resource_class(), await pl.resource_class()
    agg = str(uuid.uuid4())
    cn1 = (await pl.provider(**{cpu: 4}))["uuid"]
    cn2 = (await pl.provider(**{cpu: 4}))["uuid"]
    cn3 = (await pl.provider(**{cpu: 4}))["uuid"]  # not in the aggregate
    nfs = (await pl.provider(**{disk: 1000}))["uuid"]
    await pl.set_traits(nfs, "MISC_SHARES_VIA_AGGREGATE")
    for rp in (cn1, cn2, nfs):
        await pl.set_aggregates(rp, agg)
    body = await pl.candidates(resources=f"{cpu}:1,{disk}:100")
    assert same(requests_of(body), [{cn1: {cpu: 1}, nfs: {disk: 100}}, {cn2: {cpu: 1}, nfs: {disk: 100}}])
    assert {cn1, cn2, nfs} <= set(body["provider_summaries"]) and cn3 not in body["provider_summaries"]
    # member_of narrows; the sharing provider's disk alone is also a candidate for a disk-only request
    other = str(uuid.uuid4())
    assert (await pl.candidates(resources=f"{cpu}:1,{disk}:100", member_of=other))["allocation_requests"] == []
    assert len((await pl.candidates(resources=f"{cpu}:1,{disk}:100", member_of=agg))["allocation_requests"]) == 2
    assert same(requests_of(await pl.candidates(resources=f"{disk}:100")), [{nfs: {disk: 100}}])
    # without the sharing trait the disk is not shared
    await pl.set_traits(nfs)
    assert (await pl.candidates(resources=f"{cpu}:1,{disk}:100"))["allocation_requests"] == []


async def test_granular_groups_and_group_policy(pl: Placement) -> None:
    cpu, vf, net_a, net_b = await pl.resource_class(), await pl.resource_class(), await pl.trait(), await pl.trait()
    root = (await pl.provider(**{cpu: 8}))["uuid"]
    pf1 = (await pl.provider(parent=root, **{vf: 4}))["uuid"]
    pf2 = (await pl.provider(parent=root, **{vf: 4}))["uuid"]
    await pl.set_traits(pf1, net_a)
    await pl.set_traits(pf2, net_a, net_b)
    params = {"resources": f"{cpu}:1", "resources1": f"{vf}:1", "resources2": f"{vf}:1"}
    assert_fault(await pl.get("/allocation_candidates", params=params), 400)  # group_policy required
    isolate = await pl.candidates(**params, group_policy="isolate")
    assert same(requests_of(isolate), [{root: {cpu: 1}, pf1: {vf: 1}, pf2: {vf: 1}}] * 2)
    mappings = [ar["mappings"] for ar in isolate["allocation_requests"]]
    assert {(m["1"][0], m["2"][0]) for m in mappings} == {(pf1, pf2), (pf2, pf1)}
    assert all(m[""] == [root] for m in mappings)
    none = await pl.candidates(**params, group_policy="none")
    assert same(requests_of(none), [{root: {cpu: 1}, pf1: {vf: 1}, pf2: {vf: 1}}] * 2 +
                [{root: {cpu: 1}, pf1: {vf: 2}}, {root: {cpu: 1}, pf2: {vf: 2}}])
    # a group's traits bind its own provider
    narrowed = await pl.candidates(**params, required2=net_b, group_policy="isolate")
    assert [(ar["mappings"]["1"], ar["mappings"]["2"]) for ar in narrowed["allocation_requests"]] == [([pf1], [pf2])]
    # string suffixes from 1.33; numbered only before
    assert len((await pl.candidates(resources=f"{cpu}:1", resources_NET=f"{vf}:1"))["allocation_requests"]) == 2
    assert_fault(await pl.at("1.32").get("/allocation_candidates",
                                         params={"resources": f"{cpu}:1", "resources_NET": f"{vf}:1"}), 400)
    assert_fault(await pl.at("1.24").get("/allocation_candidates", params={"resources1": f"{vf}:1"}), 400)
    # mappings appear from 1.34
    old = (await pl.at("1.33").get("/allocation_candidates", params=params | {"group_policy": "isolate"},
                                   expect=200)).json()
    assert "mappings" not in old["allocation_requests"][0]


async def test_same_subtree(pl: Placement) -> None:
    cpu, vf, nic = await pl.resource_class(), await pl.resource_class(), await pl.trait()
    root = (await pl.provider(**{cpu: 8}))["uuid"]
    nic1 = (await pl.provider(parent=root))["uuid"]
    nic2 = (await pl.provider(parent=root))["uuid"]
    await pl.set_traits(nic1, nic)
    await pl.set_traits(nic2, nic)
    pf1 = (await pl.provider(parent=nic1, **{vf: 2}))["uuid"]
    pf2 = (await pl.provider(parent=nic2, **{vf: 2}))["uuid"]
    body = await pl.candidates(resources=f"{cpu}:1", resources_A=f"{vf}:1", resources_B=f"{vf}:1",
                               required_NIC=nic, same_subtree="_NIC,_A,_B", group_policy="none")
    pairs = {(ar["mappings"]["_NIC"][0], ar["mappings"]["_A"][0], ar["mappings"]["_B"][0])
             for ar in body["allocation_requests"]}
    assert pairs == {(nic1, pf1, pf1), (nic2, pf2, pf2)}
    assert_fault(await pl.get("/allocation_candidates", params={"resources": f"{cpu}:1", "required_X": nic}), 400)
    assert_fault(await pl.get("/allocation_candidates", params={"resources": f"{cpu}:1", "same_subtree": "_Z"}), 400)

"""Server groups through the API: policies before 2.64 and policy + rules after, soft policies
from 2.15, project and user from 2.13, listing with all_projects and paging, isolation, quota."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.api.compute_helpers import ComputeWorld, assert_fault, compute_world


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[ComputeWorld]:
    async with compute_world(cloud) as world:
        yield world


async def test_policy_forms_per_microversion(w: ComputeWorld) -> None:
    member = w["member"]
    new = (await member.post("/os-server-groups", {"server_group": {"name": "anti", "policy": "anti-affinity",
                                                                    "rules": {"max_server_per_host": 2}}},
                             expect=200)).json()["server_group"]
    assert (new["policy"], new["rules"], new["members"]) == ("anti-affinity", {"max_server_per_host": 2}, [])
    assert (new["project_id"], new["user_id"]) == (w.projects["a"], member.user_id) and "policies" not in new
    old = (await member.at("2.1").get(f"/os-server-groups/{new['id']}", expect=200)).json()["server_group"]
    assert old == {"id": new["id"], "name": "anti", "policies": ["anti-affinity"], "metadata": {}, "members": []}
    legacy = (await member.at("2.15").post("/os-server-groups", {"server_group": {
        "name": "soft", "policies": ["soft-affinity"]}}, expect=200)).json()["server_group"]
    assert legacy["policies"] == ["soft-affinity"] and legacy["project_id"] == w.projects["a"]
    assert_fault(await member.at("2.14").post("/os-server-groups", {"server_group": {
        "name": "soft", "policies": ["soft-affinity"]}}), 400)
    for body in ({"name": "x", "policies": ["affinity"]}, {"name": "x", "policy": "bogus"},
                 {"name": "x", "policy": "affinity", "rules": {"max_server_per_host": 2}},
                 {"name": "x", "policy": "anti-affinity", "rules": {"max_server_per_host": 0}},
                 {"name": "x", "policy": "anti-affinity", "rules": {"other": 1}}, {"policy": "affinity"},
                 {"name": "", "policy": "affinity"}):
        assert_fault(await member.post("/os-server-groups", {"server_group": body}), 400)
    assert_fault(await member.at("2.63").post("/os-server-groups", {"server_group": {
        "name": "x", "policy": "affinity"}}), 400)
    for gid in (new["id"], legacy["id"]):
        assert (await member.delete(f"/os-server-groups/{gid}")).status_code == 204
    assert_fault(await member.get(f"/os-server-groups/{new['id']}"), 404)


async def test_isolation_listing_and_quota(w: ComputeWorld) -> None:
    member, other, reader = w["member"], w["other"], w["reader"]
    mine = (await member.post("/os-server-groups", {"server_group": {"name": "g", "policy": "affinity"}},
                              expect=200)).json()["server_group"]
    assert [g["id"] for g in (await reader.get("/os-server-groups")).json()["server_groups"]] == [mine["id"]]
    assert_fault(await reader.post("/os-server-groups", {"server_group": {"name": "r", "policy": "affinity"}}), 403)
    assert (await other.get("/os-server-groups")).json()["server_groups"] == []
    # Nova finds the group, then its policy refuses another project's caller
    assert_fault(await other.get(f"/os-server-groups/{mine['id']}"), 403)
    assert_fault(await other.delete(f"/os-server-groups/{mine['id']}"), 403)
    assert mine["id"] in [g["id"] for g in (await w.admin.get(
        "/os-server-groups", params={"all_projects": "True"})).json()["server_groups"]]
    assert mine["id"] not in [g["id"] for g in (await w.admin.get("/os-server-groups")).json()["server_groups"]]
    second = (await member.post("/os-server-groups", {"server_group": {"name": "g2", "policy": "affinity"}},
                                expect=200)).json()["server_group"]
    page = (await member.get("/os-server-groups", params={"limit": 1, "offset": 1})).json()["server_groups"]
    assert [g["id"] for g in page] == [second["id"]]
    assert_fault(await member.get("/os-server-groups", params={"limit": "x"}), 400)
    await w.admin.put(f"/os-quota-sets/{w.projects['a']}", {"quota_set": {"server_groups": 2}}, expect=200)
    assert_fault(await member.post("/os-server-groups", {"server_group": {"name": "g3", "policy": "affinity"}}),
                 403, contains="Quota exceeded, too many server groups.")
    usage = (await w.admin.get(f"/os-quota-sets/{w.projects['a']}/detail")).json()["quota_set"]["server_groups"]
    assert usage == {"limit": 2, "in_use": 2, "reserved": 0}
    await w.admin.delete(f"/os-quota-sets/{w.projects['a']}", expect=202)
    for g in (mine, second):
        await member.delete(f"/os-server-groups/{g['id']}", expect=204)

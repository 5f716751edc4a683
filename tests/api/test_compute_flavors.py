"""Flavors through the API: devstack's flavors, create/show/list with Nova's fields per
microversion, filters, sorting and paging with links, descriptions (2.55), extra specs (checked
from 2.86), access lists of private flavors, policy, and Nova's faults for bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.api.compute_helpers import ComputeWorld, assert_fault, compute_world, uniq


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[ComputeWorld]:
    async with compute_world(cloud) as world:
        yield world


async def test_default_flavors_and_views_per_microversion(w: ComputeWorld) -> None:
    names = {f["name"] for f in (await w["member"].get("/flavors", expect=200)).json()["flavors"]}
    assert {"m1.nano", "m1.micro", "m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"} <= names
    old = (await w["member"].at("2.1").get("/flavors/42", expect=200)).json()["flavor"]
    assert (old["name"], old["ram"], old["vcpus"], old["disk"], old["swap"]) == ("m1.nano", 192, 1, 1, "")
    assert old["OS-FLV-DISABLED:disabled"] is False and old["rxtx_factor"] == 1.0
    assert "description" not in old and "extra_specs" not in old
    assert old["links"][0]["href"].endswith("/compute/v2.1/flavors/42")
    assert old["links"][1] == {"rel": "bookmark", "href": "http://mcloud.test/compute/flavors/42"}
    new = (await w["member"].get("/flavors/42", expect=200)).json()["flavor"]
    assert new["swap"] == 0 and new["description"] is None and new["extra_specs"] == {"hw_rng:allowed": "True"}
    assert "OS-FLV-DISABLED:disabled" not in new and "rxtx_factor" not in new
    brief = (await w["member"].get("/flavors", expect=200)).json()["flavors"][0]
    assert set(brief) == {"id", "name", "links", "description"}
    assert set((await w["member"].at("2.54").get("/flavors")).json()["flavors"][0]) == {"id", "name", "links"}
    assert_fault(await w["member"].get("/flavors/no-such"), 404, contains="Flavor no-such could not be found.")


async def test_create_update_delete_and_policy(w: ComputeWorld) -> None:
    admin = w.admin
    body = {"flavor": {"name": uniq("fl"), "ram": "256", "vcpus": 2, "disk": 3, "swap": 128,
                       "OS-FLV-EXT-DATA:ephemeral": 1, "description": "for tests"}}
    assert_fault(await w["member"].post("/flavors", body), 403, contains="os-flavor-manage:create")
    made = (await admin.post("/flavors", body, expect=200)).json()["flavor"]
    assert (made["ram"], made["vcpus"], made["disk"], made["swap"], made["OS-FLV-EXT-DATA:ephemeral"]) == \
        (256, 2, 3, 128, 1)
    assert made["description"] == "for tests" and made["extra_specs"] == {}
    assert_fault(await admin.post("/flavors", body), 409, contains="already exists")
    fid = made["id"]
    upd = (await admin.put(f"/flavors/{fid}", {"flavor": {"description": "changed"}}, expect=200)).json()["flavor"]
    assert upd["description"] == "changed"
    assert_fault(await admin.at("2.54").put(f"/flavors/{fid}", {"flavor": {"description": "x"}}), 404)
    assert_fault(await admin.put(f"/flavors/{fid}", {"flavor": {"name": "x"}}), 400)
    assert_fault(await w["member"].put(f"/flavors/{fid}", {"flavor": {"description": "x"}}), 403)
    # description is not accepted before 2.55
    assert_fault(await admin.at("2.54").post("/flavors", {"flavor": {**body["flavor"], "name": uniq("fl")}}), 400)
    r = await admin.delete(f"/flavors/{fid}")
    assert r.status_code == 202
    assert_fault(await admin.delete(f"/flavors/{fid}"), 404)


async def test_bad_bodies_are_nova_400s(w: ComputeWorld) -> None:
    admin = w.admin
    base = {"name": uniq("bad"), "ram": 64, "vcpus": 1, "disk": 0}
    for change in ({"ram": 0}, {"vcpus": -1}, {"disk": "x"}, {"ram": 2**31}, {"name": " lead"}, {"name": ""},
                   {"id": "has/slash"}, {"rxtx_factor": 0}, {"unknown": 1}, {"os-flavor-access:is_public": "maybe"}):
        assert_fault(await admin.post("/flavors", {"flavor": {**base, **change}}), 400)
    assert_fault(await admin.post("/flavors", {"flavor": {"name": "x"}}), 400)
    assert_fault(await admin.post("/flavors", [1]), 400)
    assert_fault(await admin.post("/flavors", content=b"{nope", headers={"Content-Type": "application/json"}), 400)
    assert_fault(await w["member"].get("/flavors", params={"minRam": "x"}), 400, contains="Invalid minRam filter [x]")
    assert_fault(await w["member"].get("/flavors", params={"sort_key": "nope"}), 400)
    assert_fault(await w["member"].get("/flavors", params={"limit": "-1"}), 400)
    assert_fault(await w["member"].get("/flavors", params={"marker": "nope"}), 400, contains="marker [nope] not found")
    assert_fault(await w["member"].get("/flavors", params={"bogus": "1"}), 400)  # 2.75+: unknown parameters
    assert (await w["member"].at("2.74").get("/flavors", params={"bogus": "1"})).status_code == 200
    assert_fault(await admin.get("/flavors", params={"is_public": "perhaps"}), 400, contains="Invalid is_public filter")


async def test_filters_sorting_and_paging(w: ComputeWorld) -> None:
    member = w["member"]
    big = (await member.get("/flavors/detail", params={"minRam": 8192}, expect=200)).json()["flavors"]
    assert sorted(f["name"] for f in big) == ["m1.large", "m1.xlarge"]
    disk = (await member.get("/flavors/detail", params={"minDisk": 80}, expect=200)).json()["flavors"]
    assert {f["name"] for f in disk} == {"m1.large", "m1.xlarge"}
    named = (await member.get("/flavors", params={"name": "m1.small"}, expect=200)).json()["flavors"]
    assert [f["id"] for f in named] == ["2"]
    by_ram = (await member.get("/flavors/detail", params={"sort_key": "memory_mb", "sort_dir": "desc", "limit": 2},
                               expect=200)).json()
    assert [f["ram"] for f in by_ram["flavors"]] == [16384, 8192]
    link = by_ram["flavors_links"][0]
    assert link["rel"] == "next" and "marker=4" in link["href"] and "/compute/v2.1/flavors/detail?" in link["href"]
    seen, params = [], {"limit": 3}
    while True:
        page = (await member.get("/flavors", params=params, expect=200)).json()
        seen += [f["id"] for f in page["flavors"]]
        if "flavors_links" not in page:
            break
        params = {"limit": 3, "marker": page["flavors"][-1]["id"]}
    everything = [f["id"] for f in (await member.get("/flavors")).json()["flavors"]]
    assert seen == everything and len(set(seen)) == len(seen) >= 12


async def test_private_flavors_and_access(w: ComputeWorld) -> None:
    admin = w.admin
    private = (await admin.post("/flavors", {"flavor": {"name": uniq("priv"), "ram": 64, "vcpus": 1, "disk": 0,
                                                        "os-flavor-access:is_public": False}}, expect=200)).json()
    fid = private["flavor"]["id"]
    a, b = w.projects["a"], w.projects["b"]
    assert_fault(await w["member"].get(f"/flavors/{fid}"), 404)
    assert fid not in [f["id"] for f in (await w["member"].get("/flavors")).json()["flavors"]]
    assert (await admin.get(f"/flavors/{fid}/os-flavor-access", expect=200)).json() == {"flavor_access": []}
    added = (await admin.post(f"/flavors/{fid}/action", {"addTenantAccess": {"tenant": a}}, expect=200)).json()
    assert added == {"flavor_access": [{"flavor_id": fid, "tenant_id": a}]}
    assert_fault(await admin.post(f"/flavors/{fid}/action", {"addTenantAccess": {"tenant": a}}), 409)
    assert_fault(await admin.post(f"/flavors/{fid}/action", {"addTenantAccess": {"tenant": "no-such-project"}}),
                 400, contains="is not a valid project")
    assert (await w["member"].get(f"/flavors/{fid}", expect=200)).json()["flavor"]["id"] == fid
    assert fid in [f["id"] for f in (await w["member"].get("/flavors")).json()["flavors"]]
    assert_fault(await w["other"].get(f"/flavors/{fid}"), 404)  # project b was not given access
    assert_fault(await w["member"].get(f"/flavors/{fid}/os-flavor-access"), 403)
    assert_fault(await w["member"].post(f"/flavors/{fid}/action", {"addTenantAccess": {"tenant": b}}), 403)
    assert_fault(await admin.post("/flavors/1/action", {"addTenantAccess": {"tenant": b}}), 409)
    assert_fault(await admin.get("/flavors/1/os-flavor-access"), 404, contains="public flavors")
    assert_fault(await admin.post(f"/flavors/{fid}/action", {"bogus": {}}), 400)
    admin_list = (await admin.get("/flavors", params={"is_public": "false"})).json()["flavors"]
    assert fid in [f["id"] for f in admin_list] and "1" not in [f["id"] for f in admin_list]
    assert fid in [f["id"] for f in (await admin.get("/flavors", params={"is_public": "None"})).json()["flavors"]]
    removed = (await admin.post(f"/flavors/{fid}/action", {"removeTenantAccess": {"tenant": a}}, expect=200)).json()
    assert removed == {"flavor_access": []}
    assert_fault(await admin.post(f"/flavors/{fid}/action", {"removeTenantAccess": {"tenant": a}}), 404)
    assert_fault(await w["member"].get(f"/flavors/{fid}"), 404)
    await admin.delete(f"/flavors/{fid}", expect=202)


async def test_extra_specs(w: ComputeWorld) -> None:
    admin = w.admin
    fid = (await admin.post("/flavors", {"flavor": {"name": uniq("es"), "ram": 64, "vcpus": 1, "disk": 0}},
                            expect=200)).json()["flavor"]["id"]
    base = f"/flavors/{fid}/os-extra_specs"
    specs = {"hw:cpu_policy": "dedicated", "hw:numa_nodes": 1, "trait:HW_CPU_X86_AVX2": "required"}
    assert (await admin.post(base, {"extra_specs": specs}, expect=200)).json() == {"extra_specs": specs}
    assert (await w["member"].get(base, expect=200)).json()["extra_specs"] == \
        {"hw:cpu_policy": "dedicated", "hw:numa_nodes": "1", "trait:HW_CPU_X86_AVX2": "required"}
    assert (await w["reader"].get(f"{base}/hw:numa_nodes", expect=200)).json() == {"hw:numa_nodes": "1"}
    assert (await admin.put(f"{base}/hw:numa_nodes", {"hw:numa_nodes": "2"}, expect=200)).json() == \
        {"hw:numa_nodes": "2"}
    assert_fault(await admin.put(f"{base}/hw:numa_nodes", {"hw:cpu_policy": "shared"}), 400,
                 contains="Request body and URI mismatch")
    assert_fault(await admin.put(f"{base}/a", {"a": "1", "b": "2"}), 400)
    assert_fault(await admin.post(base, {"extra_specs": {"hw:cpu_policy": "sideways"}}), 400,
                 contains="is not one of: dedicated, shared, mixed")
    assert_fault(await admin.post(base, {"extra_specs": {"hw:wrong": "1"}}), 400,
                 contains="does not appear to be a valid extra spec")
    assert (await admin.at("2.85").post(base, {"extra_specs": {"hw:wrong": "1"}})).status_code == 200
    assert_fault(await admin.post(base, {"extra_specs": {"bad/key": "1"}}), 400)
    assert_fault(await admin.post(base, {"extra_specs": {"k": "v" * 256}}), 400)
    assert_fault(await admin.post(base, {"extra_specs": {"k": True}}), 400)
    assert_fault(await w["member"].post(base, {"extra_specs": {"a": "b"}}), 403)
    flavor = (await w["member"].get(f"/flavors/{fid}")).json()["flavor"]
    assert flavor["extra_specs"]["hw:numa_nodes"] == "2" and flavor["extra_specs"]["hw:wrong"] == "1"
    assert (await admin.delete(f"{base}/hw:wrong")).status_code == 200
    assert_fault(await admin.delete(f"{base}/hw:wrong"), 404, contains="has no extra specs with key hw:wrong")
    assert_fault(await w["member"].get(f"{base}/hw:wrong"), 404)
    assert_fault(await admin.get("/flavors/no-such/os-extra_specs"), 404)
    await admin.delete(f"/flavors/{fid}", expect=202)

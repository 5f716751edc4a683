"""Placement through its API (in-process), on every database the session runs: resources,
generations, microversion gating, faults in Placement's format, bad input."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.api.placement_helpers import Placement, assert_fault, custom, uniq

CONCURRENT = "placement.concurrent_update"


@pytest.fixture
def pl(client: httpx.AsyncClient, admin_token: str) -> Placement:
    return Placement(client, admin_token)


# ---------------------------------------------------------------------- root, versions, faults


async def test_root_is_public_and_names_the_versions(client: httpx.AsyncClient) -> None:
    for path in ("/placement", "/placement/"):
        r = await client.get(path)
        assert r.status_code == 200
        (doc,) = r.json()["versions"]
        assert doc["id"] == "v1.0" and doc["min_version"] == "1.0" and doc["max_version"] == "1.39"
        assert doc["status"] == "CURRENT"
        assert r.headers["openstack-api-version"] == "placement 1.0"
    r = await client.get("/placement/", headers={"OpenStack-API-Version": "placement latest"})
    assert r.headers["openstack-api-version"] == "placement 1.39"
    assert "OpenStack-API-Version" in r.headers["vary"]
    assert r.headers["cache-control"] == "no-cache" and r.headers["last-modified"]


async def test_microversion_errors_in_placement_format(pl: Placement) -> None:
    err = assert_fault(await pl.at("1.40").get("/resource_providers"), 406)
    assert err["max_version"] == "1.39" and err["min_version"] == "1.0"
    assert_fault(await pl.at("one.two").get("/resource_providers"), 400)
    # without a token the 401 comes first, whatever the version says
    r = await pl.as_(None).at("9.9").get("/resource_providers")
    assert_fault(r, 401)
    assert r.headers["www-authenticate"].startswith("Keystone uri=")


async def test_error_code_appears_from_1_23(pl: Placement) -> None:
    missing = f"/resource_providers/{uuid.uuid4()}"
    assert "code" not in assert_fault(await pl.at("1.22").get(missing), 404)
    assert assert_fault(await pl.at("1.23").get(missing), 404)["code"] == "placement.undefined_code"


async def test_unknown_route_and_method(pl: Placement) -> None:
    assert_fault(await pl.get("/nothing-here"), 404)
    assert_fault(await pl.request("PATCH", "/resource_providers"), 405)


# ---------------------------------------------------------------------- resource providers


async def test_provider_crud(pl: Placement) -> None:
    name = uniq()
    r = await pl.at("1.19").post("/resource_providers", {"name": name})
    assert r.status_code == 201 and r.content == b""
    rp_uuid = r.headers["location"].rsplit("/", 1)[1]
    shown = (await pl.get(f"/resource_providers/{rp_uuid}", expect=200)).json()
    assert shown["name"] == name and shown["generation"] == 0
    assert shown["root_provider_uuid"] == rp_uuid and shown["parent_provider_uuid"] is None
    assert {link["rel"] for link in shown["links"]} == {"self", "inventories", "usages", "aggregates", "traits",
                                                         "allocations"}
    # links appear with their microversions, tree fields from 1.14
    old = (await pl.at("1.0").get(f"/resource_providers/{rp_uuid}", expect=200)).json()
    assert {link["rel"] for link in old["links"]} == {"self", "inventories", "usages"}
    assert "root_provider_uuid" not in old

    renamed = (await pl.put(f"/resource_providers/{rp_uuid}", {"name": name + "-x"}, expect=200)).json()
    assert renamed["name"] == name + "-x"
    listed = (await pl.get("/resource_providers", params={"name": name + "-x"}, expect=200)).json()
    assert [p["uuid"] for p in listed["resource_providers"]] == [rp_uuid]
    await pl.delete(f"/resource_providers/{rp_uuid}", expect=204)
    assert_fault(await pl.get(f"/resource_providers/{rp_uuid}"), 404)
    assert_fault(await pl.delete(f"/resource_providers/{rp_uuid}"), 404)


async def test_provider_uuid_given_and_duplicates(pl: Placement) -> None:
    given = str(uuid.uuid4())
    name = uniq()
    rp = (await pl.post("/resource_providers", {"name": name, "uuid": given.replace("-", "")}, expect=200)).json()
    assert rp["uuid"] == given  # normalized to the dashed form
    assert_fault(await pl.post("/resource_providers", {"name": name}), 409, "placement.duplicate_name")
    assert_fault(await pl.post("/resource_providers", {"name": uniq(), "uuid": given}), 409,
                 "placement.duplicate_name")
    other = await pl.provider()
    assert_fault(await pl.put(f"/resource_providers/{other['uuid']}", {"name": name}), 409, "placement.duplicate_name")


async def test_provider_trees(pl: Placement) -> None:
    root = await pl.provider()
    child = await pl.provider(parent=root["uuid"])
    grandchild = await pl.provider(parent=child["uuid"])
    assert child["root_provider_uuid"] == root["uuid"] and child["parent_provider_uuid"] == root["uuid"]
    assert grandchild["root_provider_uuid"] == root["uuid"]
    tree = (await pl.get("/resource_providers", params={"in_tree": grandchild["uuid"]}, expect=200)).json()
    assert {p["uuid"] for p in tree["resource_providers"]} == {root["uuid"], child["uuid"], grandchild["uuid"]}
    # a parent cannot go while it has children
    assert_fault(await pl.delete(f"/resource_providers/{child['uuid']}"), 409,
                 "placement.resource_provider.cannot_delete_parent")
    # parent given that does not exist, or is itself
    assert_fault(await pl.post("/resource_providers", {"name": uniq(), "parent_provider_uuid": str(uuid.uuid4())}), 400)
    me = str(uuid.uuid4())
    assert_fault(await pl.post("/resource_providers", {"name": uniq(), "uuid": me, "parent_provider_uuid": me}), 400)
    # re-parenting: refused before 1.37, a loop refused always, allowed at 1.37
    other = await pl.provider()
    move = {"name": child["name"], "parent_provider_uuid": other["uuid"]}
    assert_fault(await pl.at("1.36").put(f"/resource_providers/{child['uuid']}", move), 400)
    assert_fault(await pl.put(f"/resource_providers/{child['uuid']}",
                              {"name": child["name"], "parent_provider_uuid": grandchild["uuid"]}), 400)
    moved = (await pl.put(f"/resource_providers/{child['uuid']}", move, expect=200)).json()
    assert moved["root_provider_uuid"] == other["uuid"]
    gc = (await pl.get(f"/resource_providers/{grandchild['uuid']}", expect=200)).json()
    assert gc["root_provider_uuid"] == other["uuid"]
    # un-parenting at 1.37 makes a new root of the subtree
    unparented = (await pl.put(f"/resource_providers/{child['uuid']}",
                               {"name": child["name"], "parent_provider_uuid": None}, expect=200)).json()
    assert unparented["root_provider_uuid"] == child["uuid"] and unparented["parent_provider_uuid"] is None
    gc = (await pl.get(f"/resource_providers/{grandchild['uuid']}", expect=200)).json()
    assert gc["root_provider_uuid"] == child["uuid"]
    # setting a parent on a root is fine below 1.37 too
    loner = await pl.provider()
    adopted = (await pl.at("1.14").put(f"/resource_providers/{loner['uuid']}",
                                       {"name": loner["name"], "parent_provider_uuid": root["uuid"]},
                                       expect=200)).json()
    assert adopted["root_provider_uuid"] == root["uuid"]


async def test_provider_list_filters(pl: Placement) -> None:
    rc = await pl.resource_class()
    trait = await pl.trait()
    agg = str(uuid.uuid4())
    big = await pl.provider(**{rc: 10})
    small = await pl.provider(**{rc: 2})
    await pl.set_traits(big["uuid"], trait)
    await pl.set_aggregates(small["uuid"], agg)

    async def names(**params: str) -> set[str]:
        r = await pl.get("/resource_providers", params=params, expect=200)
        return {p["uuid"] for p in r.json()["resource_providers"]}

    assert await names(resources=f"{rc}:5") == {big["uuid"]}
    assert await names(resources=f"{rc}:1") == {big["uuid"], small["uuid"]}
    assert big["uuid"] in await names(required=trait)
    assert small["uuid"] not in await names(required=trait)
    assert big["uuid"] not in await names(required=f"!{trait}")
    assert await names(member_of=agg) == {small["uuid"]}
    assert await names(member_of=f"in:{agg},{uuid.uuid4()}") == {small["uuid"]}
    assert small["uuid"] not in await names(member_of=f"!{agg}")
    assert await names(uuid=big["uuid"]) == {big["uuid"]}
    # unknown class or trait is a 400; filters beyond the microversion are unknown parameters
    assert_fault(await pl.get("/resource_providers", params={"resources": "CUSTOM_NOPE_X:1"}), 400)
    assert_fault(await pl.get("/resource_providers", params={"required": "CUSTOM_NOPE_X"}), 400)
    assert_fault(await pl.at("1.17").get("/resource_providers", params={"required": trait}), 400)
    assert_fault(await pl.at("1.3").get("/resource_providers", params={"resources": f"{rc}:1"}), 400)
    assert_fault(await pl.at("1.23").get("/resource_providers", params={"member_of": f"!{agg}"}), 400)
    assert_fault(await pl.at("1.23").get("/resource_providers", params=[("member_of", agg), ("member_of", agg)]), 400)
    assert_fault(await pl.get("/resource_providers", params={"uuid": "not-a-uuid"}), 400)
    assert_fault(await pl.get("/resource_providers", params={"color": "blue"}), 400)
    # any-traits from 1.39
    assert big["uuid"] in await names(required=f"in:{trait},HW_CPU_X86_AVX")
    assert_fault(await pl.at("1.38").get("/resource_providers", params={"required": f"in:{trait},HW_CPU_X86_AVX"}), 400)


# ---------------------------------------------------------------------- inventories


async def test_inventory_lifecycle_and_generations(pl: Placement) -> None:
    rp = (await pl.provider())["uuid"]
    base = f"/resource_providers/{rp}/inventories"
    r = await pl.put(base, {"resource_provider_generation": 0, "inventories": {
        "VCPU": {"total": 8, "allocation_ratio": 2.0}, "MEMORY_MB": {"total": 1024, "reserved": 24}}}, expect=200)
    body = r.json()
    assert body["resource_provider_generation"] == 1
    assert body["inventories"]["VCPU"] == {"total": 8, "reserved": 0, "min_unit": 1, "max_unit": 2147483647,
                                           "step_size": 1, "allocation_ratio": 2.0}
    # a stale generation is a 409 concurrent_update and changes nothing
    err = assert_fault(await pl.put(base, {"resource_provider_generation": 0, "inventories": {}}), 409, CONCURRENT)
    assert "generation" in err["detail"]
    assert set((await pl.get(base, expect=200)).json()["inventories"]) == {"VCPU", "MEMORY_MB"}
    # one class
    one = (await pl.get(f"{base}/VCPU", expect=200)).json()
    assert one["total"] == 8 and one["resource_provider_generation"] == 1
    updated = (await pl.put(f"{base}/VCPU", {"resource_provider_generation": 1, "total": 16}, expect=200)).json()
    assert updated["total"] == 16 and updated["resource_provider_generation"] == 2
    assert_fault(await pl.put(f"{base}/VCPU", {"resource_provider_generation": 1, "total": 4}), 409, CONCURRENT)
    assert_fault(await pl.put(f"{base}/DISK_GB", {"resource_provider_generation": 2, "total": 4}), 400)
    created = await pl.post(base, {"resource_class": "DISK_GB", "total": 100})
    assert created.status_code == 201 and created.headers["location"].endswith(f"{base}/DISK_GB")
    assert created.json()["resource_provider_generation"] == 3
    assert_fault(await pl.post(base, {"resource_class": "DISK_GB", "total": 100}), 409, CONCURRENT)
    await pl.delete(f"{base}/DISK_GB", expect=204)
    assert_fault(await pl.get(f"{base}/DISK_GB"), 404)
    assert_fault(await pl.delete(f"{base}/DISK_GB"), 404)
    # DELETE of all inventories arrived in 1.5
    assert_fault(await pl.at("1.4").delete(base), 405)
    await pl.at("1.5").delete(base, expect=204)
    assert (await pl.get(base, expect=200)).json()["inventories"] == {}


async def test_inventory_validation(pl: Placement) -> None:
    rp = (await pl.provider())["uuid"]
    base = f"/resource_providers/{rp}/inventories"

    async def put(inv: dict, version: str = "latest") -> httpx.Response:
        return await pl.at(version).put(base, {"resource_provider_generation": await pl.generation(rp),
                                               "inventories": {"VCPU": inv}})

    for bad in ({"total": 0}, {"total": "8"}, {"total": 8, "reserved": -1}, {"total": 8, "step_size": 0},
                {"total": 8, "color": "red"}, {"total": 8, "max_unit": 2 ** 31}, {"reserved": 1},
                {"total": 8, "allocation_ratio": "2"}, {"total": 8, "min_unit": 4, "max_unit": 2}):
        assert_fault(await put(bad), 400)
    assert_fault(await put({"total": 8, "reserved": 9}), 400)
    for ratio in (b"-Infinity", b"NaN", b"-1e308", b"1e39", b"-1"):
        raw = b'{"resource_provider_generation": %d, "inventories": {"VCPU": {"total": 8, "allocation_ratio": %s}}}'
        assert_fault(await pl.put(base, content=raw % (await pl.generation(rp), ratio),
                                  headers={"content-type": "application/json"}), 400)
    ok = await put({"total": 8, "allocation_ratio": 2})
    assert isinstance(ok.json()["inventories"]["VCPU"]["allocation_ratio"], float)  # 2 is stored as 2.0
    # reserved == total: refused before 1.26, allowed from 1.26
    assert_fault(await put({"total": 8, "reserved": 8}, "1.25"), 400)
    assert (await put({"total": 8, "reserved": 8}, "1.26")).status_code == 200
    assert_fault(await pl.put(base, {"resource_provider_generation": await pl.generation(rp),
                                     "inventories": {"CUSTOM_NEVER_MADE": {"total": 1}}}), 400)
    assert_fault(await pl.put(base, {"resource_provider_generation": 0, "inventories": {"vcpu": {"total": 1}}}), 400)
    assert_fault(await pl.put(base, {"inventories": {}}), 400)
    assert_fault(await pl.put(f"/resource_providers/{uuid.uuid4()}/inventories",
                              {"resource_provider_generation": 0, "inventories": {}}), 404)


async def test_inventory_in_use_cannot_go(pl: Placement) -> None:
    rp = (await pl.provider(VCPU=4, MEMORY_MB=512))["uuid"]
    consumer = str(uuid.uuid4())
    await pl.allocate(consumer, {rp: {"VCPU": 2}})
    gen = await pl.generation(rp)
    assert_fault(await pl.put(f"/resource_providers/{rp}/inventories", {
        "resource_provider_generation": gen, "inventories": {"MEMORY_MB": {"total": 512}}}), 409,
        "placement.inventory.inuse")
    assert_fault(await pl.delete(f"/resource_providers/{rp}/inventories"), 409, "placement.inventory.inuse")
    assert_fault(await pl.delete(f"/resource_providers/{rp}/inventories/VCPU"), 409)
    assert_fault(await pl.delete(f"/resource_providers/{rp}"), 409, "placement.resource_provider.inuse")
    # shrinking below the usage is allowed (the provider is then over capacity), as in Placement
    await pl.put(f"/resource_providers/{rp}/inventories/VCPU",
                 {"resource_provider_generation": gen, "total": 1}, expect=200)
    await pl.delete(f"/allocations/{consumer}", expect=204)
    await pl.delete(f"/resource_providers/{rp}", expect=204)


# ---------------------------------------------------------------------- classes and traits


async def test_resource_classes(pl: Placement) -> None:
    listed = (await pl.get("/resource_classes", expect=200)).json()["resource_classes"]
    assert {"VCPU", "MEMORY_MB", "DISK_GB", "PCI_DEVICE"} <= {c["name"] for c in listed}
    name = custom("CUSTOM_RC")
    r = await pl.post("/resource_classes", {"name": name})
    assert r.status_code == 201 and r.headers["location"].endswith(f"/resource_classes/{name}")
    assert_fault(await pl.post("/resource_classes", {"name": name}), 409)
    assert (await pl.get(f"/resource_classes/{name}", expect=200)).json()["name"] == name
    await pl.put(f"/resource_classes/{name}", expect=204)  # 1.7+: exists already
    for bad in ("VCPU2", "CUSTOM_lower", "CUSTOM_"):
        assert_fault(await pl.post("/resource_classes", {"name": bad}), 400)
        assert_fault(await pl.put(f"/resource_classes/{bad}"), 400)
    # rename only between 1.2 and 1.6
    renamed = custom("CUSTOM_RC")
    await pl.at("1.6").put(f"/resource_classes/{name}", {"name": renamed}, expect=200)
    assert_fault(await pl.get(f"/resource_classes/{name}"), 404)
    assert_fault(await pl.at("1.6").put("/resource_classes/VCPU", {"name": custom("CUSTOM_RC")}), 400)
    assert_fault(await pl.delete("/resource_classes/VCPU"), 400)
    rp = (await pl.provider(**{renamed: 1}))["uuid"]
    assert_fault(await pl.delete(f"/resource_classes/{renamed}"), 409)
    await pl.delete(f"/resource_providers/{rp}", expect=204)
    await pl.delete(f"/resource_classes/{renamed}", expect=204)
    assert_fault(await pl.at("1.1").get("/resource_classes"), 404)


async def test_traits(pl: Placement) -> None:
    standard = (await pl.get("/traits", params={"name": "startswith:HW_CPU_X86_AVX"}, expect=200)).json()["traits"]
    assert "HW_CPU_X86_AVX2" in standard and all(t.startswith("HW_CPU_X86_AVX") for t in standard)
    name = custom("CUSTOM_TRAIT")
    r = await pl.put(f"/traits/{name}")
    assert r.status_code == 201 and r.headers["location"].endswith(f"/traits/{name}")
    await pl.put(f"/traits/{name}", expect=204)
    await pl.get(f"/traits/{name}", expect=204)
    assert (await pl.get("/traits", params={"name": f"in:{name},HW_CPU_X86_AVX2"}, expect=200)).json()["traits"] == \
        sorted([name, "HW_CPU_X86_AVX2"])
    assert_fault(await pl.put("/traits/NOT_CUSTOM"), 400)
    assert_fault(await pl.delete("/traits/HW_CPU_X86_AVX2"), 400)
    assert_fault(await pl.get("/traits", params={"associated": "maybe"}), 400)
    assert_fault(await pl.get("/traits", params={"name": "HW"}), 400)
    rp = (await pl.provider())["uuid"]
    gen = await pl.generation(rp)
    r = await pl.put(f"/resource_providers/{rp}/traits",
                     {"traits": [name, "HW_CPU_X86_AVX2"], "resource_provider_generation": gen}, expect=200)
    assert r.json() == {"traits": sorted([name, "HW_CPU_X86_AVX2"]), "resource_provider_generation": gen + 1}
    assert_fault(await pl.put(f"/resource_providers/{rp}/traits",
                              {"traits": [], "resource_provider_generation": gen}), 409, CONCURRENT)
    assert_fault(await pl.put(f"/resource_providers/{rp}/traits",
                              {"traits": ["CUSTOM_NO_SUCH_TRAIT_X"], "resource_provider_generation": gen + 1}), 400)
    assert name in (await pl.get("/traits", params={"associated": "true"}, expect=200)).json()["traits"]
    assert_fault(await pl.delete(f"/traits/{name}"), 409)
    await pl.delete(f"/resource_providers/{rp}/traits", expect=204)
    assert (await pl.get(f"/resource_providers/{rp}/traits", expect=200)).json()["traits"] == []
    await pl.delete(f"/traits/{name}", expect=204)
    assert_fault(await pl.get(f"/traits/{name}"), 404)
    assert_fault(await pl.at("1.5").get("/traits"), 404)


# ---------------------------------------------------------------------- aggregates


async def test_aggregates_and_their_generation(pl: Placement) -> None:
    rp = (await pl.provider())["uuid"]
    path = f"/resource_providers/{rp}/aggregates"
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    # 1.1 - 1.18: a bare list, no generation
    old = await pl.at("1.1").put(path, [a], expect=200)
    assert old.json() == {"aggregates": [a]}
    assert await pl.generation(rp) == 0
    assert_fault(await pl.at("1.0").get(path), 404)
    # 1.19+: generation in and out, checked
    body = (await pl.get(path, expect=200)).json()
    assert body == {"aggregates": [a], "resource_provider_generation": 0}
    new = (await pl.put(path, {"aggregates": [a, b], "resource_provider_generation": 0}, expect=200)).json()
    assert sorted(new["aggregates"]) == sorted([a, b]) and new["resource_provider_generation"] == 1
    assert_fault(await pl.put(path, {"aggregates": [], "resource_provider_generation": 0}), 409, CONCURRENT)
    assert_fault(await pl.put(path, {"aggregates": ["nope"], "resource_provider_generation": 1}), 400)
    assert_fault(await pl.put(path, {"aggregates": [a, a], "resource_provider_generation": 1}), 400)
    assert_fault(await pl.at("1.18").put(path, {"aggregates": [a], "resource_provider_generation": 1}), 400)
    # other spellings of a UUID are kept in the dashed form
    c = uuid.uuid4()
    got = (await pl.put(path, {"aggregates": ["{%s}" % str(c).upper()], "resource_provider_generation": 1},
                        expect=200)).json()
    assert got["aggregates"] == [str(c)]


# ---------------------------------------------------------------------- allocations and usages


async def test_allocations_consumer_generations_and_usages(pl: Placement) -> None:
    rp = (await pl.provider(VCPU=8, MEMORY_MB=4096))["uuid"]
    consumer = str(uuid.uuid4())
    project, user = uniq("project"), uniq("user")
    # a new consumer must say generation null
    assert_fault(await pl.allocate(consumer, {rp: {"VCPU": 2}}, expect=None, generation=0), 409, CONCURRENT)
    await pl.allocate(consumer, {rp: {"VCPU": 2, "MEMORY_MB": 512}}, project=project, user=user)
    got = (await pl.get(f"/allocations/{consumer}", expect=200)).json()
    assert got["allocations"][rp]["resources"] == {"VCPU": 2, "MEMORY_MB": 512}
    assert got["consumer_generation"] == 1 and got["project_id"] == project and got["user_id"] == user
    assert got["consumer_type"] == "INSTANCE"
    assert got["allocations"][rp]["generation"] == await pl.generation(rp)
    # a stale consumer generation is a 409; the right one replaces
    assert_fault(await pl.allocate(consumer, {rp: {"VCPU": 1}}, expect=None, generation=None), 409, CONCURRENT)
    await pl.allocate(consumer, {rp: {"VCPU": 3}}, generation=1, project=project, user=user)
    usages = (await pl.get(f"/resource_providers/{rp}/usages", expect=200)).json()["usages"]
    assert usages == {"VCPU": 3, "MEMORY_MB": 0}
    total = (await pl.get("/usages", params={"project_id": project}, expect=200)).json()["usages"]
    assert total == {"INSTANCE": {"VCPU": 3, "consumer_count": 1}}
    total = (await pl.at("1.37").get("/usages", params={"project_id": project, "user_id": user}, expect=200)).json()
    assert total["usages"] == {"VCPU": 3}
    assert (await pl.get("/usages", params={"project_id": project, "consumer_type": "MIGRATION"},
                         expect=200)).json()["usages"] == {}
    assert_fault(await pl.get("/usages"), 400)
    assert_fault(await pl.at("1.8").get("/usages", params={"project_id": project}), 404)
    by_rp = (await pl.get(f"/resource_providers/{rp}/allocations", expect=200)).json()
    assert by_rp["allocations"][consumer] == {"resources": {"VCPU": 3}, "consumer_generation": 2}
    # an empty allocations object with the generation removes them safely (1.28)
    await pl.put(f"/allocations/{consumer}", {"allocations": {}, "project_id": project, "user_id": user,
                                              "consumer_generation": 2, "consumer_type": "INSTANCE"}, expect=204)
    assert (await pl.get(f"/allocations/{consumer}", expect=200)).json() == {"allocations": {}}
    assert_fault(await pl.delete(f"/allocations/{consumer}"), 404)


async def test_allocation_capacity_and_constraints(pl: Placement) -> None:
    rp = (await pl.provider(VCPU={"total": 4, "max_unit": 2, "step_size": 1}, DISK_GB={"total": 100, "step_size": 10}))
    rp = rp["uuid"]
    c1, c2 = str(uuid.uuid4()), str(uuid.uuid4())
    await pl.allocate(c1, {rp: {"VCPU": 2}})
    await pl.allocate(c2, {rp: {"VCPU": 2}})
    assert_fault(await pl.allocate(str(uuid.uuid4()), {rp: {"VCPU": 1}}, expect=None), 409)  # full
    assert_fault(await pl.allocate(str(uuid.uuid4()), {rp: {"DISK_GB": 3}}, expect=None), 409)  # step
    assert_fault(await pl.allocate(str(uuid.uuid4()), {rp: {"MEMORY_MB": 1}}, expect=None), 409)  # no inventory
    assert_fault(await pl.allocate(str(uuid.uuid4()), {str(uuid.uuid4()): {"VCPU": 1}}, expect=None), 400)
    assert_fault(await pl.allocate(str(uuid.uuid4()), {rp: {"VCPU": 0}}, expect=None), 400)
    # nothing half-written: the failed claims left no consumer behind
    assert set((await pl.get(f"/resource_providers/{rp}/allocations", expect=200)).json()["allocations"]) == {c1, c2}
    await pl.delete(f"/allocations/{c1}", expect=204)
    await pl.allocate(str(uuid.uuid4()), {rp: {"VCPU": 1}})


async def test_allocation_formats_by_microversion(pl: Placement) -> None:
    rp = (await pl.provider(VCPU=8))["uuid"]
    consumer = str(uuid.uuid4())
    # 1.0: a list, no project or user (the incomplete consumer)
    await pl.at("1.0").put(f"/allocations/{consumer}", {"allocations": [
        {"resource_provider": {"uuid": rp}, "resources": {"VCPU": 1}}]}, expect=204)
    old = (await pl.at("1.11").get(f"/allocations/{consumer}", expect=200)).json()
    assert old == {"allocations": {rp: {"generation": await pl.generation(rp), "resources": {"VCPU": 1}}}}
    # 1.8 needs project and user
    assert_fault(await pl.at("1.8").put(f"/allocations/{consumer}", {"allocations": [
        {"resource_provider": {"uuid": rp}, "resources": {"VCPU": 1}}]}), 400)
    # 1.12: the dict form, project and user shown; no consumer_generation before 1.28
    await pl.at("1.12").put(f"/allocations/{consumer}", {"allocations": {rp: {"resources": {"VCPU": 2}}},
                                                         "project_id": "p", "user_id": "u"}, expect=204)
    got = (await pl.at("1.12").get(f"/allocations/{consumer}", expect=200)).json()
    assert got["project_id"] == "p" and "consumer_generation" not in got
    # 1.28 needs consumer_generation, 1.38 needs consumer_type
    body = {"allocations": {rp: {"resources": {"VCPU": 2}}}, "project_id": "p", "user_id": "u"}
    assert_fault(await pl.at("1.28").put(f"/allocations/{consumer}", body), 400)
    assert_fault(await pl.at("1.38").put(f"/allocations/{consumer}", {**body, "consumer_generation": 2}), 400)
    await pl.at("1.37").put(f"/allocations/{consumer}", {**body, "consumer_generation": 2}, expect=204)
    assert (await pl.get(f"/allocations/{consumer}", expect=200)).json()["consumer_type"] == "unknown"
    assert_fault(await pl.at("1.38").put(f"/allocations/{consumer}",
                                         {**body, "consumer_generation": 3, "consumer_type": "lower"}), 400)
    # mappings accepted (and ignored) from 1.34 only
    with_map = {**body, "consumer_generation": 3, "mappings": {"": [rp]}}
    assert_fault(await pl.at("1.33").put(f"/allocations/{consumer}", with_map), 400)
    await pl.at("1.34").put(f"/allocations/{consumer}", with_map, expect=204)
    assert_fault(await pl.put("/allocations/not-a-uuid", body), 400)


async def test_post_allocations_for_many_consumers(pl: Placement) -> None:
    rp = (await pl.provider(VCPU=4))["uuid"]
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    await pl.allocate(a, {rp: {"VCPU": 2}})

    def entry(amount: int | None, generation: int | None) -> dict:
        return {"allocations": {rp: {"resources": {"VCPU": amount}}} if amount else {}, "project_id": "p",
                "user_id": "u", "consumer_generation": generation, "consumer_type": "MIGRATION"}

    # move a's allocation to b in one request
    await pl.post("/allocations", {a: entry(None, 1), b: entry(3, None)}, expect=204)
    held = (await pl.get(f"/resource_providers/{rp}/allocations", expect=200)).json()["allocations"]
    assert set(held) == {b} and held[b]["resources"] == {"VCPU": 3}
    # all or nothing: one consumer over capacity, neither written
    c = str(uuid.uuid4())
    assert_fault(await pl.post("/allocations", {b: entry(1, 1), c: entry(4, None)}), 409)
    held = (await pl.get(f"/resource_providers/{rp}/allocations", expect=200)).json()["allocations"]
    assert set(held) == {b} and held[b]["resources"] == {"VCPU": 3}
    assert_fault(await pl.at("1.12").post("/allocations", {b: entry(1, 1)}), 404)
    assert_fault(await pl.post("/allocations", {}), 400)
    assert_fault(await pl.post("/allocations", {"not-a-uuid": entry(1, None)}), 400)


# ---------------------------------------------------------------------- reshaper


async def test_reshaper_moves_inventory_and_allocations_to_a_child(pl: Placement, cloud, client) -> None:
    root = (await pl.provider(VGPU=4, VCPU=8))["uuid"]
    consumer = str(uuid.uuid4())
    await pl.allocate(consumer, {root: {"VGPU": 1, "VCPU": 2}})
    child = (await pl.provider(parent=root))["uuid"]
    body = {
        "inventories": {
            root: {"resource_provider_generation": await pl.generation(root),
                   "inventories": {"VCPU": {"total": 8}}},
            child: {"resource_provider_generation": await pl.generation(child),
                    "inventories": {"VGPU": {"total": 4}}}},
        "allocations": {consumer: {"allocations": {root: {"resources": {"VCPU": 2}},
                                                   child: {"resources": {"VGPU": 1}}},
                                   "project_id": "p", "user_id": "u", "consumer_generation": 1,
                                   "consumer_type": "INSTANCE"}}}
    # the reshaper is for services: the admin gets a 403
    assert_fault(await pl.post("/reshaper", body), 403)
    service = await service_token(client, pl)
    assert_fault(await service.at("1.29").post("/reshaper", body), 404)
    await service.post("/reshaper", body, expect=204)
    got = (await pl.get(f"/allocations/{consumer}", expect=200)).json()["allocations"]
    assert got[root]["resources"] == {"VCPU": 2} and got[child]["resources"] == {"VGPU": 1}
    assert (await pl.get(f"/resource_providers/{child}/usages", expect=200)).json()["usages"] == {"VGPU": 1}
    assert set((await pl.get(f"/resource_providers/{root}/inventories", expect=200)).json()["inventories"]) == {"VCPU"}
    # a stale generation changes nothing
    stale = {**body, "inventories": {root: {"resource_provider_generation": 0, "inventories": {}}}}
    assert_fault(await service.post("/reshaper", stale), 409, CONCURRENT)


async def service_token(client: httpx.AsyncClient, pl: Placement) -> Placement:
    """A user holding the ``service`` role on a project, as other services' users do."""
    from tests.api.conftest import Keystone

    ks = Keystone(client, pl.token)
    r = await ks.get("/roles", params={"name": "service"}, expect=200)
    if not r.json()["roles"]:
        await ks.post("/roles", {"role": {"name": "service"}}, expect=201)
    _, _, token = await ks.member(role="service")
    return pl.as_(token)


# ---------------------------------------------------------------------- bad input


async def test_bad_bodies_are_400_in_placement_format(pl: Placement) -> None:
    path = "/resource_providers"
    assert_fault(await pl.post(path, content=b"{not json", headers={"content-type": "application/json"}), 400)
    assert_fault(await pl.post(path, content=b"", headers={"content-type": "application/json"}), 400)
    assert_fault(await pl.post(path, content=b'{"name": "x"}', headers={"content-type": "text/plain"}), 415)
    assert_fault(await pl.post(path, {"name": 5}), 400)
    assert_fault(await pl.post(path, {"name": "x" * 201}), 400)
    assert_fault(await pl.post(path, {"name": "x", "extra": 1}), 400)
    assert_fault(await pl.post(path, {"name": "x", "uuid": "nope"}), 400)
    assert_fault(await pl.at("1.13").post(path, {"name": "x", "parent_provider_uuid": None}), 400)
    assert_fault(await pl.post(path, ["name"]), 400)
    assert_fault(await pl.post(path, {"name": "nul\u0000"}), 400)
    assert_fault(await pl.get("/resource_providers", headers={"accept": "text/html"}), 406)


async def test_405_names_the_allowed_methods(pl: Placement) -> None:
    r = await pl.delete("/resource_providers")
    assert_fault(r, 405)
    assert set(r.headers["allow"].split(", ")) == {"GET", "POST"}
    r = await pl.request("PATCH", f"/resource_providers/{uuid.uuid4()}/inventories")
    assert_fault(r, 405)
    assert set(r.headers["allow"].split(", ")) == {"GET", "POST", "PUT", "DELETE"}
    # a body without a content-type is a 400, as in Placement
    assert_fault(await pl.post("/resource_providers", content=b'{"name": "x"}'), 400)

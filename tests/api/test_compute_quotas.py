"""Quota sets, quota class sets and /limits through the API: Nova's defaults, identity's unified
limits (registered and per project) read as Nova's UnifiedLimitsDriver reads them, os-quota-sets
overrides, fields per microversion, usage, policy and Nova's faults."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.api.compute_helpers import ComputeWorld, assert_fault, compute_world


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[ComputeWorld]:
    async with compute_world(cloud) as world:
        yield world


async def test_defaults_fields_per_microversion_and_policy(w: ComputeWorld) -> None:
    a = w.projects["a"]
    shown = (await w["reader"].get(f"/os-quota-sets/{a}", expect=200)).json()["quota_set"]
    assert shown == {"id": a, "cores": 20, "instances": 10, "key_pairs": 100, "metadata_items": 128, "ram": 51200,
                     "server_groups": 10, "server_group_members": 10}
    old = (await w["reader"].at("2.1").get(f"/os-quota-sets/{a}")).json()["quota_set"]
    assert old["injected_files"] == 5 and old["floating_ips"] == -1 and old["security_group_rules"] == -1
    mid = (await w["reader"].at("2.36").get(f"/os-quota-sets/{a}")).json()["quota_set"]
    assert "injected_files" in mid and "floating_ips" not in mid
    assert (await w["other"].get(f"/os-quota-sets/{a}/defaults", expect=200)).json()["quota_set"]["cores"] == 20
    assert_fault(await w["other"].get(f"/os-quota-sets/{a}"), 403)
    assert_fault(await w["member"].put(f"/os-quota-sets/{a}", {"quota_set": {"cores": 1}}), 403)
    assert_fault(await w.admin.get("/os-quota-sets/no-such-project"), 400, contains="is not a valid project")
    assert_fault(await w["reader"].get(f"/os-quota-sets/{a}", params={"bogus": 1}), 400)


async def test_identity_unified_limits_then_quota_sets(w: ComputeWorld) -> None:
    admin, b = w.admin, w.projects["b"]
    ks = w.ks
    services = (await ks.get("/services", params={"type": "compute"}, expect=200)).json()["services"]
    service_id = services[0]["id"]
    registered = (await ks.post("/registered_limits", {"registered_limits": [
        {"service_id": service_id, "resource_name": "servers", "default_limit": 25},
        {"service_id": service_id, "resource_name": "class:MEMORY_MB", "default_limit": 4096}]},
        expect=201)).json()["registered_limits"]
    own = (await ks.post("/limits", {"limits": [{"service_id": service_id, "project_id": b, "resource_name": "servers",
                                                "resource_limit": 3}]}, expect=201)).json()["limits"]
    try:
        await _unified_limits_then_quota_sets(w, b)
    finally:  # the cloud is shared by the session: other modules boot servers under the defaults
        for limit in own:
            await ks.delete(f"/limits/{limit['id']}", expect=204)
        for limit in registered:
            await ks.delete(f"/registered_limits/{limit['id']}", expect=204)
    assert (await admin.get(f"/os-quota-sets/{b}")).json()["quota_set"]["instances"] == 10


async def _unified_limits_then_quota_sets(w: ComputeWorld, b: str) -> None:
    admin = w.admin
    assert (await admin.get(f"/os-quota-sets/{b}")).json()["quota_set"]["instances"] == 3
    assert (await admin.get(f"/os-quota-sets/{w.projects['a']}")).json()["quota_set"]["instances"] == 25
    defaults = (await admin.get(f"/os-quota-sets/{b}/defaults")).json()["quota_set"]
    assert (defaults["instances"], defaults["ram"], defaults["cores"]) == (25, 4096, 20)
    limits = (await w["other"].get("/limits", expect=200)).json()["limits"]
    assert limits["rate"] == []
    assert (limits["absolute"]["maxTotalInstances"], limits["absolute"]["maxTotalRAMSize"]) == (3, 4096)
    # os-quota-sets sets the project's own value over identity's, and deleting it goes back
    updated = (await admin.put(f"/os-quota-sets/{b}", {"quota_set": {"instances": 7, "cores": "-1"}},
                               expect=200)).json()["quota_set"]
    assert "id" not in updated and (updated["instances"], updated["cores"]) == (7, -1)
    detail = (await w["other"].get(f"/os-quota-sets/{b}/detail", expect=200)).json()["quota_set"]
    assert detail["instances"] == {"limit": 7, "in_use": 0, "reserved": 0}
    assert (await admin.delete(f"/os-quota-sets/{b}")).status_code == 202
    assert (await admin.get(f"/os-quota-sets/{b}")).json()["quota_set"]["instances"] == 3
    for body in ({"quota_set": {"cores": -2}}, {"quota_set": {"cores": "x"}}, {"quota_set": {"bogus": 1}},
                 {"quota_set": {"injected_files": 1}}, {"cores": 1}):
        assert_fault(await admin.put(f"/os-quota-sets/{b}", body), 400)
    assert_fault(await admin.put(f"/os-quota-sets/{b}", {"quota_set": {"cores": 1}}, params={"user_id": "u"}), 400)


async def test_quota_class_sets_and_limits_usage(w: ComputeWorld) -> None:
    admin, a = w.admin, w.projects["a"]
    shown = (await admin.get("/os-quota-class-sets/default", expect=200)).json()["quota_class_set"]
    assert shown["id"] == "default" and shown["metadata_items"] == 128
    assert "server_groups" not in (await admin.at("2.49").get("/os-quota-class-sets/default")).json()[
        "quota_class_set"]
    assert_fault(await w["member"].get("/os-quota-class-sets/default"), 403)
    updated = (await admin.put("/os-quota-class-sets/default", {"quota_class_set": {"metadata_items": 64}},
                               expect=200)).json()["quota_class_set"]
    assert updated["metadata_items"] == 64 and "id" not in updated
    assert (await w["member"].get(f"/os-quota-sets/{a}")).json()["quota_set"]["metadata_items"] == 64
    await admin.put("/os-quota-class-sets/default", {"quota_class_set": {"metadata_items": 128}}, expect=200)
    assert_fault(await admin.put("/os-quota-class-sets/default", {"quota_class_set": {"force": True}}), 400)
    await w["member"].post("/os-server-groups", {"server_group": {"name": "g", "policy": "affinity"}}, expect=200)
    absolute = (await w["member"].get("/limits", expect=200)).json()["limits"]["absolute"]
    assert absolute["totalServerGroupsUsed"] == 1 and absolute["maxTotalInstances"] >= 10
    assert set(absolute) == {"maxTotalRAMSize", "maxTotalInstances", "maxTotalCores", "maxTotalKeypairs",
                             "maxServerMeta", "maxServerGroups", "maxServerGroupMembers", "totalRAMUsed",
                             "totalCoresUsed", "totalInstancesUsed", "totalServerGroupsUsed"}
    old = (await w["member"].at("2.1").get("/limits")).json()["limits"]["absolute"]
    assert {"maxImageMeta", "maxPersonality", "maxSecurityGroups", "totalFloatingIpsUsed"} <= set(old)
    assert_fault(await w["member"].get("/limits", params={"tenant_id": w.projects["b"]}), 403)
    other = (await admin.get("/limits", params={"tenant_id": a})).json()["limits"]["absolute"]
    assert other["totalServerGroupsUsed"] == 1

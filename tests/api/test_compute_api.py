"""The Nova frame through the in-process app: version documents, microversion negotiation,
Nova's fault bodies, authentication and policy."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.api.compute_helpers import ComputeWorld, assert_fault, compute_world


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[ComputeWorld]:
    async with compute_world(cloud) as world:
        yield world


async def test_version_documents_are_public(client) -> None:
    for path in ("/compute", "/compute/"):
        r = await client.get(path)
        assert r.status_code == 200, r.text
        docs = {v["id"]: v for v in r.json()["versions"]}
        assert set(docs) == {"v2.0", "v2.1"}
        assert docs["v2.1"]["status"] == "CURRENT" and docs["v2.1"]["min_version"] == "2.1"
        assert docs["v2.1"]["version"] == "2.104"
        assert docs["v2.0"]["status"] == "DEPRECATED" and docs["v2.0"]["version"] == ""
        assert docs["v2.1"]["links"] == [{"rel": "self", "href": "http://mcloud.test/compute/v2.1/"}]
        assert docs["v2.0"]["links"] == [{"rel": "self", "href": "http://mcloud.test/compute/v2/"}]
    for path in ("/compute/v2.1", "/compute/v2.1/"):
        v = (await client.get(path)).json()["version"]
        assert v["id"] == "v2.1" and v["version"] == "2.104"
        assert v["links"][0] == {"rel": "self", "href": "http://mcloud.test/compute/v2.1/"}
        assert v["links"][1]["rel"] == "describedby"
        assert v["media-types"][0]["type"] == "application/vnd.openstack.compute+json;version=2.1"
    v2 = (await client.get("/compute/v2/")).json()["version"]
    assert v2["id"] == "v2.0" and v2["status"] == "DEPRECATED"


async def test_faults(w: ComputeWorld, client) -> None:
    member = w["member"]
    # no token: keystonemiddleware's 401 (with the identity endpoint to ask)
    r = await client.get("/compute/v2.1/servers")
    assert r.status_code == 401 and r.json()["error"]["code"] == 401
    assert r.headers["www-authenticate"].startswith("Keystone uri=")
    r = await client.get("/compute/v2.1/servers", headers={"X-Auth-Token": "not-a-token"})
    assert r.status_code == 401
    assert_fault(await member.get("/no-such-thing"), 404, "itemNotFound")
    # no redirects: a trailing slash (an empty id) is Nova's 404
    for method, path in (("GET", "/servers/"), ("GET", "/os-simple-tenant-usage/"), ("DELETE", "/images/")):
        assert_fault(await member.at("2.1").request(method, path), 404, "itemNotFound")
    assert_fault(await member.get("/servers/%00"), 400, "badRequest")
    assert_fault(await member.request("PATCH", "/servers"), 405, "badMethod")
    r = await member.get("/servers")
    assert r.headers["x-openstack-request-id"].startswith("req-")
async def test_microversions(w: ComputeWorld) -> None:
    member = w["member"]
    r = await member.at(None).get("/servers", expect=200)
    assert r.headers["openstack-api-version"] == "compute 2.1"
    assert r.headers["x-openstack-nova-api-version"] == "2.1"
    assert "OpenStack-API-Version" in r.headers["vary"]
    r = await member.at("latest").get("/servers", expect=200)
    assert r.headers["openstack-api-version"] == "compute 2.104"
    r = await member.at(None).get("/servers", headers={"X-OpenStack-Nova-API-Version": "2.53"}, expect=200)
    assert r.headers["openstack-api-version"] == "compute 2.53"
    message = assert_fault(await member.at("2.105").get("/servers"), 406, "computeFault")
    assert message == "Version 2.105 is not supported by the API. Minimum is 2.1 and maximum is 2.104."
    assert_fault(await member.at("2.0").get("/servers"), 406)
    assert_fault(await member.at("two").get("/servers"), 400)


async def test_policy_is_novas(w: ComputeWorld) -> None:
    # a reader may list but not create; the message names the rule as Nova's does
    await w["reader"].get("/servers", expect=200)
    message = assert_fault(await w["reader"].post("/servers", {"server": {
        "name": "x", "flavorRef": "1", "imageRef": w.image_id, "networks": "none"}}), 403, "forbidden")
    assert message == "Policy doesn't allow os_compute_api:servers:create to be performed."
    # all_tenants is the admin's
    message = assert_fault(await w["member"].get("/servers/detail", params={"all_tenants": "1"}), 403)
    assert "os_compute_api:servers:detail:get_all_tenants" in message
    await w.admin.get("/servers/detail", params={"all_tenants": "1"}, expect=200)

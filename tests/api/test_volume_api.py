"""Cinder v3's frame: version documents, extensions, microversion negotiation, fault bodies and
both URL forms (with and without the project id)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.api.volume_helpers import V3, VolumeWorld, assert_fault, volume_world

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[VolumeWorld]:
    async with volume_world(cloud) as world:
        yield world


async def test_version_documents(w: VolumeWorld) -> None:
    for path in ("/volume", "/volume/"):
        r = await w.ks.client.get(path)
        assert r.status_code == 300, r.text
        (v,) = r.json()["versions"]
        assert v["id"] == "v3.0" and v["status"] == "CURRENT"
        assert v["min_version"] == "3.0" and v["version"] == "3.71"
        assert {"rel": "self", "href": "http://mcloud.test/volume/v3/"} in v["links"]
        assert v["media-types"][0]["type"] == "application/vnd.openstack.volume+json;version=3"
    for path in (V3, V3 + "/"):
        r = await w.ks.client.get(path)
        assert r.status_code == 200 and r.json()["versions"][0]["id"] == "v3.0"


async def test_microversions(w: VolumeWorld) -> None:
    r = await w["member"].get("/extensions", expect=200)
    assert r.headers["OpenStack-API-Version"] == "volume 3.0"
    r = await w["member"].at("latest").get("/extensions", expect=200)
    assert r.headers["OpenStack-API-Version"] == "volume 3.71"
    r = await w["member"].at("3.27").get("/extensions", expect=200)
    assert r.headers["OpenStack-API-Version"] == "volume 3.27"
    assert_fault(await w["member"].at("3.72").get("/extensions"), 406, "computeFault", "maximum is 3.71")
    assert_fault(await w["member"].at("3.x").get("/extensions"), 400, "badRequest")


async def test_extensions_name_hosts(w: VolumeWorld) -> None:
    exts = (await w["reader"].get("/extensions", expect=200)).json()["extensions"]
    assert "Hosts" in [e["name"] for e in exts]  # what Tempest's test_list_extensions looks for
    assert all({"name", "alias", "updated", "description", "links"} <= set(e) for e in exts)


async def test_faults(w: VolumeWorld) -> None:
    r = await w.ks.client.get(V3 + "/extensions")
    assert r.status_code == 401 and "Keystone uri=" in r.headers["WWW-Authenticate"]
    assert_fault(await w["member"].get("/no-such-collection"), 404, "itemNotFound")


async def test_project_id_in_url(w: VolumeWorld) -> None:
    mine = w["member"].with_project_in_url()
    assert (await mine.get("/extensions", expect=200)).json()["extensions"]
    # another project's id in the URL: Cinder's 400
    r = await w["member"].get(f"/{w.projects['b']}/extensions")
    assert_fault(r, 400, "badRequest", "Malformed request url")

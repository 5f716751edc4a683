"""Nova's deprecated volume proxies through the in-process app (fake hypervisor, fake volume
backend): /os-volumes and /os-snapshots up to 2.35 (a 404 from 2.36), the volume service's
volumes and snapshots in Nova's camelCase views, Nova's status codes (create 200, delete 202,
over quota 403), offset/limit paging, the first attachment of an attached volume, isolation
between projects and the readers' rights."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from tests.api.compute_helpers import ComputeWorld, Nova, assert_fault, boot_server, compute_world, uniq
from tests.api.volume_helpers import Cinder, wait_volume


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[ComputeWorld]:
    async with compute_world(cloud) as world:
        yield world


def nova(w: ComputeWorld, who: str = "member") -> Nova:
    return w[who].at("2.35")


def cinder(w: ComputeWorld, who: str = "member") -> Cinder:
    n = w[who]
    return Cinder(n.client, n.token, n.project_id, n.user_id, "3.27")


async def proxy_volume(w: ComputeWorld, who: str = "member", **fields: Any) -> dict[str, Any]:
    body = {"volume": {"size": 1, "display_name": uniq("pvol"), **fields}}
    r = await nova(w, who).post("/os-volumes", body, expect=200)
    vol = r.json()["volume"]
    assert r.headers["location"].endswith(f"/v2.1/os-volumes/{vol['id']}")
    await wait_volume(cinder(w, who), vol["id"], "available")
    return vol


async def test_volume_create_show_list_delete(w: ComputeWorld) -> None:
    name = uniq("pvol")
    vol = await proxy_volume(w, display_name=name, display_description="the proxy's", metadata={"Type": "work"},
                             size="2")
    vid = vol["id"]
    assert vol["displayName"] == name and vol["size"] == 2 and vol["status"] == "creating"
    assert vol["attachments"] == [{}] and vol["snapshotId"] is None and vol["volumeType"]
    # the volume service made it: Cinder shows the same volume
    real = await wait_volume(cinder(w), vid, "available")
    assert (real["name"], real["description"], real["metadata"]) == (name, "the proxy's", {"Type": "work"})
    shown = (await nova(w, "reader").get(f"/os-volumes/{vid}", expect=200)).json()["volume"]
    assert shown == {"id": vid, "status": "available", "size": 2, "availabilityZone": real["availability_zone"],
                     "createdAt": real["created_at"], "attachments": [{}], "displayName": name,
                     "displayDescription": "the proxy's", "volumeType": real["volume_type"], "snapshotId": None,
                     "metadata": {"Type": "work"}}
    # list and detail show the same body (Nova's summary is its detail)
    for path in ("/os-volumes", "/os-volumes/detail"):
        listed = (await nova(w, "reader").get(path, expect=200)).json()["volumes"]
        assert shown in listed
    # from 2.36 the proxy is gone
    assert_fault(await w["member"].at("2.36").get(f"/os-volumes/{vid}"), 404)
    assert_fault(await w["member"].at("2.36").post("/os-volumes", {"volume": {"size": 1}}), 404)
    # another project does not find it, the reader may not delete it
    assert_fault(await nova(w, "other").get(f"/os-volumes/{vid}"), 404, contains=vid)
    assert_fault(await nova(w, "other").delete(f"/os-volumes/{vid}"), 404)
    assert vid not in {v["id"] for v in (await nova(w, "other").get("/os-volumes", expect=200)).json()["volumes"]}
    assert_fault(await nova(w, "reader").delete(f"/os-volumes/{vid}"), 403)
    await nova(w).delete(f"/os-volumes/{vid}", expect=202)
    await wait_volume(cinder(w), vid, "deleted")
    assert_fault(await nova(w).get(f"/os-volumes/{vid}"), 404)


async def test_volume_list_offset_and_limit(w: ComputeWorld) -> None:
    made = [await proxy_volume(w, "other") for _ in range(3)]
    listed = (await nova(w, "other").get("/os-volumes", expect=200)).json()["volumes"]
    ids = [v["id"] for v in listed]
    assert {v["id"] for v in made} <= set(ids)
    assert ids[:3] == [v["id"] for v in reversed(made)]  # Cinder's order: newest first
    for path in ("/os-volumes", "/os-volumes/detail"):
        two = (await nova(w, "other").get(path + "?limit=2", expect=200)).json()["volumes"]
        assert [v["id"] for v in two] == ids[:2]
        one = (await nova(w, "other").get(path + "?offset=1&limit=1", expect=200)).json()["volumes"]
        assert [v["id"] for v in one] == ids[1:2]
        assert_fault(await nova(w, "other").get(path + "?limit=-1"), 400)
        assert_fault(await nova(w, "other").get(path + "?offset=x"), 400)
    for vol in made:
        await nova(w, "other").delete(f"/os-volumes/{vol['id']}", expect=202)


async def test_volume_bad_input_and_quota(w: ComputeWorld) -> None:
    m = nova(w)
    before = {v["id"] for v in (await m.get("/os-volumes", expect=200)).json()["volumes"]}
    for size in ("#$%", "", "0", 0):
        assert_fault(await m.post("/os-volumes", {"volume": {"size": size, "display_name": "x"}}), 400)
    assert_fault(await m.post("/os-volumes", {"volume": {"display_name": "no size"}}), 400)
    assert_fault(await m.post("/os-volumes", {"volume": {"size": 1, "name": "cinder's key"}}), 400)
    assert_fault(await m.post("/os-volumes", {"volume": {"size": 1, "availability_zone": "nowhere"}}), 400)
    assert_fault(await m.post("/os-volumes", {"volume": {"size": 1, "snapshot_id": "00000000-0000-4000-8000-"
                                                                                  "000000000000"}}), 404)
    assert_fault(await nova(w, "reader").post("/os-volumes", {"volume": {"size": 1}}), 403)
    assert_fault(await m.get("/os-volumes/"), 404)
    assert_fault(await m.delete("/os-volumes/"), 404)
    assert_fault(await m.delete("/os-volumes/not-a-volume"), 404)
    # over the volume quota: Nova's 403 (Cinder's 413), nothing made
    admin = Cinder(w.admin.client, w.admin.token, w.admin.project_id, w.admin.user_id, "3.27")
    await admin.put(f"/os-quota-sets/{w.projects['a']}", {"quota_set": {"gigabytes": 1}}, expect=200)
    try:
        assert_fault(await m.post("/os-volumes", {"volume": {"size": 2}}), 403, contains="gigabytes")
    finally:
        await admin.put(f"/os-quota-sets/{w.projects['a']}", {"quota_set": {"gigabytes": 1000}}, expect=200)
    after = {v["id"] for v in (await m.get("/os-volumes", expect=200)).json()["volumes"]}
    assert after == before


async def test_snapshots_and_attached_volume(w: ComputeWorld) -> None:
    vol = await proxy_volume(w)
    vid = vol["id"]
    name = uniq("psnap")
    r = await nova(w).post("/os-snapshots", {"snapshot": {"volume_id": vid, "display_name": name,
                                                          "display_description": "d"}}, expect=200)
    snap = r.json()["snapshot"]
    assert set(snap) == {"id", "volumeId", "status", "size", "createdAt", "displayName", "displayDescription"}
    assert (snap["volumeId"], snap["size"], snap["displayName"], snap["displayDescription"]) == (vid, 1, name, "d")
    await wait_volume(cinder(w), snap["id"], "available", collection="snapshots")
    shown = (await nova(w, "reader").get(f"/os-snapshots/{snap['id']}", expect=200)).json()["snapshot"]
    assert shown == {**snap, "status": "available"}
    for path in ("/os-snapshots", "/os-snapshots/detail"):
        assert shown in (await nova(w, "reader").get(path, expect=200)).json()["snapshots"]
    assert_fault(await nova(w, "other").get(f"/os-snapshots/{snap['id']}"), 404)
    assert_fault(await w["member"].at("2.36").get("/os-snapshots"), 404)
    # a volume made from the snapshot through the proxy
    clone = (await nova(w).post("/os-volumes", {"volume": {"size": 1, "snapshot_id": snap["id"]}},
                                expect=200)).json()["volume"]
    assert clone["snapshotId"] == snap["id"]
    await wait_volume(cinder(w), clone["id"], "available")
    await nova(w).delete(f"/os-volumes/{clone['id']}", expect=202)
    assert_fault(await nova(w, "reader").delete(f"/os-snapshots/{snap['id']}"), 403)
    await nova(w).delete(f"/os-snapshots/{snap['id']}", expect=202)
    await wait_volume(cinder(w), snap["id"], "deleted", collection="snapshots")
    assert_fault(await nova(w).delete(f"/os-snapshots/{snap['id']}"), 404)
    # attached: the view names the server and the device; a snapshot needs force
    sid = await boot_server(w)
    await w["member"].post(f"/servers/{sid}/os-volume_attachments", {"volumeAttachment": {"volumeId": vid}},
                           expect=200)
    await wait_volume(cinder(w), vid, "in-use")
    shown = (await nova(w).get(f"/os-volumes/{vid}", expect=200)).json()["volume"]
    assert shown["status"] == "in-use"
    assert shown["attachments"] == [{"id": vid, "volumeId": vid, "serverId": sid, "device": "/dev/vdb"}]
    assert_fault(await nova(w).delete(f"/os-volumes/{vid}"), 400)
    assert_fault(await nova(w).post("/os-snapshots", {"snapshot": {"volume_id": vid}}), 400, contains="in-use")
    forced = (await nova(w).post("/os-snapshots", {"snapshot": {"volume_id": vid, "force": "true"}},
                                 expect=200)).json()["snapshot"]
    await wait_volume(cinder(w), forced["id"], "available", collection="snapshots")
    await nova(w).delete(f"/os-snapshots/{forced['id']}", expect=202)
    await wait_volume(cinder(w), forced["id"], "deleted", collection="snapshots")
    await w["member"].delete(f"/servers/{sid}/os-volume_attachments/{vid}", expect=202)
    await wait_volume(cinder(w), vid, "available")
    await w["member"].delete(f"/servers/{sid}", expect=204)
    await nova(w).delete(f"/os-volumes/{vid}", expect=202)

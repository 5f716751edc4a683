"""Snapshots through the Cinder API: create (force for in-use), list filters, show, update,
metadata, delete, volumes from snapshots, and what a volume with snapshots refuses."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.api.volume_helpers import VolumeWorld, assert_fault, uniq, volume_world, wait_volume

pytestmark = pytest.mark.asyncio(loop_scope="session")

MISSING = "9b7a1f9e-0000-4000-8000-000000000001"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[VolumeWorld]:
    async with volume_world(cloud) as world:
        yield world


async def snapshot(w: VolumeWorld, volume_id: str, who: str = "member", **fields: object) -> dict:
    body = {"snapshot": {"volume_id": volume_id, "name": uniq("snap"), **fields}}
    snap = (await w[who].post("/snapshots", body, expect=202)).json()["snapshot"]
    assert snap["status"] == "creating" and snap["volume_id"] == volume_id
    # the extended attributes are on show and list detail only (Tempest's create schema refuses them)
    assert not [k for k in snap if k.startswith("os-extended-snapshot-attributes:")]
    return await wait_volume(w[who], snap["id"], "available", collection="snapshots")


async def test_snapshot_lifecycle_and_volume_from_it(w: VolumeWorld) -> None:
    m = w["member"]
    vid = (await w.volume(size=1))["id"]
    snap = await snapshot(w, vid, metadata={"k": "v"}, description="first")
    assert snap["size"] == 1 and snap["metadata"] == {"k": "v"} and snap["description"] == "first"
    assert snap["os-extended-snapshot-attributes:progress"] == "100%"
    assert snap["os-extended-snapshot-attributes:project_id"] == w.projects["a"]
    # list with params (Tempest's test_snapshots_list_with_params)
    listed = (await m.get(f"/snapshots?name={snap['name']}", expect=200)).json()["snapshots"]
    assert [s["id"] for s in listed] == [snap["id"]] and "os-extended-snapshot-attributes:progress" not in listed[0]
    # offset (Tempest's test_snapshot_list_param_offset)
    assert (await m.get(f"/snapshots?name={snap['name']}&offset=1", expect=200)).json()["snapshots"] == []
    assert [s["id"] for s in (await m.get(f"/snapshots/detail?name={snap['name']}&offset=0&limit=3",
                                          expect=200)).json()["snapshots"]] == [snap["id"]]
    assert_fault(await m.get("/snapshots?offset=-2"), 400, "badRequest", "offset param must be positive")
    detail = (await m.get(f"/snapshots/detail?status=available&volume_id={vid}", expect=200)).json()["snapshots"]
    assert [s["id"] for s in detail] == [snap["id"]]
    # update and metadata
    r = await m.put(f"/snapshots/{snap['id']}", {"snapshot": {"name": "renamed", "description": "d2"}}, expect=200)
    assert r.json()["snapshot"]["name"] == "renamed" and "os-extended-snapshot-attributes:progress" not in r.json()[
        "snapshot"]
    r = await m.put(f"/snapshots/{snap['id']}/metadata", {"metadata": {"a": "1"}}, expect=200)
    assert r.json()["metadata"] == {"a": "1"}
    await m.post(f"/snapshots/{snap['id']}/metadata", {"metadata": {"b": "2"}}, expect=200)
    r = await m.put(f"/snapshots/{snap['id']}/metadata/a", {"meta": {"a": "3"}}, expect=200)
    assert (await m.get(f"/snapshots/{snap['id']}/metadata/a", expect=200)).json() == {"meta": {"a": "3"}}
    await m.delete(f"/snapshots/{snap['id']}/metadata/b", expect=200)
    assert (await m.get(f"/snapshots/{snap['id']}/metadata", expect=200)).json()["metadata"] == {"a": "3"}
    # a volume from the snapshot: not smaller than it
    assert_fault(await m.post("/volumes", {"volume": {"snapshot_id": snap["id"], "size": 0}}), 400, "badRequest")
    new = (await m.post("/volumes", {"volume": {"snapshot_id": snap["id"]}}, expect=202)).json()["volume"]
    assert new["snapshot_id"] == snap["id"] and new["size"] == 1
    await wait_volume(m, new["id"], "available")
    # the source volume has a snapshot: no plain delete; the snapshot goes first
    assert_fault(await m.delete(f"/volumes/{vid}"), 400, "badRequest", "have snapshots")
    await m.delete(f"/snapshots/{snap['id']}", expect=202)
    await wait_volume(m, snap["id"], "deleted", collection="snapshots")
    for v in (vid, new["id"]):
        await m.delete(f"/volumes/{v}", expect=202)


async def test_cascade_delete_and_in_use_force(w: VolumeWorld) -> None:
    m = w["member"]
    vid = (await w.volume())["id"]
    sid = (await snapshot(w, vid))["id"]
    await m.action(vid, "os-attach", {"instance_uuid": "5a0e3f1c-1111-4222-8333-444455556677",
                                      "mountpoint": "/dev/vdb"}, expect=202)
    # in-use: needs force before 3.66
    assert_fault(await m.post("/snapshots", {"snapshot": {"volume_id": vid}}), 400, "badRequest", "in-use")
    forced = await snapshot(w, vid, force=True)
    assert_fault(await m.at("3.66").post("/snapshots", {"snapshot": {"volume_id": vid, "force": False}}), 400)
    no_force = (await m.at("3.66").post("/snapshots", {"snapshot": {"volume_id": vid}}, expect=202)).json()
    await wait_volume(m, no_force["snapshot"]["id"], "available", collection="snapshots")
    await m.action(vid, "os-detach", {}, expect=202)
    await m.delete(f"/volumes/{vid}?cascade=true", expect=202)
    await wait_volume(m, vid, "deleted")
    for s in (sid, forced["id"], no_force["snapshot"]["id"]):
        assert_fault(await m.get(f"/snapshots/{s}"), 404, "itemNotFound")


async def test_snapshot_bad_input_and_isolation(w: VolumeWorld) -> None:
    m = w["member"]
    assert_fault(await m.post("/snapshots", {"snapshot": {"volume_id": MISSING}}), 404, "itemNotFound")
    assert_fault(await m.post("/snapshots", {"snapshot": {"name": "x"}}), 400, "badRequest")
    # a null volume_id passes Cinder's schema and is not found (Tempest's negative test expects 404)
    assert_fault(await m.post("/snapshots", {"snapshot": {"volume_id": None, "display_name": "x"}}), 404,
                 "itemNotFound", "Volume None could not be found.")
    assert_fault(await m.get(f"/snapshots/{MISSING}"), 404, "itemNotFound")
    vid = (await w.volume())["id"]
    sid = (await snapshot(w, vid))["id"]
    assert_fault(await w["other"].get(f"/snapshots/{sid}"), 404, "itemNotFound")
    assert_fault(await w["other"].post("/snapshots", {"snapshot": {"volume_id": vid}}), 404, "itemNotFound")
    assert_fault(await w["other"].delete(f"/snapshots/{sid}"), 404, "itemNotFound")
    assert_fault(await m.post(f"/snapshots/{sid}/action", {"os-reset_status": {"status": "error"}}), 403)
    await w.admin.post(f"/snapshots/{sid}/action", {"os-reset_status": {"status": "error"}}, expect=202)
    await m.delete(f"/snapshots/{sid}", expect=202)
    await wait_volume(m, sid, "deleted", collection="snapshots")
    await m.delete(f"/volumes/{vid}", expect=202)

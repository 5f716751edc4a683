"""Volumes through the Cinder API: create/show/list/update/delete, metadata, actions, the state
machine, bad input and isolation, with Cinder's fault bodies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.api.volume_helpers import VolumeWorld, assert_fault, uniq, volume_world, wait_volume

pytestmark = pytest.mark.asyncio(loop_scope="session")

MISSING = "9b7a1f9e-0000-4000-8000-000000000000"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def w(cloud) -> AsyncIterator[VolumeWorld]:
    async with volume_world(cloud) as world:
        yield world


async def test_create_show_list_update_delete(w: VolumeWorld) -> None:
    m = w["member"]
    name = uniq("vol")
    r = await m.post("/volumes", {"volume": {"size": 1, "name": name, "description": "d",
                                             "metadata": {"Type": "work"}}}, expect=202)
    vol = r.json()["volume"]
    assert vol["status"] == "creating" and vol["size"] == 1 and vol["bootable"] == "false"
    assert vol["user_id"] == m.user_id and vol["volume_type"] == "__DEFAULT__"
    assert vol["links"][0]["rel"] == "self" and vol["id"] in vol["links"][0]["href"]
    # Cinder's contrib attributes are on show and list detail only: Tempest's create schema refuses them
    assert not [k for k in vol if k.startswith("os-vol-")] and "volume_image_metadata" not in vol
    admin_created = (await w.admin.post("/volumes", {"volume": {"size": 1}}, expect=202)).json()["volume"]
    assert not [k for k in admin_created if k.startswith("os-vol-")] and "migration_status" in admin_created
    vol = await wait_volume(m, vol["id"], "available")
    # the fields Tempest's schema requires at 3.0, and only the allowed ones for a member
    assert {"attachments", "links", "encrypted", "updated_at", "replication_status", "id", "size", "user_id",
            "availability_zone", "metadata", "status", "description", "multiattach", "consistencygroup_id",
            "name", "bootable", "created_at", "volume_type", "snapshot_id", "source_volid"} <= set(vol)
    assert "os-vol-host-attr:host" not in vol and vol["os-vol-tenant-attr:tenant_id"] == w.projects["a"]
    assert vol["availability_zone"] == "nova" and vol["metadata"] == {"Type": "work"}
    admin_view = (await w.admin.get(f"/volumes/{vol['id']}", expect=200)).json()["volume"]
    assert "@" in admin_view["os-vol-host-attr:host"] and "#" in admin_view["os-vol-host-attr:host"]
    latest = (await m.at("latest").get(f"/volumes/{vol['id']}", expect=200)).json()["volume"]
    assert latest["volume_type_id"] and latest["consumes_quota"] is True and latest["shared_targets"] is False
    # list, detail (the same view as show but updated_at), filters
    names = [v["name"] for v in (await m.get("/volumes", expect=200)).json()["volumes"]]
    assert name in names
    detail = (await m.get(f"/volumes/detail?name={name}", expect=200)).json()["volumes"]
    assert [v["id"] for v in detail] == [vol["id"]]
    shown = (await m.get(f"/volumes/{vol['id']}", expect=200)).json()["volume"]
    assert {k: v for k, v in detail[0].items() if k != "updated_at"} == {
        k: v for k, v in shown.items() if k != "updated_at"}
    r = await m.get("/volumes/detail", params={"metadata": "{'Type': 'work'}", "status": "available"}, expect=200)
    assert vol["id"] in [v["id"] for v in r.json()["volumes"]]
    r = await m.get("/volumes/detail", params={"metadata": "{'Type': 'play'}"}, expect=200)
    assert vol["id"] not in [v["id"] for v in r.json()["volumes"]]
    assert (await m.get("/volumes?status=nonsense", expect=200)).json()["volumes"] == []
    assert (await m.get("/volumes/detail?name=nope-" + name, expect=200)).json()["volumes"] == []
    assert vol["id"] in [v["id"] for v in (await m.get("/volumes?availability_zone=nova", expect=200)).json()["volumes"]]
    # update
    r = await m.put(f"/volumes/{vol['id']}", {"volume": {"name": name + "-2", "description": "e"}}, expect=200)
    assert r.json()["volume"]["name"] == name + "-2" and r.json()["volume"]["description"] == "e"
    assert not [k for k in r.json()["volume"] if k.startswith("os-vol-")]
    await wait_volume(w.admin, admin_created["id"], "available")
    await w.admin.delete(f"/volumes/{admin_created['id']}", expect=202)
    # delete
    await m.delete(f"/volumes/{vol['id']}", expect=202)
    await wait_volume(m, vol["id"], "deleted")


async def test_pagination_sort_and_count(w: VolumeWorld) -> None:
    m = w["member"]
    prefix = uniq("pg")
    ids = [(await w.volume(name=f"{prefix}-{i}", wait=None))["id"] for i in range(3)]
    r = await m.get("/volumes?limit=2&sort=created_at:asc", expect=200)
    body = r.json()
    assert len(body["volumes"]) == 2 and body["volumes_links"][0]["rel"] == "next"
    marker = body["volumes"][-1]["id"]
    rest = (await m.get(f"/volumes?limit=100&sort=created_at:asc&marker={marker}", expect=200)).json()["volumes"]
    seen = [v["id"] for v in body["volumes"]] + [v["id"] for v in rest]
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))
    r = await m.at("3.45").get("/volumes?with_count=true&limit=1", expect=200)
    assert r.json()["count"] >= 3 and len(r.json()["volumes"]) == 1
    r = await m.at("3.34").get(f"/volumes/detail?name~={prefix}", expect=200)
    assert {v["id"] for v in r.json()["volumes"]} == set(ids)
    # offset skips that many of the sorted, filtered list (Cinder's get_pagination_params)
    r = await m.at("3.34").get(f"/volumes?name~={prefix}&sort=name:asc&offset=1&limit=5", expect=200)
    assert [v["id"] for v in r.json()["volumes"]] == ids[1:]
    assert_fault(await m.get("/volumes?offset=-1"), 400, "badRequest", "offset param must be positive")
    assert_fault(await m.get("/volumes/detail?offset=x"), 400, "badRequest", "offset param must be an integer")
    s = (await m.at("3.36").get("/volumes/summary", expect=200)).json()["volume-summary"]
    assert s["total_count"] >= 3 and s["total_size"] >= 3 and "metadata" in s
    assert_fault(await m.get("/volumes/summary"), 404, "itemNotFound")  # 3.12+
    for vid in ids:
        await wait_volume(m, vid, "available")
        await m.delete(f"/volumes/{vid}", expect=202)


async def test_bad_input(w: VolumeWorld) -> None:
    m = w["member"]
    for size in (0, -1, "#$%"):
        assert_fault(await m.post("/volumes", {"volume": {"size": size}}), 400, "badRequest")
    assert_fault(await m.post("/volumes", {"volume": {"name": "no-size"}}), 400, "badRequest", "Volume size")
    # a group (3.13) that is not there: Cinder's 404, and no volume is left behind
    before = {v["id"] for v in (await m.get("/volumes", expect=200)).json()["volumes"]}
    assert_fault(await m.at("3.13").post("/volumes", {"volume": {"size": 1, "group_id": MISSING}}), 404,
                 "itemNotFound", f"Group {MISSING} could not be found.")
    assert {v["id"] for v in (await m.get("/volumes", expect=200)).json()["volumes"]} <= before
    assert_fault(await m.post("/volumes", {"volume": {"size": 1, "volume_type": uniq("none")}}), 404,
                 "itemNotFound", "could not be found")
    assert_fault(await m.post("/volumes", {"volume": {"size": 1, "snapshot_id": MISSING}}), 404,
                 "itemNotFound", f"Snapshot {MISSING} could not be found.")
    assert_fault(await m.post("/volumes", {"volume": {"size": 1, "source_volid": MISSING}}), 404,
                 "itemNotFound", f"Volume {MISSING} could not be found.")
    assert_fault(await m.post("/volumes", {"volume": {"size": 1, "availability_zone": "mars"}}), 400,
                 "badRequest", "Availability zone 'mars' is invalid.")
    assert_fault(await m.post("/volumes", {"volume": {"size": 1, "multiattach": True}}), 400, "badRequest",
                 "multiattach parameter has been removed")
    assert_fault(await m.post("/volumes", {"volume": {"size": 1, "imageRef": MISSING}}), 400, "badRequest")
    assert_fault(await m.post("/volumes", {"nothing": {}}), 400, "badRequest")
    for bad in ("/volumes/" + MISSING, "/volumes/not-a-uuid"):
        assert_fault(await m.get(bad), 404, "itemNotFound")
        assert_fault(await m.delete(bad), 404, "itemNotFound")
        assert_fault(await m.put(bad, {"volume": {"name": "x"}}), 404, "itemNotFound")
    assert_fault(await m.put("/volumes/", {"volume": {"name": "x"}}), 404)
    # nothing half-made: no volume named after the refused creates
    assert (await m.get("/volumes?name=no-size", expect=200)).json()["volumes"] == []


async def test_isolation(w: VolumeWorld) -> None:
    vol = await w.volume("member")
    other, reader = w["other"], w["reader"]
    assert_fault(await other.get(f"/volumes/{vol['id']}"), 404, "itemNotFound")
    assert_fault(await other.delete(f"/volumes/{vol['id']}"), 404, "itemNotFound")
    assert_fault(await other.action(vol["id"], "os-extend", {"new_size": 2}), 404, "itemNotFound")
    assert_fault(await other.at("3.27").post("/attachments", {"attachment": {"volume_uuid": vol["id"]}}), 404,
                 "itemNotFound")
    assert vol["id"] not in [v["id"] for v in (await other.get("/volumes", expect=200)).json()["volumes"]]
    # a reader sees but cannot change
    await reader.get(f"/volumes/{vol['id']}", expect=200)
    assert_fault(await reader.delete(f"/volumes/{vol['id']}"), 403, "forbidden")
    assert_fault(await reader.post("/volumes", {"volume": {"size": 1}}), 403, "forbidden")
    # the admin sees it with all_tenants, not without
    admin_list = (await w.admin.get("/volumes?all_tenants=1", expect=200)).json()["volumes"]
    assert vol["id"] in [v["id"] for v in admin_list]
    assert vol["id"] not in [v["id"] for v in (await w.admin.get("/volumes", expect=200)).json()["volumes"]]
    # the project id in the URL: the caller's works, another project's is Cinder's 400
    await w["member"].with_project_in_url().get(f"/volumes/{vol['id']}", expect=200)
    assert_fault(await other.get(f"/{w.projects['a']}/volumes/{vol['id']}"), 400, "badRequest",
                 "Malformed request url")
    await w["member"].delete(f"/volumes/{vol['id']}", expect=202)


async def test_metadata_api(w: VolumeWorld) -> None:
    m = w["member"]
    vid = (await w.volume())["id"]
    r = await m.post(f"/volumes/{vid}/metadata", {"metadata": {"a": "1", "b": "2"}}, expect=200)
    assert r.json()["metadata"] == {"a": "1", "b": "2"}
    r = await m.put(f"/volumes/{vid}/metadata", {"metadata": {"c": "3"}}, expect=200)
    assert (await m.get(f"/volumes/{vid}/metadata", expect=200)).json()["metadata"] == {"c": "3"}
    r = await m.put(f"/volumes/{vid}/metadata/c", {"meta": {"c": "4"}}, expect=200)
    assert r.json() == {"meta": {"c": "4"}}
    assert (await m.get(f"/volumes/{vid}/metadata/c", expect=200)).json() == {"meta": {"c": "4"}}
    assert_fault(await m.put(f"/volumes/{vid}/metadata/c", {"meta": {"d": "4"}}), 400, "badRequest")
    await m.delete(f"/volumes/{vid}/metadata/c", expect=200)
    assert_fault(await m.get(f"/volumes/{vid}/metadata/c"), 404, "itemNotFound")
    assert_fault(await m.delete(f"/volumes/{vid}/metadata/c"), 404, "itemNotFound")
    assert_fault(await m.post(f"/volumes/{vid}/metadata", {"metadata": {"k": 1}}), 400, "badRequest")
    await m.delete(f"/volumes/{vid}", expect=202)


async def test_actions_extend_bootable_readonly(w: VolumeWorld) -> None:
    m = w["member"]
    vid = (await w.volume(size=2))["id"]
    assert_fault(await m.action(vid, "os-extend", {"new_size": 1}), 400, "badRequest",
                 "New size for extend must be greater than current size")
    assert_fault(await m.action(vid, "os-extend", {"new_size": 2}), 400, "badRequest")
    await m.action(vid, "os-extend", {"new_size": 3}, expect=202)
    vol = await wait_volume(m, vid, "available")
    assert vol["size"] == 3
    await m.action(vid, "os-set_bootable", {"bootable": True}, expect=200)
    assert (await m.get(f"/volumes/{vid}", expect=200)).json()["volume"]["bootable"] == "true"
    assert_fault(await m.action(vid, "os-set_bootable", {"bootable": "maybe"}), 400, "badRequest")
    await m.action(vid, "os-update_readonly_flag", {"readonly": True}, expect=202)
    # the flag shows in the volume's metadata (Cinder's visible admin metadata), not in the metadata API
    assert (await m.get(f"/volumes/{vid}", expect=200)).json()["volume"]["metadata"]["readonly"] == "True"
    assert "readonly" not in (await m.get(f"/volumes/{vid}/metadata", expect=200)).json()["metadata"]
    await m.action(vid, "os-update_readonly_flag", {"readonly": False}, expect=202)
    detail = (await m.get(f"/volumes/detail?name={vol['name']}", expect=200)).json()["volumes"]
    assert detail[0]["metadata"]["readonly"] == "False"
    assert_fault(await m.action(vid, "os-reset_status", {"status": "error"}), 403, "forbidden")
    await w.admin.action(vid, "os-reset_status", {"status": "error"}, expect=202)
    assert (await m.get(f"/volumes/{vid}", expect=200)).json()["volume"]["status"] == "error"
    assert_fault(await m.action(vid, "os-no-such-thing", {}), 400, "badRequest", "There is no such action")
    await m.delete(f"/volumes/{vid}", expect=202)
    await wait_volume(m, vid, "deleted")


async def test_old_attach_flow_and_delete_in_use(w: VolumeWorld) -> None:
    m = w["member"]
    vid = (await w.volume())["id"]
    server = "5a0e3f1c-1111-4222-8333-444455556666"
    await m.action(vid, "os-reserve", None, expect=202)
    assert (await m.get(f"/volumes/{vid}", expect=200)).json()["volume"]["status"] == "attaching"
    r = await m.action(vid, "os-initialize_connection", {"connector": {"host": "h1", "initiator": "x"}}, expect=200)
    assert r.json()["connection_info"]["driver_volume_type"]
    await m.action(vid, "os-attach", {"instance_uuid": server, "mountpoint": "/dev/vdb"}, expect=202)
    vol = (await m.get(f"/volumes/{vid}", expect=200)).json()["volume"]
    assert vol["status"] == "in-use" and vol["attachments"][0]["server_id"] == server
    assert vol["attachments"][0]["device"] == "/dev/vdb" and vol["attachments"][0]["host_name"] is None
    # deleting or extending an in-use volume: Cinder's 400
    assert_fault(await m.delete(f"/volumes/{vid}"), 400, "badRequest", "must not be migrating, attached")
    assert_fault(await m.action(vid, "os-extend", {"new_size": 2}), 400, "badRequest")
    assert_fault(await m.action(vid, "os-reserve", None), 400, "badRequest")
    await m.action(vid, "os-begin_detaching", None, expect=202)
    await m.action(vid, "os-roll_detaching", None, expect=202)
    assert (await m.get(f"/volumes/{vid}", expect=200)).json()["volume"]["status"] == "in-use"
    await m.action(vid, "os-begin_detaching", None, expect=202)
    await m.action(vid, "os-terminate_connection", {"connector": {"host": "h1"}}, expect=202)
    await m.action(vid, "os-detach", {}, expect=202)
    vol = (await m.get(f"/volumes/{vid}", expect=200)).json()["volume"]
    assert vol["status"] == "available" and vol["attachments"] == []
    # a detach of a volume with no attachment is no error (Cinder's manager: "not attached", available)
    await m.action(vid, "os-detach", {}, expect=202)
    assert (await m.get(f"/volumes/{vid}", expect=200)).json()["volume"]["status"] == "available"
    assert_fault(await m.action(vid, "os-detach", {"attachment_id": "5a0e3f1c-0000-4222-8333-444455556666"}), 404,
                 "itemNotFound")
    await m.delete(f"/volumes/{vid}", expect=202)


async def test_attachments_api(w: VolumeWorld) -> None:
    m = w["member"].at("3.54")
    vid = (await w.volume())["id"]
    server = "6b0e3f1c-1111-4222-8333-444455556666"
    assert_fault(await w["member"].post("/attachments", {"attachment": {"volume_uuid": vid}}), 404)  # < 3.27
    att = (await m.post("/attachments", {"attachment": {"volume_uuid": vid, "instance_uuid": server}},
                        expect=200)).json()["attachment"]
    assert att["status"] == "reserved" and att["connection_info"] is None and att["attach_mode"] == "rw"
    assert (await m.get(f"/volumes/{vid}", expect=200)).json()["volume"]["status"] == "reserved"
    # a second attachment of a volume that is not multiattach: Cinder's 400
    assert_fault(await m.post("/attachments", {"attachment": {"volume_uuid": vid,
                                                              "instance_uuid": "7c0e3f1c-1111-4222-8333-444455556666"}}),
                 400, "badRequest", "to reserve")
    r = await m.put(f"/attachments/{att['id']}", {"attachment": {"connector": {"host": "h1", "mountpoint": "/dev/vdc"}}},
                    expect=200)
    info = r.json()["attachment"]["connection_info"]
    assert info["driver_volume_type"] and info["data"]["access_mode"] == "rw"
    assert (await m.get(f"/volumes/{vid}", expect=200)).json()["volume"]["status"] == "attaching"
    await m.post(f"/attachments/{att['id']}/action", {"os-complete": {}}, expect=204)
    vol = (await m.get(f"/volumes/{vid}", expect=200)).json()["volume"]
    assert vol["status"] == "in-use" and vol["attachments"][0]["attachment_id"] == att["id"]
    listed = (await m.get(f"/attachments?volume_id={vid}", expect=200)).json()["attachments"]
    assert [a["id"] for a in listed] == [att["id"]] and listed[0]["status"] == "attached"
    assert_fault(await w["other"].at("3.54").get(f"/attachments/{att['id']}"), 404, "itemNotFound")
    r = await m.delete(f"/attachments/{att['id']}", expect=200)
    assert r.json() == {"attachments": []}
    assert (await m.get(f"/volumes/{vid}", expect=200)).json()["volume"]["status"] == "available"
    await m.delete(f"/volumes/{vid}", expect=202)


async def test_in_process_seam_for_compute(w: VolumeWorld) -> None:
    from mcloud.volume.service import Caller

    vol = w.cloud.volume
    caller = Caller.internal(w.projects["a"], w["member"].user_id)
    made = await vol.volumes.create(caller, 1, name=uniq("seam"))
    assert made["status"] == "creating"
    await wait_volume(w["member"], made["id"], "available")
    att = await vol.attachments.create(caller, made["id"], "8d0e3f1c-1111-4222-8333-444455556666")
    att = await vol.attachments.update(caller, att["id"], {"host": "h2", "mountpoint": "/dev/vdb"})
    assert att["connection_info"]["serial"] == made["id"]
    await vol.attachments.complete(caller, att["id"])
    assert (await vol.volumes.get(caller, made["id"]))["status"] == "in-use"
    await vol.attachments.delete(caller, att["id"])
    assert (await vol.volumes.get(caller, made["id"]))["status"] == "available"
    await vol.volumes.delete(caller, made["id"])


async def test_upload_to_image(w: VolumeWorld) -> None:
    """os-volume_upload_image: a queued image of the caller's project that becomes active with the
    volume's data, the volume back to available (Tempest's test_volume_upload)."""
    m = w["member"]
    data = b"mcloud volume data " * 100
    vid = (await w.volume(imageRef=await w.image(data=data)))["id"]
    r = await m.action(vid, "os-volume_upload_image", {"image_name": uniq("up"), "disk_format": "raw"}, expect=202)
    up = r.json()["os-volume_upload_image"]
    assert up["id"] == vid and up["status"] == "uploading" and up["disk_format"] == "raw"
    assert up["container_format"] == "bare" and up["volume_type"]["name"] == "__DEFAULT__"
    await wait_volume(m, vid, "available")
    h = {"X-Auth-Token": m.token}
    for _ in range(100):
        image = (await w.ks.client.get(f"/image/v2/images/{up['image_id']}", headers=h)).json()
        if image["status"] == "active":
            break
        await asyncio.sleep(0.05)
    assert image["status"] == "active" and image["owner"] == w.projects["a"] and image["visibility"] == "private"
    got = await w.ks.client.get(f"/image/v2/images/{up['image_id']}/file", headers=h)
    assert got.status_code == 200 and got.content.rstrip(b"\0") == data
    assert_fault(await m.action(vid, "os-volume_upload_image", {"image_name": "x", "disk_format": "vhd"}), 400,
                 "badRequest", "Invalid disk-format 'vhd'")
    await w.ks.client.delete(f"/image/v2/images/{up['image_id']}", headers=h)
    await m.delete(f"/volumes/{vid}", expect=202)
